"""What every reader shares: the context handed down, the tally, and event framing."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..aws.budget import Budgets
from ..manager.envelope import Envelope
from ..manager.forward import frame
from ..model import Discard, LogEvent
from .discovery import DEFAULT_DISCOVER_SECONDS
from .groups import GroupRules
from .progress import Progress

if TYPE_CHECKING:  # the engine imports this module: it must not load sqlite3 or lxml
    from ..manager.forward import QueueForwarder
    from ..store.state import StateStore

log = logging.getLogger(__name__)

# A stream written to within this margin is not deleted yet (the `--remove-idle` default).
DEFAULT_REMOVE_IDLE_SECONDS = 600.0
# Events up to this late (ingestion time minus timestamp) are forwarded exactly once: it
# covers VPC Flow Logs (10-minute windows plus delivery) and CloudTrail (minutes behind).
DEFAULT_LOOKBACK_SECONDS = 900.0
# Events later than a few seconds (``window.LATE_MARGIN_MS``) are sent by a sweep of the
# whole lookback this often; the reads in between cover only the last moments, so a late
# event waits up to this long (plus the settle margin and an interval). 0 makes every read
# cover the lookback, as before the split: late events then go with the next cycle, at some
# 90 times the reads at a 10 s interval.
DEFAULT_LATE_EVERY_SECONDS = 300.0
# PutLogEvents is eventually consistent: an event accepted this long ago is taken to be
# readable. Reads lag writes by seconds in practice; the margin delays delivery by as much.
DEFAULT_SETTLE_SECONDS = 30.0


# Upper bounds (seconds) of the lateness histogram: how long after its timestamp an event
# was ingested. Spans agents' batching (seconds) to VPC Flow Logs and CloudTrail (minutes).
LATENESS_BUCKETS = (1.0, 10.0, 60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 21600.0, 86400.0)


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
    late_every: float = DEFAULT_LATE_EVERY_SECONDS
    settle: float = DEFAULT_SETTLE_SECONDS
    # Count events per stream in the tally (the debug log and `legacy` show them); off, a
    # cycle's memory does not grow with the number of streams it read.
    count_streams: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.time
    # Held from a page's first send to its commit: at any moment at most one page has been
    # forwarded without its position on disk, so a crash repeats at most that page.
    page_lock: threading.Lock = field(default_factory=threading.Lock)
    progress: Progress = field(default_factory=Progress)
    # The settings file's [[group]] sections: per-group stream filters and the envelope.
    group_rules: GroupRules = field(default_factory=GroupRules)
    # How often a prefix entry (``/aws/lambda/*``) is listed again in each region, at most.
    discover_every: float = DEFAULT_DISCOVER_SECONDS


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
    # Events seen ingested inside the settle margin and left for the next read.
    held: int = 0
    # Groups a stop request left unread or part read.
    left: int = 0
    failures: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    # Events sent per (region, group, stream), and how late the events sent were (seconds from
    # their timestamp to their ingestion, by histogram bucket upper bound).
    per_stream: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    lateness: Counter[float] = field(default_factory=Counter)
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
            self.held += other.held
            self.left += other.left
            self.failures.extend(other.failures)
            self.reasons.update(other.reasons)
            self.per_stream.update(other.per_stream)
            self.lateness.update(other.lateness)

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


def encode(
    event: LogEvent,
    discard: Discard | None,
    where: str,
    tally: Tally,
    envelope: Envelope | None = None,
) -> bytes | None:
    """The datagram of one event (its raw message, or the ``envelope`` holding it), or None
    when the discard rule drops it; counts it."""
    if discard is not None and discard.discards(event.message):
        tally.discarded += 1
        return None
    data, truncated = frame(event.message) if envelope is None else envelope.frame(event)
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
