"""Checkpoint arithmetic for one stream: where to read from, what is new, where to resume.

Pure functions of positions, pages and times; no I/O. The rules:

- A stream never seen starts at the service's start time (``only_logs_after``).
- ``only_logs_after`` moved earlier than ``covered_from``: the gap before is read once,
  its progress kept like any other position.
- ``only_logs_after`` moved later than the newest event forwarded: collection restarts there.
- Resume with GetLogEvents' forward token while it is fresh; past its trusted age (tokens
  expire after 24 h) or when AWS rejects it, re-read from the newest timestamp forwarded and
  skip exactly the events already forwarded at that millisecond (the ``boundary``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .cloudwatch import EVENTS_PER_PAGE, EventPage, LogEvent, StreamInfo
from .state import Position

# A boundary holding this mark means every event at the newest timestamp was forwarded
# (known when importing the old module's state, which kept no digests).
ALL_AT_BOUNDARY = "*"
# AWS expires a forward token after 24 hours; trust it for 23 to keep a margin.
TOKEN_TRUST_SECONDS = 23 * 3600
# DescribeLogStreams' lastIngestionTime is updated "typically within an hour": a stream it
# shows unchanged is still read at least this often, so a stale field delays an event by at
# most this long and never loses it.
FULL_READ_SECONDS = 3600.0


def digest(event: LogEvent) -> str:
    """A short fingerprint of an event, to recognise it when re-read at a boundary."""
    raw = f"{event.timestamp}\x00{event.message}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


@dataclass(frozen=True)
class Request:
    """One GetLogEvents request: from ``token`` (with the ``start_time`` it belongs to) or
    from ``start_time`` alone, skipping the ``skip`` digests at ``start_time``; events at or
    after ``end_time`` are not wanted (a gap's end)."""

    start_time: int
    token: str | None = None
    end_time: int | None = None
    skip: tuple[str, ...] = ()


def resolve(position: Position | None, start: int) -> Position:
    """The position to read from, given the configured start time.

    A start earlier than ``covered_from`` opens a gap (a backfill) from there up to the old
    ``covered_from``, kept in the position so that a crash resumes it where it was; a gap
    already open is finished first, and a yet earlier start is seen to on a later cycle.
    """
    if position is None:
        return Position(covered_from=start)
    newest = position.last_ts if position.last_ts is not None else position.covered_from
    if start > newest:
        return Position(covered_from=start)
    if start < position.covered_from and position.gap_until is None:
        return replace(
            position,
            covered_from=start,
            gap_from=start,
            gap_until=position.covered_from,
            gap_boundary=(),
        )
    return position


def gap_request(position: Position) -> Request | None:
    """The request that continues an open gap, or None when there is none."""
    if position.gap_until is None or position.gap_from is None:
        return None
    return Request(
        start_time=position.gap_from, end_time=position.gap_until, skip=position.gap_boundary
    )


def advance_gap(position: Position, fresh: Sequence[LogEvent]) -> Position:
    """The position after ``fresh`` events of the gap were forwarded."""
    gap_from, boundary = _newest(position.gap_from, position.gap_boundary, fresh)
    return replace(position, gap_from=gap_from, gap_boundary=boundary)


def close_gap(position: Position) -> Position:
    """The position once the gap was read to its end."""
    return replace(position, gap_from=None, gap_until=None, gap_boundary=())


def forward_request(position: Position, now: float) -> Request:
    """The request that continues a stream after ``position``."""
    fresh = (
        position.token is not None
        and position.token_start is not None
        and position.token_saved is not None
        and now - position.token_saved < TOKEN_TRUST_SECONDS
    )
    if fresh:
        assert position.token_start is not None
        return Request(start_time=position.token_start, token=position.token)
    return timestamp_request(position)


def timestamp_request(position: Position) -> Request:
    """Re-read from the newest timestamp forwarded, without a token."""
    if position.last_ts is None:
        return Request(start_time=position.covered_from)
    return Request(start_time=position.last_ts, skip=position.boundary)


def new_events(request: Request, page: EventPage) -> list[LogEvent]:
    """The events of a page not forwarded before: boundary repeats and events past
    ``end_time`` are left out (moto's endTime is inclusive, AWS's exclusive)."""
    pending = Counter(request.skip)
    skip_all = ALL_AT_BOUNDARY in pending
    fresh: list[LogEvent] = []
    for event in page.events:
        if request.end_time is not None and event.timestamp >= request.end_time:
            continue
        if skip_all and event.timestamp == request.start_time:
            continue
        if pending and event.timestamp == request.start_time:
            mark = digest(event)
            if pending[mark] > 0:
                pending[mark] -= 1
                continue
        fresh.append(event)
    return fresh


def advance(
    position: Position, request: Request, page: EventPage, fresh: Sequence[LogEvent], now: float
) -> Position:
    """The position after ``fresh`` (the new events of ``page``) were forwarded."""
    return replace(
        advance_events(position, fresh),
        token=page.next_token or None,
        token_start=request.start_time,
        token_saved=now,
    )


def advance_events(position: Position, fresh: Sequence[LogEvent]) -> Position:
    """The newest timestamp, its boundary and the newest ingestion after ``fresh``."""
    if not fresh:
        return position
    ingested = max(event.ingestion_time for event in fresh)
    last_ingestion = position.last_ingestion
    if last_ingestion is None or ingested > last_ingestion:
        last_ingestion = ingested
    last_ts, boundary = _newest(position.last_ts, position.boundary, fresh)
    return replace(position, last_ts=last_ts, boundary=boundary, last_ingestion=last_ingestion)


def _newest(
    ts: int | None, boundary: tuple[str, ...], fresh: Sequence[LogEvent]
) -> tuple[int | None, tuple[str, ...]]:
    """The newest timestamp after ``fresh`` was forwarded past ``ts``, and the digests of
    the events forwarded at it (``boundary`` kept when the newest did not move)."""
    if not fresh:
        return ts, boundary
    newest = max(event.timestamp for event in fresh)
    if ts is not None and newest < ts:
        return ts, boundary
    at_newest = tuple(digest(event) for event in fresh if event.timestamp == newest)
    if ts is not None and newest == ts:
        return ts, boundary + at_newest
    return newest, at_newest


def has_fresh_token(position: Position, now: float) -> bool:
    """Whether the position resumes with a token rather than a timestamp."""
    return forward_request(position, now).token is not None


def needs_read(position: Position | None, info: StreamInfo, start: int, now: float) -> bool:
    """Whether a stream must be read this cycle, from what DescribeLogStreams shows.

    Unchanged streams are skipped: ``lastIngestionTime`` no newer than when the stream was
    last read to its end. New streams, open gaps, a moved ``only_logs_after`` and streams
    not read for ``FULL_READ_SECONDS`` are always read.
    """
    if position is None or resolve(position, start) != position:
        return True
    if position.gap_until is not None:
        return True
    if position.last_read is None or now - position.last_read >= FULL_READ_SECONDS:
        return True
    if info.last_ingestion is None:
        return False
    return position.checked_ingestion is None or info.last_ingestion > position.checked_ingestion


def confirmed_end(request: Request, page: EventPage) -> bool:
    """Whether the last page of a read proves the end: AWS's same token, or a short page.

    A full page that merely reaches ``lastEventTimestamp`` could be followed by more events
    of that very millisecond; such a stream is read again next cycle (one call)."""
    same_token = request.token is not None and page.next_token == request.token
    return same_token or len(page.events) < EVENTS_PER_PAGE


def checked(
    position: Position, info: StreamInfo | None, now: float, *, confirmed: bool = True
) -> Position:
    """The position of a stream just read to its end, as DescribeLogStreams showed it; an
    unconfirmed end leaves the stream to be read again next cycle."""
    seen = info.last_ingestion if info is not None and confirmed else None
    return replace(position, checked_ingestion=seen, last_read=now)


class _Track:
    """One stream's position while a group read moves it, kept cheap to update per event."""

    __slots__ = ("base", "boundary", "last_ingestion", "last_ts", "moved", "skip", "skip_all")

    def __init__(self, position: Position) -> None:
        self.base = position
        self.last_ts = position.last_ts
        self.last_ingestion = position.last_ingestion
        # Events forwarded at last_ts during this read (digested only when committed).
        self.boundary: list[LogEvent] = []
        self.skip = Counter(position.boundary)
        self.skip_all = ALL_AT_BOUNDARY in self.skip
        self.moved = False

    def position(self) -> Position:
        if not self.moved:
            return self.base
        fresh = tuple(digest(event) for event in self.boundary)
        kept = self.base.boundary if self.last_ts == self.base.last_ts else ()
        return replace(
            self.base,
            last_ts=self.last_ts,
            boundary=kept + fresh,
            last_ingestion=self.last_ingestion,
            token=None,
            token_start=None,
            token_saved=None,
        )


class GroupFilter:
    """Decides, event by event, which events of a FilterLogEvents read are new, keeping
    each stream's timestamp position (newest timestamp and its boundary) as it goes."""

    def __init__(self, positions: dict[str, Position]) -> None:
        self._tracks = {name: _Track(p) for name, p in positions.items()}

    def position(self, stream: str) -> Position:
        return self._tracks[stream].position()

    def start_time(self) -> int:
        """The earliest time any of the streams still needs."""
        return min(
            t.base.last_ts if t.base.last_ts is not None else t.base.covered_from
            for t in self._tracks.values()
        )

    def accept(self, stream: str, event: LogEvent) -> bool:
        """Whether ``event`` of ``stream`` is new; if so the stream's position moves past it."""
        track = self._tracks.get(stream)
        if track is None or event.timestamp < track.base.covered_from:
            return False
        last_ts = track.last_ts
        if last_ts is not None and event.timestamp < last_ts:
            return False
        if last_ts is not None and event.timestamp == last_ts:
            if last_ts == track.base.last_ts:
                if track.skip_all:
                    return False
                if track.skip:
                    mark = digest(event)
                    if track.skip[mark] > 0:
                        track.skip[mark] -= 1
                        return False
            track.boundary.append(event)
        else:
            track.last_ts = event.timestamp
            track.boundary = [event]
        if track.last_ingestion is None or event.ingestion_time > track.last_ingestion:
            track.last_ingestion = event.ingestion_time
        track.moved = True
        return True


def next_request(request: Request, page: EventPage) -> Request:
    """The request for the page after ``page`` in the same read."""
    return Request(start_time=request.start_time, token=page.next_token, end_time=request.end_time)


def at_end(request: Request, page: EventPage, info: StreamInfo | None, newest: int | None) -> bool:
    """Whether ``page`` ends the stream, without an extra empty call where it shows so.

    The same token coming back is AWS's own end mark. A page whose newest event reaches the
    stream's ``lastEventTimestamp`` also ends it: that field is updated late, so at worst a
    stale value ends a read early and the rest comes on a later cycle (a full page ending
    so is not taken as proof: see ``confirmed_end``).
    """
    if request.token is not None and page.next_token == request.token:
        return True
    if info is None or info.last_event is None:
        return False
    if request.end_time is not None:
        return bool(page.events) and page.events[-1].timestamp >= request.end_time
    return newest is not None and newest >= info.last_event
