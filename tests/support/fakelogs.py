"""An in-process CloudWatch Logs with AWS's documented page semantics, and an in-memory store.

For fast tests of the read engine beside the moto ones: events are readable only after a
visibility delay, pages are capped by count and by 1 MB, FilterLogEvents pages may be short
or empty mid-result, ``endTime`` is exclusive, and the clock is the test's. Every other
FilterLogEvents page comes as ``Columns`` (as the reader gives a page orjson decodes), the
others as LogEvents, so that the engine's tests take both ways.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from aws_wodle.errors import AccessDenied, GroupNotFound
from aws_wodle.model import (
    Boundary,
    Columns,
    Cursor,
    GroupInfo,
    GroupKey,
    LogEvent,
    Page,
    Sent,
    StreamInfo,
)

PAGE_BYTES = 1_048_576
EVENT_OVERHEAD = 26


@dataclass(frozen=True)
class Stored:
    """One event as the fake keeps it: readable from ``visible_at`` (AWS time, ms)."""

    event: LogEvent
    seq: int
    visible_at: int

    @property
    def order(self) -> tuple[int, int, int]:
        return self.event.timestamp, self.event.ingestion_time, self.seq


@dataclass
class FakeLogs:
    """One account and region of CloudWatch Logs, in memory."""

    region: str = "us-east-1"
    now: int = 1_700_000_000_000
    page_events: int = 10_000
    short_pages: float = 0.0  # chance that a FilterLogEvents page is cut short (maybe empty)
    deny_filter: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    groups: dict[str, dict[str, list[Stored]]] = field(default_factory=dict)
    created: dict[tuple[str, str], int] = field(default_factory=dict)
    group_created: dict[str, int] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    # Events FilterLogEvents returned, over every call: what reads cost beyond their calls.
    returned: int = 0
    _seq: int = 0

    # writing (the test's side) -----------------------------------------------------------

    def create_group(self, group: str) -> None:
        """Create an empty group now."""
        self.groups.setdefault(group, {})
        self.group_created.setdefault(group, self.now)

    def delete_group(self, group: str) -> None:
        del self.groups[group]
        self.group_created.pop(group, None)

    def put(self, group: str, stream: str, timestamp: int, message: str, delay: int = 0) -> None:
        """Accept an event now (its ingestion time), readable ``delay`` ms later."""
        self.create_group(group)
        streams = self.groups.setdefault(group, {})
        if stream not in streams:
            streams[stream] = []
            self.created[(group, stream)] = self.now
        self._seq += 1
        event = LogEvent(timestamp, message, self.now, stream, str(self._seq))
        streams[stream].append(Stored(event, self._seq, self.now + delay))

    def advance(self, ms: int) -> None:
        self.now += ms

    # reading (the engine's side: model.LogsApi) ------------------------------------------

    def now_ms(self) -> int:
        return self.now

    def _group(self, group: str) -> dict[str, list[Stored]]:
        if group not in self.groups:
            raise GroupNotFound("The specified log group does not exist.", "RNF", "Filter")
        return self.groups[group]

    def _visible(
        self,
        group: str,
        streams: list[str] | None,
        start: int,
        end: int | None,
        prefix: str | None = None,
    ) -> list[Stored]:
        chosen = self._group(group)
        found = [
            s
            for name, events in chosen.items()
            if (streams is None or name in streams) and name.startswith(prefix or "")
            for s in events
            if s.visible_at <= self.now
            and s.event.timestamp >= start
            and (end is None or s.event.timestamp < end)
        ]
        return sorted(found, key=lambda s: s.order)

    def _page(
        self, events: list[Stored], after: str | None, short: bool
    ) -> tuple[list[Stored], bool]:
        """The events after the token's position, capped; whether more remain."""
        if after:
            ts, ing, seq = (int(x) for x in after.split(":"))
            events = [s for s in events if s.order > (ts, ing, seq)]
        size = 0
        page: list[Stored] = []
        limit = self.page_events
        if short and self.rng.random() < self.short_pages:
            limit = self.rng.randint(0, max(0, min(limit, len(events)) - 1))
        for s in events:
            cost = len(s.event.message.encode()) + EVENT_OVERHEAD
            if len(page) >= limit or (page and size + cost > PAGE_BYTES):
                break
            page.append(s)
            size += cost
        return page, len(page) < len(events)

    @staticmethod
    def _token(page: list[Stored], after: str | None) -> str:
        if not page:
            return after or "0:0:0"
        ts, ing, seq = page[-1].order
        return f"{ts}:{ing}:{seq}"

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
        self.calls["FilterLogEvents"] += 1
        if self.deny_filter:
            raise AccessDenied("denied", "AccessDeniedException", "FilterLogEvents")
        assert not (streams and prefix), "AWS refuses logStreamNames with logStreamNamePrefix"
        events = self._visible(group, streams, start, end, prefix)
        page, more = self._page(events, token, short=True)
        next_token = self._token(page, token) if more else None
        events_out = [s.event if ids else s.event._replace(event_id="") for s in page]
        self.returned += len(events_out)
        if self.calls["FilterLogEvents"] % 2:
            return Page(Columns.of(events_out, ids=ids), next_token, self.now)
        return Page(events_out, next_token, self.now)

    def read(
        self, group: str, stream: str, *, start: int, end: int | None = None, token: str | None
    ) -> Page:
        self.calls["GetLogEvents"] += 1
        if stream not in self._group(group):
            raise GroupNotFound("The specified log stream does not exist.", "RNF", "Get")
        events = self._visible(group, [stream], start, end)
        page, _ = self._page(events, token, short=False)
        events_out = [s.event._replace(stream="", event_id="") for s in page]
        return Page(events_out, self._token(page, token), self.now)

    def _info(self, group: str, name: str) -> StreamInfo:
        events = self.groups[group][name]
        last = max((s.event.timestamp for s in events), default=None)
        ingested = max((s.event.ingestion_time for s in events), default=None)
        first = min((s.event.timestamp for s in events), default=None)
        return StreamInfo(name, self.created[(group, name)], first, last, ingested)

    def streams(self, group: str) -> Iterator[StreamInfo]:
        self.calls["DescribeLogStreams"] += 1
        for name in sorted(self._group(group)):
            yield self._info(group, name)

    def oldest_streams(self, group: str, token: str | None) -> tuple[list[StreamInfo], str | None]:
        self.calls["DescribeLogStreams"] += 1
        infos = sorted(
            (self._info(group, name) for name in self._group(group)),
            key=lambda i: (i.last_event or 0, i.name),
        )
        first = int(token or 0)
        page = infos[first : first + 50]
        more = first + 50 < len(infos)
        return page, str(first + 50) if more else None

    def delete(self, group: str, stream: str) -> None:
        self.calls["DeleteLogStream"] += 1
        del self._group(group)[stream]

    def log_groups(self, prefix: str) -> Iterator[GroupInfo]:
        """DescribeLogGroups, 50 groups a call."""
        names = sorted(name for name in self.groups if name.startswith(prefix))
        for first in range(0, max(len(names), 1), 50):
            self.calls["DescribeLogGroups"] += 1
            for name in names[first : first + 50]:
                yield GroupInfo(name, self.group_created.get(name))


