"""A page's new events as datagrams, with the figures of what they carry.

The hot path of the collector: every event sent passes here once. The common case (raw
messages, no discard rule, plain UTF-8, within the manager's limit) stays in one loop;
every other case (the envelope included) goes through ``pipeline.encode``.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from ..manager.envelope import Envelope
from ..manager.forward import HEADER, MAX_DATAGRAM
from ..model import Columns, Discard, LogEvent, Sent
from .pipeline import LATENESS_BUCKETS, Tally, encode

_BOUNDS_MS = tuple(int(bound * 1000) for bound in LATENESS_BUCKETS)
_BUCKETS = (*LATENESS_BUCKETS, float("inf"))
# A LogEvent's fields, at C speed.
_TIMESTAMP = operator.itemgetter(0)
_MESSAGE = operator.itemgetter(1)
_INGESTED = operator.itemgetter(2)
_STREAM = operator.itemgetter(3)
_FRAME = HEADER.__add__


@dataclass
class Outgoing:
    """The datagrams of a page, in order; per stream, what was sent; the tally's part;
    the newest timestamp and ingestion time, and the largest lateness (ms)."""

    wire: list[bytes] = field(default_factory=list)
    sent: dict[str, Sent] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    newest_ts: int = -(2**63)
    newest_ingestion: int = -(2**63)
    latest: int = 0


def frame_page(
    events: list[LogEvent], discard: Discard | None, where: str, envelope: Envelope | None = None
) -> Outgoing:
    """Frame ``events`` (a page's new ones) for the manager and add up their figures; with
    an ``envelope``, each event goes in it instead of as its raw message."""
    # Raw messages and nothing to discard: the whole page at C speed, when it can be.
    fast = discard is None and envelope is None
    if fast and events:
        whole = _frame_whole(events)
        if whole is not None:
            return whole
    return _frame_each(events, discard, where, envelope)


def _frame_each(
    events: list[LogEvent], discard: Discard | None, where: str, envelope: Envelope | None
) -> Outgoing:
    """``frame_page`` an event at a time: any page, whatever its messages and rules."""
    out = Outgoing()
    fast = discard is None and envelope is None
    part = out.tally
    wire = out.wire
    stats: dict[str, list[int]] = {}
    late_counts = [0] * len(_BUCKETS)
    newest_ts = out.newest_ts
    newest_in = out.newest_ingestion
    latest = 0
    fast_events = 0
    fast_bytes = 0
    for event in events:
        ts, message, ingested, stream = event[0], event[1], event[2], event[3]
        data: bytes | None = None
        if fast:
            try:
                data = HEADER + message.encode("utf-8")
            except UnicodeEncodeError:
                data = None
            if data is not None and len(data) > MAX_DATAGRAM:
                data = None
        if data is not None:
            fast_events += 1
            fast_bytes += len(data)
            size = len(data)
        else:
            before = part.bytes
            data = encode(event, discard, f"{where}, stream {stream}", part, envelope)
            size = part.bytes - before
        row = stats.get(stream)
        if row is None:
            row = stats[stream] = [0, 0, ts, ingested]
        if data is not None:
            wire.append(data)
            row[0] += 1
            row[1] += size
        if ts > row[2]:
            row[2] = ts
        if ingested > row[3]:
            row[3] = ingested
        if ts > newest_ts:
            newest_ts = ts
        if ingested > newest_in:
            newest_in = ingested
        late = ingested - ts
        if late > latest:
            latest = late
        late_counts[bisect_left(_BOUNDS_MS, late)] += 1
    part.events += fast_events
    part.bytes += fast_bytes
    for bucket, count in zip(_BUCKETS, late_counts, strict=True):
        if count:
            part.lateness[bucket] += count
    out.sent = {name: Sent(r[0], r[1], r[2], r[3]) for name, r in stats.items()}
    out.newest_ts = newest_ts
    out.newest_ingestion = newest_in
    out.latest = latest
    return out


def frame_columns(
    columns: Columns, discard: Discard | None, envelope: Envelope | None = None
) -> Outgoing | None:
    """``frame_page`` of a page held as columns, or None when it needs the events (a rule
    to discard by, an envelope, or an event ``_frame_whole`` would not take)."""
    if discard is not None or envelope is not None or not len(columns):
        return None
    return _frame_messages(
        columns.messages, columns.timestamps, columns.ingestion_times, columns.streams
    )


def _frame_whole(events: list[LogEvent]) -> Outgoing | None:
    """``frame_page`` of raw messages a page at a time (each step but the per-stream figures
    of a page of several streams a loop in C), or None when an event needs the look of the
    event loop: a message that is not plain UTF-8 (or no string), or a datagram over the
    manager's limit."""
    return _frame_messages(
        list(map(_MESSAGE, events)),
        list(map(_TIMESTAMP, events)),
        list(map(_INGESTED, events)),
        list(map(_STREAM, events)),
    )


def _frame_messages(
    messages: list[str], stamps: list[int], ingested: list[int], streams: list[str]
) -> Outgoing | None:
    """``_frame_whole`` of a page's members, one list each (not empty)."""
    try:
        wire = list(map(_FRAME, map(str.encode, messages)))
    except (UnicodeEncodeError, TypeError):
        return None
    sizes = list(map(len, wire))
    if max(sizes) > MAX_DATAGRAM:
        return None
    out = Outgoing(wire=wire)
    total = sum(sizes)
    first = streams[0]
    if streams.count(first) == len(streams):
        out.sent = {first: Sent(len(wire), total, max(stamps), max(ingested))}
    else:
        stats: dict[str, list[int]] = {}
        for name, size, ts, got in zip(streams, sizes, stamps, ingested, strict=True):
            row = stats.get(name)
            if row is None:
                stats[name] = [1, size, ts, got]
                continue
            row[0] += 1
            row[1] += size
            if ts > row[2]:
                row[2] = ts
            if got > row[3]:
                row[3] = got
        out.sent = {name: Sent(r[0], r[1], r[2], r[3]) for name, r in stats.items()}
    part = out.tally
    part.events = len(wire)
    part.bytes = total
    lateness = list(map(operator.sub, ingested, stamps))
    latest = max(lateness)
    least = bisect_left(_BOUNDS_MS, min(lateness))
    if least == bisect_left(_BOUNDS_MS, latest):
        # Every event in one bucket of the histogram (a page of prompt events): no sort.
        part.lateness[_BUCKETS[least]] += len(lateness)
    else:
        # The histogram from the sorted latenesses: the events up to each bucket's bound,
        # found by bisection, less those up to the bound before.
        lateness.sort()
        below = 0
        for bucket, bound in zip(_BUCKETS, (*_BOUNDS_MS, None), strict=True):
            upto = len(lateness) if bound is None else bisect_right(lateness, bound)
            if upto > below:
                part.lateness[bucket] += upto - below
                below = upto
    out.newest_ts = max(stamps)
    out.newest_ingestion = max(ingested)
    out.latest = latest if latest > 0 else 0
    return out
