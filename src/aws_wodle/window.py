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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from .boundary import Seen
from .model import Boundary, Cursor, Gap, LogEvent

# A mark that every event of a stream was read (per-stream reads).
DONE = Boundary(ts=2**62)


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
        gap = Gap(start=start, until=cursor.covered_from, fence=cursor.fence)
        return replace(cursor, covered_from=start, gap=gap)
    return cursor


def window_start(cursor: Cursor, lookback_ms: int, seeds: Mapping[str, Boundary]) -> int:
    """The earliest event time the next read of the group must look at.

    With a fence, an event ingested after it is at most ``lookback_ms`` older than its
    ingestion, so older events need not be read. Without a lookback, the read starts at the
    newest event sent (late events older than that are not seen). A first read starts at
    ``covered_from``, or near the per-stream positions it takes over.
    """
    if cursor.fence is None:
        marks = [b.ts for b in seeds.values() if b.ts is not None]
        if marks:
            return max(cursor.covered_from, min(marks) - lookback_ms)
        return cursor.covered_from
    if lookback_ms > 0:
        return max(cursor.covered_from, cursor.fence - lookback_ms)
    newest = cursor.newest_ts if cursor.newest_ts is not None else cursor.covered_from
    return max(cursor.covered_from, newest)


@dataclass(frozen=True)
class Rule:
    """The events a read sends: timestamps from ``ts_from`` up to ``ts_until`` (exclusive),
    ingested after ``fence_lo`` (when set) and at or before ``fence_hi``."""

    ts_from: int
    ts_until: int | None
    fence_lo: int | None
    fence_hi: int


def cycle_rule(cursor: Cursor, fence: int) -> Rule:
    """The rule of an ordinary read up to ``fence``."""
    return Rule(cursor.covered_from, None, cursor.fence, fence)


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

    __slots__ = ("_fence_hi", "_fence_lo", "_mark", "_seeds", "_ts_from", "_ts_until")

    def __init__(
        self, rule: Rule, mark: Boundary, seeds: Mapping[str, Boundary] | None = None
    ) -> None:
        self._ts_from = rule.ts_from
        self._ts_until = rule.ts_until if rule.ts_until is not None else 2**63
        self._fence_lo = rule.fence_lo if rule.fence_lo is not None else -(2**63)
        self._fence_hi = rule.fence_hi
        self._mark = Seen(mark)
        self._seeds = {name: Seen(b, by_stream=False) for name, b in (seeds or {}).items()}

    def accept(self, event: LogEvent) -> bool:
        """Whether to send ``event``."""
        ts = event.timestamp
        if ts < self._ts_from or ts >= self._ts_until:
            return False
        ingested = event.ingestion_time
        if ingested > self._fence_hi or ingested <= self._fence_lo:
            return False
        if self._mark.sent(event):
            return False
        if self._seeds:
            seen = self._seeds.get(event.stream)
            if seen is not None and seen.sent(event):
                return False
        return True
