"""Reads many streams of a group at once with FilterLogEvents, per-stream positions kept.

Where a group has many streams to read and few events in each, one FilterLogEvents page
(up to 10,000 events over up to 100 named streams) replaces a GetLogEvents call per stream.
Each stream keeps its own timestamp position; an event is forwarded only when it is newer
than its stream's position (or, at that very millisecond, not among those already sent).
"""

from __future__ import annotations

import logging

from . import cursor
from .cloudwatch import CloudWatchLogs, LogEvent, StreamInfo
from .config import DiscardRule
from .pipeline import Context, Stopped, Tally, encode
from .state import Position, StreamKey

log = logging.getLogger(__name__)

# FilterLogEvents names at most 100 streams a call.
STREAMS_PER_FILTER = 100
# Below this many streams to read in a group, per-stream GetLogEvents costs no more calls
# and keeps tokens, which follow a stream in ingestion order.
FILTER_MIN_STREAMS = 10


class GroupReader:
    """Collects a set of streams of one group together, a committed page at a time."""

    def __init__(
        self,
        ctx: Context,
        logs: CloudWatchLogs,
        account: str,
        group: str,
        discard: DiscardRule | None,
    ) -> None:
        self.ctx = ctx
        self.logs = logs
        self.account = account
        self.group = group
        self.discard = discard

    def key(self, stream: str) -> StreamKey:
        return StreamKey(self.account, self.logs.region, self.group, stream)

    def collect(
        self, streams: list[StreamInfo], positions: dict[str, Position], tally: Tally
    ) -> None:
        """Read every named stream to its end, in batches of ``STREAMS_PER_FILTER``."""
        for first in range(0, len(streams), STREAMS_PER_FILTER):
            batch = streams[first : first + STREAMS_PER_FILTER]
            self._batch(batch, {info.name: positions[info.name] for info in batch}, tally)

    def _batch(self, batch: list[StreamInfo], positions: dict[str, Position], tally: Tally) -> None:
        names = [info.name for info in batch]
        choose = cursor.GroupFilter(positions)
        start = choose.start_time()
        token: str | None = None
        while True:
            page = self.logs.filter(self.group, names, start_time=start, token=token)
            fresh: list[tuple[str, LogEvent]] = [
                (item.stream, item.event)
                for item in page.events
                if choose.accept(item.stream, item.event)
            ]
            self._send_and_commit(fresh, choose, tally)
            if not page.next_token:
                break
            if self.ctx.stop.is_set():
                raise Stopped
            token = page.next_token
        now = self.ctx.clock()
        done = [
            (self.key(info.name), cursor.checked(choose.position(info.name), info, now), 0, 0)
            for info in batch
        ]
        self.ctx.state.save_many(done)
        tally.streams += len(batch)
        for info in batch:
            self.ctx.progress.finished(self.key(info.name))

    def _send_and_commit(
        self, fresh: list[tuple[str, LogEvent]], choose: cursor.GroupFilter, tally: Tally
    ) -> None:
        """Forward a page's new events in page order, then commit every stream it moved."""
        if not fresh:
            return
        counts: dict[str, Tally] = {}
        wire: list[bytes] = []
        for stream, event in fresh:
            part = counts.get(stream)
            if part is None:
                part = counts[stream] = Tally()
            data = encode(event, self.discard, self._where(stream), part)
            if data is not None:
                wire.append(data)
        moved = {stream: choose.position(stream) for stream in counts}
        with self.ctx.page_lock:
            self.ctx.forwarder.send_all(wire)
            self.ctx.state.save_many(
                [
                    (self.key(stream), moved[stream], part.events, part.bytes)
                    for stream, part in counts.items()
                ]
            )
        for stream, part in counts.items():
            tally.add(part)
            self.ctx.progress.moved(self.key(stream), moved[stream].last_ts, part.events)

    def _where(self, stream: str) -> str:
        return f"group {self.group} stream {stream} ({self.account}, {self.logs.region})"
