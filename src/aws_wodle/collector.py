"""One pass over one configured service: discover streams, read, forward, commit, delete."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import cursor
from .budget import Budgets
from .cloudwatch import AwsAccess, CloudWatchLogs, EventPage, LogEvent, StreamInfo
from .config import CloudWatchService, DiscardRule
from .errors import AccessDenied, AwsError, GroupNotFound, RegionUnavailable, TokenRejected
from .forward import QueueForwarder, frame
from .state import Position, StateStore, StreamKey

log = logging.getLogger(__name__)

# Regions (and groups) read at once per service: enough to hide request latency, few
# enough to stay well inside DescribeLogStreams' 5 requests per second.
MAX_WORKERS = 8
# Streams of one group read at once: busy groups finish sooner, and every thread still
# shares the region's one client, its connection pool and its retry rate limiter.
STREAM_WORKERS = 4
# A stream written to within this margin is not deleted yet (the `--remove-idle` default).
DEFAULT_REMOVE_IDLE_SECONDS = 600.0


class Stopped(Exception):
    """A stop was requested; the page in hand was committed."""


@dataclass
class Context:
    """What a pass needs from outside: the state, the socket, the clock and a stop flag."""

    state: StateStore
    forwarder: QueueForwarder
    budgets: Budgets = field(default_factory=Budgets)
    remove_idle: float = DEFAULT_REMOVE_IDLE_SECONDS
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.time
    # Held from a page's first send to its commit: at any moment at most one page has been
    # forwarded without its position on disk, so a crash repeats at most that page.
    page_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Tally:
    """What a pass did, added up over streams, groups and regions."""

    events: int = 0
    bytes: int = 0
    discarded: int = 0
    truncated: int = 0
    streams: int = 0
    deleted: int = 0
    groups: int = 0
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, other: Tally) -> None:
        with self._lock:
            self.events += other.events
            self.bytes += other.bytes
            self.discarded += other.discarded
            self.truncated += other.truncated
            self.streams += other.streams
            self.deleted += other.deleted
            self.groups += other.groups
            self.failures.extend(other.failures)


def today_start(now: float) -> int:
    """00:00 UTC of the day of ``now``, in ms: the start when only_logs_after is not set."""
    day = datetime.fromtimestamp(now, tz=timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return int(day.timestamp() * 1000)


def datagrams(
    events: list[LogEvent], discard: DiscardRule | None, where: str, tally: Tally
) -> Iterator[bytes]:
    """The datagrams for the events that the discard rule keeps, in order."""
    for event in events:
        if discard is not None and discard.discards(event.message):
            tally.discarded += 1
            continue
        data, truncated = frame(event.message)
        if truncated:
            tally.truncated += 1
            stamp = datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc)
            log.warning(
                "event of %s at %s is %d bytes; sent truncated to the manager's limit of %d",
                where,
                stamp.isoformat(timespec="milliseconds"),
                len(event.message.encode("utf-8", "surrogatepass")),
                len(data),
            )
        tally.events += 1
        tally.bytes += len(data)
        yield data


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

    def collect(self, info: StreamInfo | None, start: int, tally: Tally) -> Position:
        """Read what is new since the stored position; returns the final position."""
        record = self.ctx.state.get(self.key)
        previous = record.position if record else None
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
        return self._forward(position, info, tally)

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


class ServicePass:
    """One collection of one service over its regions and groups."""

    def __init__(self, service: CloudWatchService, access: AwsAccess, ctx: Context) -> None:
        self.service = service
        self.access = access
        self.ctx = ctx

    def account(self) -> str:
        """The account id labelling state: configured, else STS, else the last one known."""
        if self.service.aws_account_id:
            return self.service.aws_account_id
        label = self.access.label
        try:
            account, _ = self.access.caller_identity()
        except AwsError:
            known = self.ctx.state.remembered_account(label)
            if known is None:
                raise
            return known
        self.ctx.state.remember_account(label, account)
        return account

    def start_for(self, account: str, region: str, group: str) -> int:
        if self.service.only_logs_after is not None:
            return int(self.service.only_logs_after.timestamp() * 1000)
        proposed = today_start(self.ctx.clock())
        return self.ctx.state.group_default_start(account, region, group, proposed)

    def run(self) -> Tally:
        """Collect every group in every region; failures are counted, never raised."""
        tally = Tally()
        started = time.monotonic()
        try:
            account = self.account()
            regions = list(self.service.regions)
            search_all = not regions
            if search_all:
                _, partition = self.access.caller_identity()
                regions = self.access.partition_regions(partition)
        except AwsError as exc:
            tally.failures.append(f"service at line {self.service.line}: {exc}")
            log.error("service at line %d: cannot start: %s", self.service.line, exc)
            return tally
        jobs = [(region, group) for region in regions for group in self.service.log_groups]
        found: dict[str, bool] = dict.fromkeys(self.service.log_groups, False)
        with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="collect") as pool:
            results = pool.map(lambda job: self._group(account, job[0], job[1], search_all), jobs)
            for (_, group), (group_tally, present) in zip(jobs, results, strict=False):
                tally.add(group_tally)
                found[group] = found[group] or present
        if search_all:
            for group, present in found.items():
                if not present:
                    message = (
                        f"account {account}: log group {group} found in no region of the "
                        "credentials' partition"
                    )
                    tally.failures.append(message)
                    log.error("%s", message)
        log.info(
            "service at line %d, account %s: %d events, %d bytes, %d streams in %d groups, "
            "%d discarded, %d deleted, %d failures, %.2f s",
            self.service.line,
            account,
            tally.events,
            tally.bytes,
            tally.streams,
            tally.groups,
            tally.discarded,
            tally.deleted,
            len(tally.failures),
            time.monotonic() - started,
        )
        return tally

    def _group(self, account: str, region: str, group: str, search_all: bool) -> tuple[Tally, bool]:
        tally = Tally()
        where = f"account {account}, region {region}, log group {group}"
        if self.ctx.stop.is_set():
            return tally, True
        try:
            self._collect_group(account, region, group, tally)
        except Stopped:
            return tally, True
        except (GroupNotFound, RegionUnavailable) as exc:
            if search_all:
                log.info("%s: skipped (%s)", where, exc)
                return tally, False
            tally.failures.append(f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        except AwsError as exc:
            tally.failures.append(f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        return tally, True

    def _collect_group(self, account: str, region: str, group: str, tally: Tally) -> None:
        logs = self.access.logs(region, self.ctx.budgets.get(account, region))
        streams = list(logs.streams(group))
        tally.groups += 1
        start = self.start_for(account, region, group)
        self._forget_vanished(account, region, group, {info.name for info in streams})
        denied = threading.Event()  # DeleteLogStream refused: do not ask again this pass
        with ThreadPoolExecutor(max_workers=STREAM_WORKERS, thread_name_prefix="stream") as pool:
            outcomes = list(
                pool.map(
                    lambda info: self._stream(logs, account, group, info, start, denied=denied),
                    streams,
                )
            )
        problems: list[AwsError] = []
        for stream_tally, problem in outcomes:
            tally.add(stream_tally)
            if problem is not None:
                problems.append(problem)
        if problems:
            raise _group_failure(problems)

    def _forget_vanished(self, account: str, region: str, group: str, listed: set[str]) -> None:
        """Drop the rows of streams that a complete listing no longer shows."""
        known = self.ctx.state.group_records(account, region, group)
        for name in sorted(set(known) - listed):
            self.ctx.state.forget(known[name].key)
            log.info(
                "account %s, region %s, group %s: stream %s is gone; its state dropped",
                account,
                region,
                group,
                name,
            )

    def _stream(
        self,
        logs: CloudWatchLogs,
        account: str,
        group: str,
        info: StreamInfo,
        start: int,
        *,
        denied: threading.Event,
    ) -> tuple[Tally, AwsError | None]:
        """Collect one stream (and remove it when asked); a failure is returned, not raised."""
        tally = Tally()
        if self.ctx.stop.is_set():
            raise Stopped
        key = StreamKey(account, logs.region, group, info.name)
        reader = StreamReader(self.ctx, logs, key, self.service.discard)
        try:
            position = reader.collect(info, start, tally)
            tally.streams += 1
            if self.service.remove_log_streams and not denied.is_set():
                reader.remove_if_idle(info, position, tally)
        except AccessDenied as exc:
            if exc.operation == "DeleteLogStream":
                denied.set()
            return tally, exc
        except GroupNotFound:
            self.ctx.state.forget(key)
            log.info("%s: stream vanished while being read", reader.where)
        except AwsError as exc:
            return tally, exc
        return tally, None


def _group_failure(problems: list[AwsError]) -> AwsError:
    """One error standing for a group's failed streams, naming a missing permission if any."""
    denied = next((p for p in problems if isinstance(p, AccessDenied)), None)
    if denied is not None and denied.operation == "DeleteLogStream":
        return AccessDenied(
            f"events collected, streams not removed: {denied} (add logs:DeleteLogStream to "
            "the policy, or set remove_log_streams to no)",
            denied.code,
            denied.operation,
        )
    first = problems[0]
    more = f" (and {len(problems) - 1} more streams)" if len(problems) > 1 else ""
    return type(first)(f"{first}{more}", first.code, first.operation)
