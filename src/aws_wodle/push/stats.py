"""What the push path did, for the metrics and the per-minute info line.

Every ``[[kinesis]]`` source's worker and shard readers write here (from their threads);
``metrics.Metrics`` renders it, and ``Reporter`` logs once a minute what was pushed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# How often the info line sums what was pushed.
REPORT_SECONDS = 60.0

SourceKey = tuple[str, str]  # (stream name, region)


@dataclass
class ShardFigures:
    """One shard this worker reads: when it last checkpointed (wall clock, seconds) and
    how far behind the stream's tip GetRecords last said it was (ms)."""

    checkpoint_at: float | None = None
    behind_ms: int | None = None


class PushStats:
    """Counters and gauges of every source, keyed by (stream, region)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.events: Counter[SourceKey] = Counter()
        self.bytes: Counter[SourceKey] = Counter()
        self._window_events: Counter[SourceKey] = Counter()
        self._window_bytes: Counter[SourceKey] = Counter()
        self.shards: dict[SourceKey, dict[str, ShardFigures]] = {}
        self.owned: dict[SourceKey, int] = {}
        self.takeovers: Counter[SourceKey] = Counter()
        self.handovers: Counter[tuple[str, str, str]] = Counter()  # (stream, region, in|out)
        self.failures: Counter[tuple[str, str, str]] = Counter()  # (stream, region, reason)
        self.sources: set[SourceKey] = set()

    def source(self, key: SourceKey) -> None:
        """A source is configured: it shows (with zeros) before it pushes anything."""
        with self._lock:
            self.sources.add(key)

    def sent(self, key: SourceKey, events: int, size: int) -> None:
        with self._lock:
            self.events[key] += events
            self.bytes[key] += size
            self._window_events[key] += events
            self._window_bytes[key] += size

    def behind(self, key: SourceKey, shard: str, behind_ms: int | None) -> None:
        """GetRecords' MillisBehindLatest for a shard read here."""
        if behind_ms is None:
            return
        with self._lock:
            self.shards.setdefault(key, {}).setdefault(shard, ShardFigures()).behind_ms = int(
                behind_ms
            )

    def checkpointed(self, key: SourceKey, shard: str) -> None:
        with self._lock:
            figures = self.shards.setdefault(key, {}).setdefault(shard, ShardFigures())
            figures.checkpoint_at = self.clock()

    def holding(self, key: SourceKey, shards: set[str]) -> None:
        """The shards this worker holds now: the others' gauges are dropped."""
        with self._lock:
            self.owned[key] = len(shards)
            known = self.shards.setdefault(key, {})
            for shard in list(known):
                if shard not in shards:
                    del known[shard]
            for shard in shards:
                known.setdefault(shard, ShardFigures())

    def took_over(self, key: SourceKey) -> None:
        with self._lock:
            self.takeovers[key] += 1

    def handed_over(self, key: SourceKey, direction: str) -> None:
        with self._lock:
            self.handovers[(key[0], key[1], direction)] += 1

    def failed(self, key: SourceKey, reason: str) -> None:
        with self._lock:
            self.failures[(key[0], key[1], reason or "Error")] += 1

    def take_window(self) -> dict[SourceKey, tuple[int, int]]:
        """What each source pushed since the last call (events, bytes); every source."""
        with self._lock:
            keys = sorted(self.sources | set(self._window_events))
            out = {k: (self._window_events[k], self._window_bytes[k]) for k in keys}
            self._window_events.clear()
            self._window_bytes.clear()
        return out

    def render(self, out: list[str], family: Callable[[str, str, str], None], label: Any) -> None:
        """The push families, each with its samples right after its HELP and TYPE."""
        now = self.clock()
        with self._lock:
            sources = sorted(self.sources | set(self.shards) | set(self.owned))

            def where(key: SourceKey) -> str:
                return f'stream="{label(key[0])}",region="{label(key[1])}"'

            family(
                "aws_wodle_push_checkpoint_age_seconds",
                "gauge",
                "How long ago each shard read here was last checkpointed.",
            )
            for key in sources:
                for shard, figures in sorted(self.shards.get(key, {}).items()):
                    if figures.checkpoint_at is not None:
                        age = max(0.0, now - figures.checkpoint_at)
                        out.append(
                            f"aws_wodle_push_checkpoint_age_seconds{{{where(key)},"
                            f'shard="{label(shard)}"}} {age:.3f}'
                        )
            family(
                "aws_wodle_push_behind_seconds",
                "gauge",
                "How far each shard read here is behind the stream's tip (GetRecords' "
                "MillisBehindLatest).",
            )
            for key in sources:
                for shard, figures in sorted(self.shards.get(key, {}).items()):
                    if figures.behind_ms is not None:
                        out.append(
                            f"aws_wodle_push_behind_seconds{{{where(key)},"
                            f'shard="{label(shard)}"}} {figures.behind_ms / 1000:.3f}'
                        )
            family("aws_wodle_push_leases_owned", "gauge", "Leases this worker holds.")
            for key in sources:
                out.append(f"aws_wodle_push_leases_owned{{{where(key)}}} {self.owned.get(key, 0)}")
            family(
                "aws_wodle_push_takeovers_total",
                "counter",
                "Leases taken over from a worker that stopped renewing them.",
            )
            for key in sources:
                out.append(f"aws_wodle_push_takeovers_total{{{where(key)}}} {self.takeovers[key]}")
            family(
                "aws_wodle_push_handovers_total",
                "counter",
                "Leases handed over between live workers to balance the load (in: to this "
                "worker, out: by it).",
            )
            for key in sources:
                for direction in ("in", "out"):
                    count = self.handovers[(key[0], key[1], direction)]
                    out.append(
                        f'aws_wodle_push_handovers_total{{{where(key)},direction="{direction}"}} '
                        f"{count}"
                    )
            family(
                "aws_wodle_push_failures_total",
                "counter",
                "Failed calls of the push path (Kinesis, the lease table), by reason.",
            )
            for (stream, region, reason), count in sorted(self.failures.items()):
                out.append(
                    f"aws_wodle_push_failures_total{{{where((stream, region))},"
                    f'reason="{label(reason)}"}} {count}'
                )

    def totals(self) -> tuple[int, int]:
        with self._lock:
            return sum(self.events.values()), sum(self.bytes.values())


def report_line(window: dict[SourceKey, tuple[int, int]], seconds: float) -> str:
    """``pushed in the last 60 s: 1920 events, 251 KiB (siem-logs in us-east-1: ...)``."""
    events = sum(e for e, _ in window.values())
    size = sum(b for _, b in window.values())
    parts = [
        f"{stream} in {region}: {e} events, {b} bytes"
        for (stream, region), (e, b) in sorted(window.items())
    ]
    return f"pushed in the last {seconds:g} s: {events} events, {size} bytes" + (
        f" ({'; '.join(parts)})" if parts else ""
    )


class Reporter:
    """A thread logging ``report_line`` every ``every`` seconds until ``stop`` is set."""

    def __init__(self, stats: PushStats, stop: threading.Event, every: float = REPORT_SECONDS):
        self.stats = stats
        self.stop = stop
        self.every = every
        self._thread = threading.Thread(target=self._run, name="push-report", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self.stats.take_window()
        while not self.stop.wait(self.every):
            window = self.stats.take_window()
            if window:  # a source is configured
                log.info("%s", report_line(window, self.every))
