"""Which events a read sends, and where it starts: pure arithmetic on cursors.

A read of a group covers a window of event times reaching back by the lookback from the
last fence, and sends the events whose ingestion time falls after that fence and at or
before the new one (a settle margin behind AWS's clock). Consecutive fences tile ingestion
time, so each event is sent by exactly one read, whatever its timestamp, as long as it
arrived no later than the lookback after it happened. The rules:

- A group never seen starts at the configured start (``only_logs_after``, else the day it
  was first seen) and sends everything ingested up to its first fence.
- ``only_logs_after`` moved earlier than ``covered_from``: the events before, ingested up to
  the last fence, are read once (a ``Gap``); later ones come with the ordinary reads.
- ``only_logs_after`` moved later than the newest event sent: collection restarts there.
- Moves are applied between reads, never in the middle of one.
- A read of the whole range (a first collection, a backfill) sends what was ingested up
  to its fence; what it left for the settle margin may carry any timestamp of the range.
  So the reads after it start at the range's start (the cursor's *tail*) until one's fence
  has passed the moment the whole-range read began: each of those events is sent once,
  by the read whose fences enclose its ingestion, whatever the lookback.

Reads split by lateness (``Split``): an event's lateness (ingestion time minus timestamp) is
in the event, so it can choose the read that sends it. A *prompt* event (lateness from
-``AHEAD_MS`` to ``LATE_MARGIN_MS``) is sent by the read whose fences (``fence``) enclose its
ingestion, and such a read need only look at event times from its lower fence less the
margin up to its upper fence plus ``AHEAD_MS``: a few times the interval, not the lookback.
Every other event (later than the margin, or stamped further ahead of its ingestion) is
*late*: it is sent by the *sweep* whose own
fences (``late_fence``) enclose its ingestion; a sweep runs about every ``late_every``, reads
the whole lookback as an unsplit read does, and sends the prompt events of its own read as
well. Each event is in one class and ingested between one pair of fences of that class, so
it is sent once. With no split, every read is a sweep and both fences move together.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..model import Boundary, Columns, Cursor, Cycle, Gap, LogEvent
from .boundary import Seen

# A LogEvent's timestamp and ingestion time, at C speed.
_TIMESTAMP = operator.itemgetter(0)
_INGESTED = operator.itemgetter(2)

# A mark that every event of a stream was read (per-stream reads).
DONE = Boundary(ts=2**62)
# Split reads: an event ingested at most this long after its timestamp is prompt, sent by
# the next read, which looks back only this far behind its lower fence. It covers agents'
# batching (the CloudWatch agent flushes every 5 s, Lambda within seconds); a later event is
# sent by the next sweep instead. Fixed: a read and the sweep must agree on every event's
# class, also across restarts and changed settings.
LATE_MARGIN_MS = 20_000
# Split reads: an event stamped up to this long after its ingestion is prompt too. Writers'
# clocks run a little ahead of AWS's (NTP keeps hosts within milliseconds to a second), and
# a batch's later events can carry times after the batch's acceptance; an event stamped
# further ahead goes to the sweep. Fixed, as the margin.
AHEAD_MS = 2_000


@dataclass(frozen=True)
class Split:
    """Reads split by lateness: a sweep of the whole lookback about every ``every_ms``,
    reads of the last moments (prompt events only) in between."""

    every_ms: int


def split_for(lookback_ms: int, late_every_ms: int) -> Split | None:
    """The split of a group's reads, or None (every read a sweep): with ``late_every`` 0,
    or a lookback no longer than the margin (nothing would be left to a sweep)."""
    if late_every_ms <= 0 or lookback_ms <= LATE_MARGIN_MS:
        return None
    return Split(late_every_ms)


def late_fence(cursor: Cursor) -> int | None:
    """The fence up to which late events were sent (the ordinary fence when never split)."""
    return cursor.late_fence if cursor.late_fence is not None else cursor.fence


def settled_fence(cursor: Cursor) -> int | None:
    """A fence at or before which every event of every class was sent."""
    late = late_fence(cursor)
    if late is None or cursor.fence is None:
        return None
    return min(late, cursor.fence)


def sweep_due(cursor: Cursor, split: Split | None, estimate: int) -> bool:
    """Whether the read with a fence near ``estimate`` is a sweep: always without a split,
    and on a first read; else once the last sweep's fence
    is ``every_ms`` behind, or nearer to it than the next read would be (reads come about
    ``estimate - fence`` apart), so that sweeps keep their pace whatever the interval."""
    late = late_fence(cursor)
    if split is None or cursor.fence is None or late is None:
        return True
    step = max(0, estimate - cursor.fence)
    return estimate - late + step // 2 >= split.every_ms


def prompt_start(cursor: Cursor) -> int:
    """The earliest event time a read of prompt events looks at: a prompt event ingested
    after the fence is at most the margin older than its ingestion."""
    assert cursor.fence is not None
    return max(cursor.covered_from, cursor.fence - LATE_MARGIN_MS)


def prompt_end(fence: int) -> int:
    """The end (exclusive) of the event times a read of prompt events up to ``fence`` looks
    at: a prompt event ingested at or before the fence is stamped at most ``AHEAD_MS`` after
    it."""
    return fence + AHEAD_MS + 1


def prompt_fence(server_ms: int, settle_ms: int, previous: int | None, estimate: int) -> int:
    """The fence of a read of prompt events that asked for event times up to ``estimate``
    (its fence as the client's clock foretold it): no later than that, as events stamped
    after it were not read, and never behind the previous fence."""
    fence = min(server_ms - settle_ms, estimate)
    if previous is not None and fence < previous:
        return previous
    return fence


def resolve(cursor: Cursor | None, start: int) -> Cursor:
    """The cursor to read with, given the configured start time."""
    if cursor is None:
        return Cursor(covered_from=start)
    if cursor.cycle is not None or cursor.gap is not None:
        return cursor
    newest = cursor.newest_ts if cursor.newest_ts is not None else cursor.covered_from
    if start > newest:
        return Cursor(covered_from=start)
    if start < cursor.covered_from:
        if cursor.fence is None:
            return replace(cursor, covered_from=start)
        if late_fence(cursor) != cursor.fence:
            # A backfill takes up from one fence: it waits for the next sweep, which brings
            # the late events' fence level with the prompt ones'.
            return cursor
        gap = Gap(start=start, until=cursor.covered_from, fence=cursor.fence)
        return replace(cursor, covered_from=start, gap=gap)
    return cursor


def window_start(cursor: Cursor, lookback_ms: int, seeds: Mapping[str, Boundary]) -> int:
    """The earliest event time the next read of the group must look at.

    With a fence, an event ingested after it is at most ``lookback_ms`` older than its
    ingestion, so older events need not be read (the fence of late events, with a split:
    this is a sweep's start). Without a lookback, the read starts at the newest event sent
    (late events older than that are not seen). A first read starts at ``covered_from``, or
    near the per-stream positions it takes over.
    """
    fence = late_fence(cursor)
    if fence is None:
        marks = [b.ts for b in seeds.values() if b.ts is not None]
        if marks:
            return max(cursor.covered_from, min(marks) - lookback_ms)
        return cursor.covered_from
    if lookback_ms > 0:
        lo = max(cursor.covered_from, fence - lookback_ms)
    else:
        newest = cursor.newest_ts if cursor.newest_ts is not None else cursor.covered_from
        lo = max(cursor.covered_from, newest)
    if cursor.tail_lo is not None:
        lo = min(lo, max(cursor.covered_from, cursor.tail_lo))
    return lo


def read_done(cursor: Cursor, cycle: Cycle, settle_ms: int, held: int) -> Cursor:
    """The cursor after ``cycle`` completed. A first read (no fence before) opens a tail
    from where it started to the last millisecond before it began (its fence plus the
    settle margin; none when that is not after the fence): what was ingested by then, it
    promised; what came in later is a late event like any other. A tail closes with the
    first sweep whose fence reaches its end (what a tail holds beyond the prompt events'
    reach, sweeps send). A sweep moves both fences; a read of prompt events, the prompt
    one only."""
    tail_lo, tail_until = cursor.tail_lo, cursor.tail_until
    began = cycle.fence + settle_ms
    if cursor.fence is None and began - 1 > cycle.fence:
        # Without a settle margin (``--settle 0s``) the read left nothing behind its fence
        # that it began after: no tail, and no second read of the range.
        tail_lo, tail_until = _widen(tail_lo, tail_until, cycle.lo, began - 1)
    elif cycle.sweep and tail_until is not None and cycle.fence >= tail_until:
        tail_lo = tail_until = None
    late = cycle.fence if cycle.sweep else late_fence(cursor)
    return replace(
        cursor,
        fence=cycle.fence,
        late_fence=late,
        cycle=None,
        tail_lo=tail_lo,
        tail_until=tail_until,
        held=held,
    )


def backfill_done(cursor: Cursor, gap: Gap, began_ms: int) -> Cursor:
    """The cursor after the backfill ``gap`` completed (it sent what was ingested up to the
    gap's fence): a tail from the gap's start to ``began_ms`` (AWS's clock when it began),
    so the next reads send what came in meanwhile, whatever its timestamp."""
    tail_lo, tail_until = _widen(cursor.tail_lo, cursor.tail_until, gap.start, began_ms - 1)
    return replace(cursor, gap=None, tail_lo=tail_lo, tail_until=tail_until)


def _widen(lo: int | None, until: int | None, new_lo: int, new_until: int) -> tuple[int, int]:
    """A tail covering both the one open (if any) and the new one."""
    if lo is None or until is None:
        return new_lo, new_until
    return min(lo, new_lo), max(until, new_until)


@dataclass(frozen=True)
class Rule:
    """The events a read sends: timestamps from ``ts_from`` up to ``ts_until`` (exclusive),
    ingested after ``fence_lo`` (when set) and at or before ``fence_hi``. With a ``margin``,
    only prompt events (lateness from -``AHEAD_MS`` to the margin) go by ``fence_lo``; late
    ones go by ``late_lo`` when the read is a sweep (``late``), and are not this read's
    otherwise."""

    ts_from: int
    ts_until: int | None
    fence_lo: int | None
    fence_hi: int
    margin: int | None = None
    late_lo: int | None = None
    late: bool = True


def cycle_rule(cursor: Cursor, cycle: Cycle) -> Rule:
    """The rule of an ordinary read ``cycle``, a sweep or a read of prompt events."""
    late = late_fence(cursor)
    if cycle.sweep and late == cursor.fence:
        return Rule(cursor.covered_from, None, cursor.fence, cycle.fence)
    return Rule(
        cursor.covered_from, None, cursor.fence, cycle.fence, LATE_MARGIN_MS, late, cycle.sweep
    )


def gap_rule(gap: Gap) -> Rule:
    """The rule of a backfill."""
    return Rule(gap.start, gap.until, None, gap.fence)


def next_fence(server_ms: int, settle_ms: int, previous: int | None) -> int:
    """The fence of a read starting at AWS time ``server_ms``: ``settle_ms`` behind it, and
    never behind the previous fence (that would send events twice)."""
    fence = server_ms - settle_ms
    if previous is not None and fence < previous:
        return previous
    return fence


class Selector:
    """Decides, event by event in timestamp order, which events of a read to send: those
    the rule takes, less those sent before the read's mark and, on a first read after
    per-stream positions, those the stream's position says were sent."""

    __slots__ = (
        "_fence_hi",
        "_fence_lo",
        "_late",
        "_late_lo",
        "_margin",
        "_mark",
        "_seeds",
        "_ts_from",
        "_ts_until",
        "held",
    )

    def __init__(
        self, rule: Rule, mark: Boundary, seeds: Mapping[str, Boundary] | None = None
    ) -> None:
        self._ts_from = rule.ts_from
        self._ts_until = rule.ts_until if rule.ts_until is not None else 2**63
        self._fence_lo = rule.fence_lo if rule.fence_lo is not None else -(2**63)
        self._fence_hi = rule.fence_hi
        self._margin = rule.margin
        self._late = rule.late
        self._late_lo = rule.late_lo if rule.late_lo is not None else -(2**63)
        self._mark = Seen(mark)
        self._seeds = {name: Seen(b, by_stream=False) for name, b in (seeds or {}).items()}
        # Events in the rule's time range ingested after its upper fence: left for the
        # settle margin (an ordinary read's next read sends them).
        self.held = 0

    def accept_all(self, events: list[LogEvent]) -> bool:
        """Whether ``accept`` would take every one of ``events`` (a page well inside the
        rule, as nearly every page of a busy read is): found from their extremes at C speed,
        so that such a page needs no look at each event. False when unsure."""
        if not events or self._seeds:
            return False
        return self._inside(list(map(_TIMESTAMP, events)), list(map(_INGESTED, events)))

    def accept_columns(self, columns: Columns) -> bool:
        """``accept_all`` of a page held as columns."""
        if not len(columns) or self._seeds:
            return False
        return self._inside(columns.timestamps, columns.ingestion_times)

    def _inside(self, stamps: list[int], ingested: list[int]) -> bool:
        """Whether events with these timestamps and ingestion times all pass the rule (a
        page without seeds)."""
        if self._margin is not None:
            # A split read: only a page of prompt events goes by the one lower fence.
            lateness = list(map(operator.sub, ingested, stamps))
            if min(lateness) < -AHEAD_MS or max(lateness) > self._margin:
                return False
        return (
            min(stamps) >= self._ts_from
            and max(stamps) < self._ts_until
            and min(ingested) > self._fence_lo
            and max(ingested) <= self._fence_hi
            and self._mark.none_from(min(stamps))
        )

    def accept(self, event: LogEvent) -> bool:
        """Whether to send ``event``."""
        ts = event.timestamp
        if ts < self._ts_from or ts >= self._ts_until:
            return False
        ingested = event.ingestion_time
        lowest = self._fence_lo
        margin = self._margin
        if margin is not None and not -AHEAD_MS <= ingested - ts <= margin:
            if not self._late:
                return False  # a late event: the next sweep's
            lowest = self._late_lo
        if ingested > self._fence_hi:
            self.held += 1
            return False
        if ingested <= lowest:
            return False
        if self._mark.sent(event):
            return False
        if self._seeds:
            seen = self._seeds.get(event.stream)
            if seen is not None and seen.sent(event):
                return False
        return True
