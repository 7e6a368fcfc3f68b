"""One pass over one log group: backfill, read, send, commit, and remove idle streams.

A group is read whole with FilterLogEvents: one request returns every stream's events,
sorted by timestamp, so a cycle costs one call plus one per page of new events, whatever
the number of streams. Where FilterLogEvents is denied, each stream is read with
GetLogEvents under the very same rule. Every page is sent, then (never before) its cursor
is committed; a read's fences are committed before its first event is sent, so a crash
resumes the same read and repeats at most the page in flight.

A group's options (``groups.GroupOptions``) leave streams out (their events are dropped
before the read's rule, so they are neither sent, counted, nor part of any mark) and choose
the envelope; another account's group is named by its ARN in every call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ..errors import AccessDenied, GroupNotFound
from ..manager.envelope import Envelope
from ..model import (
    Boundary,
    Checkpoints,
    Cursor,
    Cycle,
    Discard,
    GroupKey,
    LogEvent,
    LogsApi,
    Page,
    Sink,
)
from . import boundary, window
from .groups import DEFAULT_OPTIONS, GroupOptions
from .outgoing import Outgoing, frame_columns, frame_page
from .pipeline import Stopped, Tally
from .progress import Progress

log = logging.getLogger(__name__)

# remove_log_streams: at most this many DescribeLogStreams pages (oldest first, 50 streams
# each) and this many deletions a cycle, so that removal never costs in proportion to the
# group's size; the rest waits for later cycles.
REMOVE_PAGES = 2
REMOVE_MAX = 50
# An event this close to the lookback (as a share of it) is reported: a little later and
# it would not have been seen.
LATE_WARNING_SHARE = 0.8


@dataclass(frozen=True)
class Settings:
    """How groups are read: the lookback, the settle margin and the removal margin (ms);
    ``late_every_ms``: how often a sweep reads the whole lookback for late events (0: every
    read does, as reads did before the split)."""

    lookback_ms: int
    settle_ms: int
    remove_idle_ms: int
    remove: bool = False
    late_every_ms: int = 0


@dataclass
class Outside:
    """What a pass needs from outside: state, sink, stop flag and progress."""

    store: Checkpoints
    sink: Sink
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Progress = field(default_factory=Progress)
    # Held from a page's first send to its commit: at most one page is ever sent without
    # its position on disk, so a crash repeats at most that page.
    page_lock: threading.Lock = field(default_factory=threading.Lock)
    filter_denied: Callable[[GroupKey], bool] = lambda _key: False
    deny_filter: Callable[[GroupKey], None] = lambda _key: None
    count_streams: bool = False


class GroupPass:
    """Collects one group of one account and region."""

    def __init__(
        self,
        key: GroupKey,
        api: LogsApi,
        outside: Outside,
        settings: Settings,
        *,
        discard: Discard | None,
        tally: Tally,
        target: str | None = None,
        options: GroupOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.key = key
        self.api = api
        self.out = outside
        self.settings = settings
        self.discard = discard
        self.tally = tally
        # How calls name the group: its name, or its ARN (another account's group).
        self.target = target or key.group
        self.options = options
        self.envelope = Envelope(key.account, key.region, key.group) if options.envelope else None
        # Event ids are kept only for the envelope, the one place that sends them.
        self._ids = self.envelope is not None
        self._keep = options.keeps if options.filters_streams else None
        self._prefix = options.server_prefix
        self.where = f"account {key.account}, region {key.region}, log group {key.group}"
        self._late_warned = False

    # the pass -------------------------------------------------------------------------

    def run(self, start: int) -> None:
        """Collect what is new since the stored cursor; ``start`` is the configured start."""
        store = self.out.store
        stored = store.cursor(self.key)
        seeds: Mapping[str, Boundary] = {}
        if stored is None or stored.fence is None:
            seeds = store.seeds(self.key)
        cursor = window.resolve(stored, start)
        if cursor != stored:
            self._explain(stored, cursor)
            store.save(self.key, cursor, {})
        if cursor.gap is not None:
            cursor = self._backfill(cursor)
        if self.out.filter_denied(self.key):
            cursor = self._read_streams(cursor, seeds)
        else:
            try:
                cursor = self._read_group(cursor, seeds)
            except AccessDenied as exc:
                if exc.operation != "FilterLogEvents" or cursor.cycle is not None:
                    raise
                self.out.deny_filter(self.key)
                log.info(
                    "%s: FilterLogEvents is not allowed; reading each stream with GetLogEvents "
                    "from now on",
                    self.where,
                )
                cursor = self._read_streams(cursor, seeds)
        self.tally.groups += 1
        if self.settings.remove:
            self._remove_idle(cursor)

    def _explain(self, before: Cursor | None, after: Cursor) -> None:
        if before is None:
            log.debug("%s: first collection", self.where)
        elif after.gap is not None and before.gap is None:
            log.info("%s: only_logs_after moved earlier; collecting the gap once", self.where)
        elif after.covered_from > before.covered_from:
            log.info(
                "%s: only_logs_after moved past what was collected; restarting there", self.where
            )

    # reading ------------------------------------------------------------------------

    def _read_group(self, cursor: Cursor, seeds: Mapping[str, Boundary]) -> Cursor:
        """Read the whole group with FilterLogEvents, from the cycle under way or a new one."""
        cycle = cursor.cycle
        settle = self.settings.settle_ms
        if cycle is None:
            split = window.split_for(self.settings.lookback_ms, self.settings.late_every_ms)
            estimate = window.next_fence(self.api.now_ms(), settle, cursor.fence)
            if split is None or window.sweep_due(cursor, split, estimate):
                lo = window.window_start(cursor, self.settings.lookback_ms, seeds)
                end = None
                page = self.api.filter(self.target, start=lo, prefix=self._prefix, ids=self._ids)
                fence = window.next_fence(page.server_ms, settle, cursor.fence)
            else:
                # Prompt events only: event times up to the fence the clock foretells.
                lo = window.prompt_start(cursor)
                end = window.prompt_end(estimate)
                page = self.api.filter(
                    self.target, start=lo, end=end, prefix=self._prefix, ids=self._ids
                )
                fence = window.prompt_fence(page.server_ms, settle, cursor.fence, estimate)
            cycle = Cycle(lo=lo, fence=fence, sweep=end is None)
            cursor = replace(cursor, cycle=cycle)
            self.out.store.save(self.key, cursor, {})
            start = lo
        else:
            start = cycle.mark.ts if cycle.mark.ts is not None else cycle.lo
            end = None if cycle.sweep else window.prompt_end(cycle.fence)
            log.info("%s: resuming the read interrupted before", self.where)
            page = self.api.filter(
                self.target, start=start, end=end, prefix=self._prefix, ids=self._ids
            )
        chooser = window.Selector(window.cycle_rule(cursor, cycle), cycle.mark, seeds)
        try:
            cursor = self._drain(cursor, page, chooser, start=start, end=end, marked=_cycle_marked)
        finally:
            self.tally.held += chooser.held
        done = window.read_done(cursor, cycle, self.settings.settle_ms, chooser.held)
        self.out.store.finish(self.key, done)
        self.out.progress.finished(self.key)
        return done

    def _read_streams(self, cursor: Cursor, seeds: Mapping[str, Boundary]) -> Cursor:
        """Read every stream with GetLogEvents under the rule of one cycle (FilterLogEvents
        denied): costs a listing and a call per stream, but sends the same events."""
        listing = self.api.streams(self.target)
        first = next(listing, None)
        cycle = cursor.cycle
        if cycle is None:
            # Fenced once the first listing page is in: a stream created later holds no
            # event ingested before the fence.
            lo = window.window_start(cursor, self.settings.lookback_ms, seeds)
            fence = window.next_fence(self.api.now_ms(), self.settings.settle_ms, cursor.fence)
            cycle = Cycle(lo=lo, fence=fence)
            cursor = replace(cursor, cycle=cycle)
            self.out.store.save(self.key, cursor, {})
        names = [] if first is None else [first.name, *(info.name for info in listing)]
        if self._keep is not None:
            names = [name for name in names if self._keep(name)]
        marks = self.out.store.stream_marks(self.key)
        rule = window.cycle_rule(cursor, cycle)
        held = 0
        for name in names:
            mark = marks.get(name, Boundary())
            if mark == window.DONE:
                continue
            stream_seeds = {name: seeds[name]} if name in seeds else None
            chooser = window.Selector(rule, mark, stream_seeds)
            try:
                cursor = self._read_stream(cursor, name, cycle.lo, mark, chooser)
            except GroupNotFound:
                log.info("%s: stream %s vanished while being read", self.where, name)
            finally:
                held += chooser.held
                self.tally.held += chooser.held
            self.out.store.save_stream_mark(self.key, name, window.DONE, cursor, {})
            self.tally.streams += 1
            if self.out.stop.is_set():
                raise Stopped
        done = window.read_done(cursor, cycle, self.settings.settle_ms, held)
        self.out.store.finish(self.key, done)
        return done

    def _read_stream(
        self, cursor: Cursor, name: str, lo: int, mark: Boundary, chooser: window.Selector
    ) -> Cursor:
        start = mark.ts if mark.ts is not None else lo
        token: str | None = None
        while True:
            page = self._stream_page(name, start, token)
            fresh = self._fresh(page.events, chooser)
            if fresh:
                mark = boundary.advance(mark, fresh)
                cursor = self._send(fresh, cursor, stream_mark=(name, mark))
            if page.next_token is None or page.next_token == token:
                return cursor
            if self.out.stop.is_set():
                raise Stopped
            token = page.next_token

    def _stream_page(self, name: str, start: int, token: str | None) -> Page:
        page = self.api.read(self.target, name, start=start, token=token)
        events = [event._replace(stream=name) for event in page.events]
        return Page(events, page.next_token, page.server_ms)

    def _backfill(self, cursor: Cursor) -> Cursor:
        """Read the open gap to its end, committing its progress after each page."""
        gap = cursor.gap
        assert gap is not None
        start = gap.mark.ts if gap.mark.ts is not None else gap.start
        chooser = window.Selector(window.gap_rule(gap), gap.mark)
        page = self.api.filter(
            self.target, start=start, end=gap.until, prefix=self._prefix, ids=self._ids
        )
        # What comes in after this request is a late event; what came in after the gap's
        # fence and before it, the reads after the backfill send (its tail).
        began = page.server_ms
        cursor = self._drain(cursor, page, chooser, start=start, end=gap.until, marked=_gap_marked)
        done = window.backfill_done(cursor, gap, began)
        self.out.store.save(self.key, done, {})
        log.info("%s: the gap before the former only_logs_after was collected", self.where)
        return done

    def _drain(
        self,
        cursor: Cursor,
        page: Page,
        chooser: window.Selector,
        *,
        start: int,
        end: int | None,
        marked: Callable[[Cursor, list[LogEvent]], Cursor],
    ) -> Cursor:
        """Send what ``chooser`` takes of ``page`` and of every page after it in the same
        FilterLogEvents read, committing after each page the cursor that ``marked`` moves
        past the events sent; only a missing token ends the read."""
        while True:
            whole = self._whole_columns(page, chooser)
            if whole is not None:
                # The page as columns, every event taken: sent without making the events
                # (the mark needs only those at the newest timestamp).
                assert page.columns is not None
                cursor = self._commit(whole, marked(cursor, page.columns.newest()))
                # Its figures go with the page, before the next one arrives.
                whole = None
            else:
                fresh = self._fresh(page.events, chooser)
                if fresh:
                    cursor = self._send(fresh, marked(cursor, fresh))
                fresh.clear()
            # The page in hand (10,000 events at most, the collector's largest object) is
            # let go before the next one arrives, so that never two are held at once.
            page.drop()
            if not page.next_token:
                return cursor
            if self.out.stop.is_set():
                raise Stopped
            page = self.api.filter(
                self.target,
                start=start,
                end=end,
                token=page.next_token,
                prefix=self._prefix,
                ids=self._ids,
            )

    def _whole_columns(self, page: Page, chooser: window.Selector) -> Outgoing | None:
        """A page held as columns whose every event the read takes, framed; None when the
        page needs a look at its events (or is held as events)."""
        columns = page.columns
        if columns is None or self._keep is not None or not chooser.accept_columns(columns):
            return None
        return frame_columns(columns, self.discard, self.envelope)

    def _fresh(self, events: list[LogEvent], chooser: window.Selector) -> list[LogEvent]:
        """The events of a page to send: those of the streams the group's options keep
        (the others are neither sent nor counted, and never move the mark) that the
        read's rule takes."""
        keep = self._keep
        if keep is None:
            if chooser.accept_all(events):
                return list(events)
            return [event for event in events if chooser.accept(event)]
        return [event for event in events if keep(event.stream) and chooser.accept(event)]

    # sending ------------------------------------------------------------------------

    def _send(
        self,
        fresh: list[LogEvent],
        cursor: Cursor,
        stream_mark: tuple[str, Boundary] | None = None,
    ) -> Cursor:
        """Send a page's new events, then commit ``cursor`` (already past them) with the
        statistics of every stream they came from."""
        return self._commit(
            frame_page(fresh, self.discard, self.where, self.envelope), cursor, stream_mark
        )

    def _commit(
        self,
        out: Outgoing,
        cursor: Cursor,
        stream_mark: tuple[str, Boundary] | None = None,
    ) -> Cursor:
        """Send a page's datagrams, then commit ``cursor`` (already past them) with the
        statistics of every stream they came from."""
        newest_ts = max(out.newest_ts, cursor.newest_ts or out.newest_ts)
        newest_in = max(out.newest_ingestion, cursor.newest_ingestion or out.newest_ingestion)
        cursor = replace(cursor, newest_ts=newest_ts, newest_ingestion=newest_in)
        if self.out.count_streams:
            for name, sent in out.sent.items():
                out.tally.per_stream[(self.key.region, self.key.group, name)] += sent.events
        with self.out.page_lock:
            self.out.sink.send_all(out.wire)
            # The datagrams (a page's size again) are not kept past their sending.
            out.wire.clear()
            if stream_mark is None:
                self.out.store.save(self.key, cursor, out.sent)
            else:
                name, mark = stream_mark
                self.out.store.save_stream_mark(self.key, name, mark, cursor, out.sent)
        self.tally.add(out.tally)
        self.out.progress.moved(self.key, newest_ts, out.tally.events)
        self._note_lateness(out.latest)
        return cursor

    def _note_lateness(self, latest: int) -> None:
        """Warn, once a pass, when an event came close to the lookback (within it, above
        ``LATE_WARNING_SHARE`` of it), or later than it (found only because this read
        covered its time, as a first collection does)."""
        lookback = self.settings.lookback_ms
        if lookback <= 0 or latest < lookback * LATE_WARNING_SHARE or self._late_warned:
            return
        self._late_warned = True
        if latest <= lookback:
            log.warning(
                "%s: an event arrived %.0f s after its timestamp, close to the lookback of "
                "%.0f s; events later than the lookback are not seen: raise --lookback",
                self.where,
                latest / 1000,
                lookback / 1000,
            )
            return
        log.warning(
            "%s: an event arrived %.0f s after its timestamp, later than the lookback of "
            "%.0f s; this read covered its time, but later cycles miss events that late: "
            "raise --lookback to at least %.0f s if such events are expected",
            self.where,
            latest / 1000,
            lookback / 1000,
            latest / 1000,
        )

    # removal ------------------------------------------------------------------------

    def _remove_idle(self, cursor: Cursor) -> None:
        """Delete idle streams whose every event was sent: oldest first, a bounded number
        a cycle, each after a last read finds nothing unsent and nothing recent."""
        settled = window.settled_fence(cursor)
        if settled is None:
            return
        now = self.api.now_ms()
        idle = self._idle_ms()
        lo = window.window_start(cursor, self.settings.lookback_ms, {})
        token: str | None = None
        removed = 0
        for _ in range(REMOVE_PAGES):
            infos, token = self.api.oldest_streams(self.target, token)
            for info in infos:
                if removed >= REMOVE_MAX or self.out.stop.is_set():
                    return
                if self._keep is not None and not self._keep(info.name):
                    continue  # its events are not sent: not ours to delete
                times = [t for t in (info.last_ingestion, info.last_event, info.creation_time) if t]
                if times and now - max(times) < idle:
                    continue
                if not self._nothing_left(info.name, lo, settled, now):
                    log.debug("%s: stream %s is not idle yet; kept", self.where, info.name)
                    continue
                with contextlib.suppress(GroupNotFound):
                    self.api.delete(self.target, info.name)
                self.out.store.forget_stream(self.key, info.name)
                self.tally.deleted += 1
                removed += 1
                log.info(
                    "%s: stream %s deleted after every event was forwarded", self.where, info.name
                )
            if token is None:
                return

    def _idle_ms(self) -> int:
        """How long a stream must have had no new event to be deleted: the removal margin,
        and never less than the settle margin (an event may not be readable before)."""
        return max(self.settings.remove_idle_ms, self.settings.settle_ms)

    def _nothing_left(self, name: str, lo: int, fence: int, now: int) -> bool:
        """Whether a last read of the stream finds no event unsent and none recent."""
        idle = self._idle_ms()
        token: str | None = None
        denied = self.out.filter_denied(self.key)
        while True:
            if denied:
                page = self._stream_page(name, lo, token)
            else:
                page = self.api.filter(
                    self.target, start=lo, streams=[name], token=token, ids=self._ids
                )
            for event in page.events:
                if event.ingestion_time > fence or now - event.ingestion_time < idle:
                    return False
            if denied and (page.next_token is None or page.next_token == token):
                return True
            if not denied and not page.next_token:
                return True
            token = page.next_token


def _cycle_marked(cursor: Cursor, sent: list[LogEvent]) -> Cursor:
    """The cursor with its read's mark moved past ``sent``."""
    assert cursor.cycle is not None
    mark = boundary.advance(cursor.cycle.mark, sent)
    return replace(cursor, cycle=replace(cursor.cycle, mark=mark))


def _gap_marked(cursor: Cursor, sent: list[LogEvent]) -> Cursor:
    """The cursor with its backfill's mark moved past ``sent``."""
    assert cursor.gap is not None
    return replace(cursor, gap=replace(cursor.gap, mark=boundary.advance(cursor.gap.mark, sent)))
