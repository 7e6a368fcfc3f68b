"""What every reader shares: the context handed down, the tally, and event framing."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .budget import Budgets
from .cloudwatch import LogEvent
from .config import DiscardRule
from .forward import HEADER, MAX_DATAGRAM, QueueForwarder, frame
from .progress import Progress
from .state import StateStore

log = logging.getLogger(__name__)

# A stream written to within this margin is not deleted yet (the `--remove-idle` default).
DEFAULT_REMOVE_IDLE_SECONDS = 600.0
# Events up to this late (ingestion time minus timestamp) are forwarded exactly once: it
# covers VPC Flow Logs (10-minute windows plus delivery) and CloudTrail (minutes behind).
DEFAULT_LOOKBACK_SECONDS = 900.0
# PutLogEvents is eventually consistent: an event accepted this long ago is taken to be
# readable. Reads lag writes by seconds in practice; the margin delays delivery by as much.
DEFAULT_SETTLE_SECONDS = 30.0


class Stopped(Exception):
    """A stop was requested; the page in hand was committed."""


@dataclass
class Context:
    """What a pass needs from outside: the state, the socket, the clock and a stop flag."""

    state: StateStore
    forwarder: QueueForwarder
    budgets: Budgets = field(default_factory=Budgets)
    remove_idle: float = DEFAULT_REMOVE_IDLE_SECONDS
    lookback: float = DEFAULT_LOOKBACK_SECONDS
    settle: float = DEFAULT_SETTLE_SECONDS
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.time
    # Held from a page's first send to its commit: at any moment at most one page has been
    # forwarded without its position on disk, so a crash repeats at most that page.
    page_lock: threading.Lock = field(default_factory=threading.Lock)
    progress: Progress = field(default_factory=Progress)


@dataclass
class Tally:
    """What a pass did, added up over streams, groups and regions."""

    events: int = 0
    bytes: int = 0
    discarded: int = 0
    truncated: int = 0
    streams: int = 0
    skipped: int = 0
    deleted: int = 0
    groups: int = 0
    failures: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, other: Tally) -> None:
        with self._lock:
            self.events += other.events
            self.bytes += other.bytes
            self.discarded += other.discarded
            self.truncated += other.truncated
            self.streams += other.streams
            self.skipped += other.skipped
            self.deleted += other.deleted
            self.groups += other.groups
            self.failures.extend(other.failures)
            self.reasons.update(other.reasons)

    def fail(self, reason: str, message: str) -> None:
        """Count a failure: ``reason`` is its kind (e.g. AccessDenied), for metrics."""
        with self._lock:
            self.failures.append(message)
            self.reasons[reason] += 1


def today_start(now: float) -> int:
    """00:00 UTC of the day of ``now``, in ms: the start when only_logs_after is not set."""
    day = datetime.fromtimestamp(now, tz=timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return int(day.timestamp() * 1000)


def encode(event: LogEvent, discard: DiscardRule | None, where: str, tally: Tally) -> bytes | None:
    """The datagram of one event, or None when the discard rule drops it; counts it."""
    if discard is not None and discard.discards(event.message):
        tally.discarded += 1
        return None
    data, truncated = frame(event.message)
    if truncated:
        tally.truncated += 1
        stamp = datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc)
        log.warning(
            "event of %s at %s is %d bytes; sent truncated to the manager's limit of %d",
            where,
            stamp.isoformat(timespec="milliseconds"),
            len(event.message.encode("utf-8", "surrogatepass")),
            len(data),
        )
    tally.events += 1
    tally.bytes += len(data)
    return data


def datagrams(
    events: list[LogEvent], discard: DiscardRule | None, where: str, tally: Tally
) -> Iterator[bytes]:
    """The datagrams for the events that the discard rule keeps, in order.

    The common case (nothing to discard, plain UTF-8, within the manager's limit) stays in
    this loop; every other case goes through ``encode``. Counts land in ``tally`` once the
    events are all consumed.
    """
    count = 0
    size = 0
    try:
        for event in events:
            if discard is None:
                try:
                    data = HEADER + event.message.encode("utf-8")
                except UnicodeEncodeError:
                    data = b""
                if data and len(data) <= MAX_DATAGRAM:
                    count += 1
                    size += len(data)
                    yield data
                    continue
            slow = encode(event, discard, where, tally)
            if slow is not None:
                yield slow
    finally:
        tally.events += count
        tally.bytes += size