@dataclass
class MemoryStore:
    """The engine's checkpoints in memory (model.Checkpoints)."""

    cursors: dict[GroupKey, Cursor] = field(default_factory=dict)
    seeded: dict[GroupKey, dict[str, Boundary]] = field(default_factory=dict)
    marks: dict[GroupKey, dict[str, Boundary]] = field(default_factory=dict)
    counts: Counter[tuple[GroupKey, str]] = field(default_factory=Counter)
    denied: set[GroupKey] = field(default_factory=set)

    def cursor(self, key: GroupKey) -> Cursor | None:
        return self.cursors.get(key)

    def seeds(self, key: GroupKey) -> Mapping[str, Boundary]:
        return dict(self.seeded.get(key, {}))

    def save(self, key: GroupKey, cursor: Cursor, sent: Mapping[str, Sent]) -> None:
        self.cursors[key] = cursor
        for name, s in sent.items():
            self.counts[(key, name)] += s.events

    def finish(self, key: GroupKey, cursor: Cursor) -> None:
        self.cursors[key] = cursor
        self.seeded.pop(key, None)
        self.marks.pop(key, None)

    def stream_marks(self, key: GroupKey) -> Mapping[str, Boundary]:
        return dict(self.marks.get(key, {}))

    def save_stream_mark(
        self, key: GroupKey, stream: str, mark: Boundary, cursor: Cursor, sent: Mapping[str, Sent]
    ) -> None:
        self.save(key, cursor, sent)
        self.marks.setdefault(key, {})[stream] = mark

    def forget_stream(self, key: GroupKey, stream: str) -> None:
        self.counts.pop((key, stream), None)

    def clear_cycle(self, key: GroupKey) -> None:
        """Forget a read under way (as if its first commit never happened)."""
        self.cursors[key] = replace(self.cursors[key], cycle=None)


class Crash(Exception):
    """The sink died: stands for kill -9 in the middle of a page."""


@dataclass
class ListSink:
    """Collects datagrams; can be told to die after ``fail_after`` more datagrams."""

    received: list[bytes] = field(default_factory=list)
    fail_after: int | None = None

    def send_all(self, datagrams: Iterable[bytes]) -> None:
        for data in datagrams:
            if self.fail_after is not None:
                if self.fail_after <= 0:
                    self.fail_after = None
                    raise Crash
                self.fail_after -= 1
            self.received.append(data)

    def messages(self) -> list[str]:
        return [d.split(b":", 2)[2].decode() for d in self.received]
