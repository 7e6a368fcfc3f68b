"""Reads one stream with GetLogEvents from its stored position to its end, and removes it."""

from __future__ import annotations

import logging

from . import cursor
from .cloudwatch import CloudWatchLogs, EventPage, LogEvent, StreamInfo
from .config import DiscardRule
from .errors import TokenRejected
from .pipeline import Context, Stopped, Tally, datagrams
from .state import Position, StreamKey

log = logging.getLogger(__name__)


class StreamReader:
    """Reads one stream from its stored position to its end, a committed page at a time."""

    def __init__(
        self,
        ctx: Context,
        logs: CloudWatchLogs,
        key: StreamKey,
        discard: DiscardRule | None,
    ) -> None:
        self.ctx = ctx
        self.logs = logs
        self.key = key
        self.discard = discard
        self.where = f"group {key.group} stream {key.stream} ({key.account}, {key.region})"
        # Whether the last read ended on proof of the end (see cursor.confirmed_end).
        self.confirmed = True

    def collect(
        self, previous: Position | None, info: StreamInfo | None, start: int, tally: Tally
    ) -> Position:
        """Read what is new since the stored ``previous`` position; returns the final one."""
        position = cursor.resolve(previous, start)
        if previous is not None and position.covered_from > previous.covered_from:
            log.info(
                "%s: only_logs_after moved past what was collected; restarting there", self.where
            )
        if position.gap_until is not None:
            if previous is None or previous.gap_until is None:
                log.info("%s: only_logs_after moved earlier; collecting the gap once", self.where)
                self.ctx.state.save(self.key, position, events=0, nbytes=0)
            position = self._backfill(position, info, tally)
        try:
            return self._forward(position, info, tally)
        finally:
            self.ctx.progress.finished(self.key)

    def _read(self, request: cursor.Request) -> EventPage:
        return self.logs.read(
            self.key.group,
            self.key.stream,
            start_time=request.start_time,
            end_time=request.end_time,
            token=request.token,
        )

    def _send_and_commit(self, fresh: list[LogEvent], new: Position, tally: Tally) -> None:
        """Forward a page's new events, then (never before) store the position after them."""
        page_tally = Tally()
        with self.ctx.page_lock:
            self.ctx.forwarder.send_all(datagrams(fresh, self.discard, self.where, page_tally))
            self.ctx.state.save(self.key, new, events=page_tally.events, nbytes=page_tally.bytes)
        tally.add(page_tally)
        self.ctx.progress.moved(self.key, new.last_ts, page_tally.events)

    def _forward(self, position: Position, info: StreamInfo | None, tally: Tally) -> Position:
        request = cursor.forward_request(position, self.ctx.clock())
        while True:
            try:
                page = self._read(request)
            except TokenRejected:
                log.info("%s: stored token refused; resuming from the last timestamp", self.where)
                request = cursor.timestamp_request(position)
                page = self._read(request)
            fresh = cursor.new_events(request, page)
            new = cursor.advance(position, request, page, fresh, self.ctx.clock())
            self._send_and_commit(fresh, new, tally)
            position = new
            if cursor.at_end(request, page, info, position.last_ts):
                self.confirmed = cursor.confirmed_end(request, page)
                return position
            if self.ctx.stop.is_set():
                raise Stopped
            request = cursor.next_request(request, page)

    def _backfill(self, position: Position, info: StreamInfo | None, tally: Tally) -> Position:
        """Read the open gap to its end, committing its progress after each page."""
        request = cursor.gap_request(position)
        while request is not None:
            page = self._read(request)
            fresh = cursor.new_events(request, page)
            new = cursor.advance_gap(position, fresh)
            done = cursor.at_end(request, page, info, None) or not page.next_token
            if done:
                new = cursor.close_gap(new)
            self._send_and_commit(fresh, new, tally)
            position = new
            if done:
                break
            if self.ctx.stop.is_set():
                raise Stopped
            request = cursor.next_request(request, page)
        return position

    def remove_if_idle(self, info: StreamInfo | None, position: Position, tally: Tally) -> None:
        """Delete the stream when it is idle and a last read finds nothing new."""
        now_ms = int(self.ctx.clock() * 1000)
        latest = max(
            (
                t
                for t in (
                    info.last_ingestion if info else None,
                    info.last_event if info else None,
                    position.last_ingestion,
                )
                if t is not None
            ),
            default=None,
        )
        if latest is not None and now_ms - latest < self.ctx.remove_idle * 1000:
            log.debug("%s: written to within --remove-idle; kept for now", self.where)
            return
        request = cursor.forward_request(position, self.ctx.clock())
        page = self._read(request)
        fresh = cursor.new_events(request, page)
        if fresh:
            new = cursor.advance(position, request, page, fresh, self.ctx.clock())
            self._send_and_commit(fresh, new, tally)
            log.info("%s: new events arrived before deletion; kept for now", self.where)
            return
        self.logs.delete(self.key.group, self.key.stream)
        self.ctx.state.forget(self.key)
        tally.deleted += 1
        log.info("%s: deleted after every event was forwarded", self.where)
