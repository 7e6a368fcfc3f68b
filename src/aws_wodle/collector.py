"""One pass over one configured service: discover streams, plan reads, collect, delete."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from . import cursor
from .cloudwatch import AwsAccess, CloudWatchLogs, StreamInfo
from .config import CloudWatchService
from .errors import AccessDenied, AwsError, GroupNotFound, RegionUnavailable
from .groupread import FILTER_MIN_STREAMS, GroupReader
from .pipeline import Context, Stopped, Tally, today_start
from .state import Position, StreamKey, StreamRecord
from .streams import StreamReader

log = logging.getLogger(__name__)

# Regions and groups read at once per service: enough for many regions to finish in the
# time of one; the request budget of each account and region keeps them within its quotas.
MAX_WORKERS = 16
# Streams of one group read at once: busy groups finish sooner, and every thread still
# shares the region's one client, its connection pool and its request budget.
STREAM_WORKERS = 4


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
            tally.fail(type(exc).__name__, f"service at line {self.service.line}: {exc}")
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
                    tally.fail("GroupNotFound", message)
                    log.error("%s", message)
        log.info(
            "service at line %d, account %s: %d events, %d bytes, %d streams read and %d "
            "unchanged in %d groups, %d discarded, %d deleted, %d failures, %.2f s",
            self.service.line,
            account,
            tally.events,
            tally.bytes,
            tally.streams,
            tally.skipped,
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
            tally.fail(type(exc).__name__, f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        except AwsError as exc:
            tally.fail(type(exc).__name__, f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        return tally, True

    def _collect_group(self, account: str, region: str, group: str, tally: Tally) -> None:
        logs = self.access.logs(region, self.ctx.budgets.get(account, region))
        streams = list(logs.streams(group))
        tally.groups += 1
        start = self.start_for(account, region, group)
        known = self.ctx.state.group_records(account, region, group)
        self._forget_vanished(account, region, group, known, {info.name for info in streams})
        positions = {name: record.position for name, record in known.items()}
        reported = {i.name: i.last_event for i in streams if i.last_event is not None}
        now = self.ctx.clock()
        due = [i for i in streams if cursor.needs_read(positions.get(i.name), i, start, now)]
        tally.skipped += len(streams) - len(due)
        try:
            part, problem = self._read_due(
                logs, account, group, due, positions=positions, start=start
            )
        finally:
            # What CloudWatch reported, for the lag that `status` shows (streams read for
            # the first time have their rows only now).
            self.ctx.state.note_reported(account, region, group, reported)
        tally.add(part)
        if problem is not None:
            raise problem
        if self.service.remove_log_streams:
            denied = threading.Event()  # DeleteLogStream refused: do not ask again this pass
            removal = self._each(
                streams,
                lambda info, t: self._remove_one(logs, account, group, info, t, denied=denied),
                tally,
            )
            if removal:
                raise _group_failure(removal)

    def _read_due(
        self,
        logs: CloudWatchLogs,
        account: str,
        group: str,
        due: list[StreamInfo],
        *,
        positions: dict[str, Position],
        start: int,
    ) -> tuple[Tally, AwsError | None]:
        """Read the streams that need it, together where that saves calls; returns the
        tally, and the group's failure if any streams failed."""
        tally = Tally()
        resolved = {i.name: cursor.resolve(positions.get(i.name), start) for i in due}
        together, alone = self._plan(account, logs.region, group, due, resolved)
        if together:
            reader = GroupReader(self.ctx, logs, account, group, self.service.discard)
            try:
                reader.collect(together, resolved, tally)
            except AccessDenied as exc:
                if exc.operation != "FilterLogEvents":
                    raise
                self.ctx.state.deny_filter(account, logs.region, group)
                log.info(
                    "account %s, region %s, group %s: FilterLogEvents is not allowed; reading "
                    "each stream with GetLogEvents from now on",
                    account,
                    logs.region,
                    group,
                )
                alone = together + alone
        problems = self._each(
            alone,
            lambda info, t: self._read_one(
                logs, account, group, info, t, previous=positions.get(info.name), start=start
            ),
            tally,
        )
        return tally, _group_failure(problems) if problems else None

    def _plan(
        self,
        account: str,
        region: str,
        group: str,
        due: list[StreamInfo],
        resolved: dict[str, Position],
    ) -> tuple[list[StreamInfo], list[StreamInfo]]:
        """Split the streams to read into those read together (FilterLogEvents) and those
        read one by one (GetLogEvents): streams with a live token or an open gap go alone;
        the others go together when there are enough of them and the account allows it."""
        now = self.ctx.clock()
        candidates: list[StreamInfo] = []
        alone: list[StreamInfo] = []
        for info in due:
            position = resolved[info.name]
            if position.gap_until is None and not cursor.has_fresh_token(position, now):
                candidates.append(info)
            else:
                alone.append(info)
        if len(candidates) < FILTER_MIN_STREAMS or self.ctx.state.filter_denied(
            account, region, group
        ):
            return [], due
        return candidates, alone

    def _each(
        self,
        streams: list[StreamInfo],
        work: Callable[[StreamInfo, Tally], None],
        tally: Tally,
    ) -> list[AwsError]:
        """Run ``work`` on every stream, a few at once; returns the failures."""

        def one(info: StreamInfo) -> tuple[Tally, AwsError | None]:
            part = Tally()
            if self.ctx.stop.is_set():
                raise Stopped
            try:
                work(info, part)
            except AwsError as exc:
                return part, exc
            return part, None

        problems: list[AwsError] = []
        with ThreadPoolExecutor(max_workers=STREAM_WORKERS, thread_name_prefix="stream") as pool:
            for part, problem in pool.map(one, streams):
                tally.add(part)
                if problem is not None:
                    problems.append(problem)
        return problems

    def _reader(
        self, logs: CloudWatchLogs, account: str, group: str, info: StreamInfo
    ) -> StreamReader:
        key = StreamKey(account, logs.region, group, info.name)
        return StreamReader(self.ctx, logs, key, self.service.discard)

    def _read_one(
        self,
        logs: CloudWatchLogs,
        account: str,
        group: str,
        info: StreamInfo,
        tally: Tally,
        *,
        previous: Position | None,
        start: int,
    ) -> None:
        """Read one stream to its end with GetLogEvents, from its stored ``previous``
        position (None for a stream never collected)."""
        reader = self._reader(logs, account, group, info)
        try:
            position = reader.collect(previous, info, start, tally)
        except GroupNotFound:
            self.ctx.state.forget(reader.key)
            log.info("%s: stream vanished while being read", reader.where)
            return
        done = cursor.checked(position, info, self.ctx.clock(), confirmed=reader.confirmed)
        self.ctx.state.save(reader.key, done, events=0, nbytes=0)
        tally.streams += 1

    def _remove_one(
        self,
        logs: CloudWatchLogs,
        account: str,
        group: str,
        info: StreamInfo,
        tally: Tally,
        *,
        denied: threading.Event,
    ) -> None:
        """Delete one collected stream when it is idle and a last read finds nothing new."""
        if denied.is_set():
            return
        reader = self._reader(logs, account, group, info)
        record = self.ctx.state.get(reader.key)
        if record is None:
            return
        try:
            reader.remove_if_idle(info, record.position, tally)
        except AccessDenied as exc:
            if exc.operation == "DeleteLogStream":
                denied.set()
            raise
        except GroupNotFound:
            self.ctx.state.forget(reader.key)

    def _forget_vanished(
        self,
        account: str,
        region: str,
        group: str,
        known: dict[str, StreamRecord],
        listed: set[str],
    ) -> None:
        """Drop the rows of streams that a complete listing no longer shows."""
        for name in sorted(set(known) - listed):
            self.ctx.state.forget(known[name].key)
            log.info(
                "account %s, region %s, group %s: stream %s is gone; its state dropped",
                account,
                region,
                group,
                name,
            )


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
