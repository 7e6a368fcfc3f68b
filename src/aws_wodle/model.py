"""The data of the read engine, and the outside parts it talks to, as Protocols.

This module, and the engine built on it (``boundary``, ``window``, ``grouppass``), import
no boto3, sqlite3 or lxml: the API, the checkpoints and the sink are handed in. Times are
milliseconds since the epoch on AWS's clock unless a name says otherwise.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Literal, NamedTuple, Protocol


class LogEvent(NamedTuple):
    """One log event (a tuple: built by the hundred thousand, it must be cheap).

    ``stream`` is the stream it belongs to (FilterLogEvents names it; a GetLogEvents reader
    fills it in); ``event_id`` is AWS's id where the call returns one."""

    timestamp: int
    message: str
    ingestion_time: int
    stream: str = ""
    event_id: str = ""


_MAKE_EVENT = functools.partial(tuple.__new__, LogEvent)


@dataclass
class Columns:
    """A page's events as one list per member, as the reader decodes a page where it can:
    the events themselves are made only when something asks for them. ``event_ids`` is
    None when the read asked for no ids (every event's is then empty)."""

    timestamps: list[int]
    messages: list[str]
    ingestion_times: list[int]
    streams: list[str]
    event_ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.timestamps)

    @classmethod
    def of(cls, events: list[LogEvent], *, ids: bool = True) -> Columns:
        """The columns of ``events`` (their ids only with ``ids``)."""
        return cls(
            [e.timestamp for e in events],
            [e.message for e in events],
            [e.ingestion_time for e in events],
            [e.stream for e in events],
            [e.event_id for e in events] if ids else None,
        )

    def extend(self, more: Columns) -> None:
        """Add ``more``'s events (with ids exactly when these columns have them)."""
        self.timestamps += more.timestamps
        self.messages += more.messages
        self.ingestion_times += more.ingestion_times
        self.streams += more.streams
        if self.event_ids is not None and more.event_ids is not None:
            self.event_ids += more.event_ids

    def events(self) -> list[LogEvent]:
        """The events, made at C speed."""
        ids = self.event_ids if self.event_ids is not None else repeat("", len(self))
        return list(
            map(
                _MAKE_EVENT,
                zip(
                    self.timestamps, self.messages, self.ingestion_times, self.streams, ids,
                    strict=True,
                ),
            )
        )  # fmt: skip

    def newest(self) -> list[LogEvent]:
        """The events at the newest timestamp (what a boundary keeps of a page sent)."""
        if not self.timestamps:
            return []
        newest = max(self.timestamps)
        at = [i for i, ts in enumerate(self.timestamps) if ts == newest]
        ids = self.event_ids
        return [
            LogEvent(
                newest,
                self.messages[i],
                self.ingestion_times[i],
                self.streams[i],
                ids[i] if ids is not None else "",
            )
            for i in at
        ]


