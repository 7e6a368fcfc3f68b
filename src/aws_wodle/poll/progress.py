"""Progress of a cycle: events so far and how much log time the streams being read have left.

A first collection from an early ``only_logs_after`` can take hours; readers report each
committed page here, and the daemon shows the figures in the log, in systemd's status and,
for ``run --once`` on a terminal, as a progress bar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    """Events forwarded this cycle, and the log time still to read (ms) out of the total."""

    events: int
    left_ms: int
    total_ms: int

    @property
    def fraction(self) -> float:
        if self.total_ms <= 0:
            return 1.0
        return max(0.0, min(1.0, 1 - self.left_ms / self.total_ms))


def span(ms: int) -> str:
    """A duration in words: 3d 4h, 5h 10m, 12m, 40s."""
    seconds = ms // 1000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


# Below this much reading (wall time, and share of the log time), a rate says nothing yet.
MIN_ELAPSED_SECONDS = 2.0
MIN_FRACTION = 0.01


def remaining_seconds(fraction: float, elapsed: float) -> float | None:
    """The wall time the read still needs, from the share of log time read so far in
    ``elapsed`` seconds at the same pace; None until there is a pace to go by. (Log time
    left is no estimate: an hour of log is read in seconds.)"""
    if elapsed < MIN_ELAPSED_SECONDS or fraction < MIN_FRACTION:
        return None
    if fraction >= 1.0:
        return 0.0
    return elapsed * (1 - fraction) / fraction


def _to_go(snap: Snapshot, elapsed: float) -> str:
    left = remaining_seconds(snap.fraction, elapsed)
    return "" if left is None else f", about {span(int(left * 1000))} to go"


class Progress:
    """Thread-safe record of the streams being read and how far each has got."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._began = wall()
        self._lock = threading.Lock()
        self._events = 0
        self._streams: dict[object, tuple[int, int]] = {}  # key -> (started at, now at), ms

    def begin(self) -> None:
        """A new cycle: nothing forwarded yet."""
        with self._lock:
            self._events = 0
            self._streams.clear()
            self._began = self._wall()

    def moved(self, key: object, at_ms: int | None, events: int) -> None:
        """A reader committed a page: ``events`` more, its stream now at ``at_ms``."""
        with self._lock:
            self._events += events
            if at_ms is None:
                return
            first, _ = self._streams.get(key, (at_ms, at_ms))
            self._streams[key] = (min(first, at_ms), at_ms)

    def finished(self, key: object) -> None:
        with self._lock:
            self._streams.pop(key, None)

    def snapshot(self) -> Snapshot:
        now_ms = int(self._clock() * 1000)
        with self._lock:
            if not self._streams:
                return Snapshot(self._events, 0, 0)
            first = min(start for start, _ in self._streams.values())
            oldest = min(at for _, at in self._streams.values())
            return Snapshot(self._events, max(0, now_ms - oldest), max(0, now_ms - first))

    def line(self) -> str:
        """The progress in one line, for the log and systemd's status."""
        snap = self.snapshot()
        return (
            f"collecting: {snap.events} events so far, {span(snap.left_ms)} of log time left "
            f"({snap.fraction:.0%}){_to_go(snap, self._wall() - self._began)}"
        )

    def bar(self, width: int = 30) -> str:
        """A terminal progress bar."""
        snap = self.snapshot()
        filled = int(snap.fraction * width)
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {snap.fraction:4.0%} "
            f"{snap.events} events, {span(snap.left_ms)} of log time left"
            f"{_to_go(snap, self._wall() - self._began)}"
        )
