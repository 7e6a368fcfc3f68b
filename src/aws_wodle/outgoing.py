"""A page's new events as datagrams, with the figures of what they carry.

The hot path of the collector: every event sent passes here once. The common case (raw
messages, no discard rule, plain UTF-8, within the manager's limit) stays in one loop;
every other case (the envelope included) goes through ``pipeline.encode``.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from .envelope import Envelope
from .forward import HEADER, MAX_DATAGRAM
from .model import Discard, LogEvent, Sent
from .pipeline import LATENESS_BUCKETS, Tally, encode

_BOUNDS_MS = tuple(int(bound * 1000) for bound in LATENESS_BUCKETS)
_BUCKETS = (*LATENESS_BUCKETS, float("inf"))


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
    out = Outgoing()
    # Raw messages and nothing to discard: the loop frames them itself.
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