class Page:
    """One FilterLogEvents or GetLogEvents page: its events, sorted by timestamp, and what
    continues it. A page may be short or empty while more events exist.

    ``next_token``: FilterLogEvents' token (None ends the read), or GetLogEvents' forward
    token (the token sent coming back ends it). ``server_ms``: AWS's clock when the request
    was sent, as well as the client knows it (from the HTTP ``Date`` of the answers).

    A page read as ``Columns`` keeps them in ``columns`` until ``events`` is first asked
    for, which makes the events (and drops the columns): whoever reads ``events`` sees
    every event either way; only a reader that asks ``columns`` first can do without."""

    __slots__ = ("_events", "columns", "next_token", "server_ms")

    def __init__(
        self,
        events: list[LogEvent] | Columns,
        next_token: str | None,
        server_ms: int,
    ) -> None:
        self._events: list[LogEvent] | None
        self.columns: Columns | None
        if isinstance(events, Columns):
            self._events, self.columns = None, events
        else:
            self._events, self.columns = events, None
        self.next_token = next_token
        self.server_ms = server_ms

    @property
    def events(self) -> list[LogEvent]:
        if self._events is None:
            assert self.columns is not None
            self._events = self.columns.events()
            self.columns = None
        return self._events

    def drop(self) -> None:
        """Let go of the page's events, however they are held."""
        self._events = []
        self.columns = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (self.events, self.next_token, self.server_ms) == (
            other.events,
            other.next_token,
            other.server_ms,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.columns is not None:
            shown = f"{len(self.columns)} events as columns"
        else:
            shown = f"{len(self._events or [])} events"
        return f"Page({shown}, next_token={self.next_token!r}, server_ms={self.server_ms})"


@dataclass(frozen=True)
class StreamInfo:
    """A log stream as DescribeLogStreams reports it. Its times lag: they may steer what to
    look at, never decide that nothing is new."""

    name: str
    creation_time: int | None
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None


@dataclass(frozen=True)
class GroupInfo:
    """A log group as DescribeLogGroups reports it: its name and when it was created."""

    name: str
    creation_time: int | None = None


@dataclass(frozen=True)
class Listing:
    """The groups a prefix selected in one account and region, as last listed.

    ``listed_at``: when (epoch s); ``first_listed_at``: when the prefix was first listed
    there (groups appearing after it are new); ``new``: the names of groups that were new
    in some listing, to collect from their creation."""

    listed_at: float
    first_listed_at: float
    groups: tuple[GroupInfo, ...]
    new: frozenset[str] = frozenset()

    def names(self) -> list[str]:
        return [info.name for info in self.groups]

    def created(self, name: str) -> int | None:
        """The creation time of a group that appeared after the first listing, else None
        (a group there from the start is collected from the usual start)."""
        if name not in self.new:
            return None
        for info in self.groups:
            if info.name == name:
                return info.creation_time
        return None

    def without(self, name: str) -> Listing:
        """This listing less a group that turned out to be gone."""
        groups = tuple(info for info in self.groups if info.name != name)
        return Listing(self.listed_at, self.first_listed_at, groups, self.new - {name})


@dataclass(frozen=True)
class GroupKey:
    """Where a log group lives: account, region and name."""

    account: str
    region: str
    group: str


@dataclass(frozen=True)
class Boundary:
    """Events already sent at one timestamp: ``ts`` and the digests of those sent with it
    (with repeats). ``ALL`` among the digests: every event at ``ts`` was sent."""

    ts: int | None = None
    digests: tuple[str, ...] = ()

    ALL = "*"


@dataclass(frozen=True)
class Cycle:
    """A read of a group under way: from ``lo`` (event time), every event whose ingestion
    time is at or before ``fence`` and after the cursor's committed fence; ``mark`` is how
    far it has got. Stored before the first event is sent, so a crash resumes the very same
    read. ``sweep``: whether it also sends late events (those ingested after the cursor's
    ``late_fence``); a read without it sends prompt events only, and reads event times up to
    its fence only."""

    lo: int
    fence: int
    mark: Boundary = Boundary()
    sweep: bool = True


@dataclass(frozen=True)
class Gap:
    """A backfill under way (only_logs_after moved earlier): every event with a timestamp
    from ``start`` up to ``until`` (exclusive) ingested at or before ``fence``; ``mark`` is
    how far it has got."""

    start: int
    until: int
    fence: int
    mark: Boundary = Boundary()


@dataclass(frozen=True)
class Cursor:
    """Where a group's collection stands.

    ``covered_from``: no event older than this is collected (only_logs_after, or the day
    the group was first seen). ``fence``: every event with a timestamp from ``covered_from``
    on, ingested at or before it, was sent (None until a first read completed).
    ``newest_ts``/``newest_ingestion``: of the events sent. ``cycle``/``gap``: reads under
    way. ``tail_lo``/``tail_until``: after a read of the whole range (a first collection
    or a backfill), reads start no later than ``tail_lo`` in event time until a completed
    read's fence reaches ``tail_until`` (AWS's clock just before that read began), so that the
    events it left for its settle margin are sent whatever their timestamp. ``held``: the
    events the last completed read left for its settle margin (they come with the next).
    ``late_fence``: with reads split by lateness (``window.Split``), every late event
    (ingested more than the split's margin after its timestamp, or before it) ingested at or
    before it was sent; ``fence`` then holds for prompt events only. None: the same as
    ``fence`` (a cursor written before the split, or one never split)."""

    covered_from: int
    fence: int | None = None
    newest_ts: int | None = None
    newest_ingestion: int | None = None
    cycle: Cycle | None = None
    gap: Gap | None = None
    tail_lo: int | None = None
    tail_until: int | None = None
    held: int = 0
    late_fence: int | None = None


@dataclass(frozen=True)
class Sent:
    """What one page sent for one stream: counts and the newest times, for statistics."""

    events: int
    bytes: int
    newest_ts: int
    newest_ingestion: int


@dataclass(frozen=True)
class DiscardRule:
    """Drop events whose message (or a dotted JSON field of it) matches a regex from its start.

    As the old module does: with a ``field``, a message that is JSON is dropped when the field
    (``a.b.c`` through nested objects) holds a match, and a message that is not JSON is matched
    as a whole; without a field, the whole message is matched, JSON or not.
    """

    pattern: re.Pattern[str]
    field: str | None

    def matched_in(self, message: str) -> Literal["field", "message"] | None:
        """Where the regex matched ``message``: in the field, in the whole message, or nowhere
        (the message is kept)."""
        if self.field is None:
            return "message" if self.pattern.match(message) else None
        try:
            value: object = json.loads(message)
        except (ValueError, RecursionError):
            return "message" if self.pattern.match(message) else None
        for part in self.field.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        text = value if isinstance(value, str) else json.dumps(value)
        return "field" if self.pattern.match(text) else None

    def discards(self, message: str) -> bool:
        """Tell whether ``message`` is to be dropped (see the class)."""
        return self.matched_in(message) is not None


@dataclass(frozen=True)
class CloudWatchService:
    """One ``<service type="cloudwatchlogs">`` block; the secret key never shows in repr."""

    line: int
    log_groups: tuple[str, ...]
    regions: tuple[str, ...]
    only_logs_after: datetime | None
    aws_profile: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    iam_role_arn: str | None = None
    iam_role_duration: int | None = None
    sts_endpoint: str | None = None
    service_endpoint: str | None = None
    aws_account_id: str | None = None
    aws_account_alias: str | None = None
    remove_log_streams: bool = False
    discard: DiscardRule | None = None


class Discard(Protocol):
    """A discard rule: whether a message is dropped instead of forwarded."""

    def discards(self, message: str) -> bool: ...


class LogsApi(Protocol):
    """The CloudWatch Logs calls of one account and region."""

    region: str

    def filter(
        self,
        group: str,
        *,
        start: int,
        end: int | None = None,
        streams: list[str] | None = None,
        token: str | None = None,
        prefix: str | None = None,
        ids: bool = True,
    ) -> Page:
        """One FilterLogEvents page over the group (or the named streams, or the streams
        whose names start with ``prefix``), ``start`` to ``end`` (exclusive) by event
        time. ``group`` is a name, or a log group ARN (another account's group). With
        ``ids`` false the events' ``event_id`` is left empty (it costs memory, and only the
        envelope sends it)."""
        ...

    def read(
        self, group: str, stream: str, *, start: int, end: int | None = None, token: str | None
    ) -> Page:
        """One GetLogEvents page of one stream, oldest first."""
        ...

    def streams(self, group: str) -> Iterator[StreamInfo]:
        """Every stream of the group (DescribeLogStreams, paged)."""
        ...

    def oldest_streams(self, group: str, token: str | None) -> tuple[list[StreamInfo], str | None]:
        """One DescribeLogStreams page, oldest last event first."""
        ...

    def delete(self, group: str, stream: str) -> None:
        """Delete one stream."""
        ...

    def log_groups(self, prefix: str) -> Iterator[GroupInfo]:
        """Every log group whose name starts with ``prefix`` (DescribeLogGroups, paged)."""
        ...

    def now_ms(self) -> int:
        """AWS's clock now, as well as the client knows it."""
        ...


class Checkpoints(Protocol):
    """Where the engine keeps each group's cursor; every write is durable on return."""

    def cursor(self, key: GroupKey) -> Cursor | None:
        """The stored cursor of a group, or None when it was never collected."""
        ...

    def seeds(self, key: GroupKey) -> Mapping[str, Boundary]:
        """Per-stream positions from before group cursors (an older state file, or the old
        module's imported state): where each stream's collection stood."""
        ...

    def save(self, key: GroupKey, cursor: Cursor, sent: Mapping[str, Sent]) -> None:
        """Store the cursor and add ``sent`` to each stream's statistics, in one commit."""
        ...

    def finish(self, key: GroupKey, cursor: Cursor) -> None:
        """Store the cursor of a completed read (seeds are no longer needed)."""
        ...

    def stream_marks(self, key: GroupKey) -> Mapping[str, Boundary]:
        """Per-stream progress of a per-stream read under way (FilterLogEvents denied)."""
        ...

    def save_stream_mark(
        self, key: GroupKey, stream: str, mark: Boundary, cursor: Cursor, sent: Mapping[str, Sent]
    ) -> None:
        """Store one stream's progress in a per-stream read, with the cursor and statistics."""
        ...

    def forget_stream(self, key: GroupKey, stream: str) -> None:
        """Drop a deleted stream's statistics."""
        ...


class Sink(Protocol):
    """The manager's queue: takes datagrams, in order, or raises."""

    def send_all(self, datagrams: Iterable[bytes]) -> None: ...
