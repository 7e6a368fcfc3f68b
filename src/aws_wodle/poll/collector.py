"""One pass over one configured service: its account, regions and groups, a group at a time.

The pass fans out over regions and groups; each group is a ``GroupPass``. It asks STS for
the account once per set of credentials (an access key id, or an assumed role), and with no
``<regions>`` it looks for a group again in a region that lacked it at most hourly and in
at most one such region a cycle, so that an idle cycle costs two calls at most.
A prefix entry is listed in each region at most every ``discover_every`` (``discovery``);
a group named by ARN is read in the ARN's region, its state kept under the ARN's account.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from ..errors import AccessDenied, AwsError, GroupNotFound, RegionUnavailable
from ..model import GroupKey, Listing, LogsApi
from . import discovery
from .grouppass import GroupPass, Outside, Settings
from .groups import GroupArn, GroupName, GroupPrefix, parse_entry
from .pipeline import Context, Stopped, Tally, today_start

if TYPE_CHECKING:
    from ..aws.budget import RegionBudget
    from ..model import CloudWatchService

log = logging.getLogger(__name__)

# Regions and groups read at once per service: enough for many regions to finish in the
# time of one; the request budget of each account and region keeps them within its quotas.
MAX_WORKERS = 16
# With no <regions>, a region that lacked the group is asked again after this long...
ABSENT_RECHECK_SECONDS = 3600.0
# ...the first time after this much more at most, chosen per region. A cycle asks one of
# the regions due at most (``recheck``): with 33 regions lacking the group and a 5-minute
# interval, each is asked about every 3 hours.
ABSENT_SPREAD_SECONDS = 3600.0


# Why a group is read: named in aws_log_groups, found by a prefix, or named by ARN.
NAME, PREFIX, ARN = "name", "prefix", "arn"


@dataclass(frozen=True)
class Job:
    """One group to collect: where its state lives, how calls name it (a name, or an ARN),
    why it is read, the entry that selected it, and (new under a prefix) its creation."""

    key: GroupKey
    target: str
    kind: str
    entry: str = ""
    created: int | None = None


class Access(Protocol):
    """The credentials of a service: who they are, and a reader per region."""

    @property
    def label(self) -> str: ...

    @property
    def identity_lifetime(self) -> float: ...

    def caller_identity(self) -> tuple[str, str]: ...

    def credential_id(self) -> str | None: ...

    def aws_now(self) -> float: ...

    def partition_regions(self, partition: str) -> list[str]: ...

    def logs(self, region: str, budget: RegionBudget | None = None) -> LogsApi: ...


def held_note(held: int) -> str:
    """What a cycle line says of the events held for the settle margin (none: nothing)."""
    if not held:
        return ""
    return (
        f"; {held} events held for the settle margin (the next read sends them, or the next "
        "sweep those that arrived late)"
    )


def spread(key: GroupKey) -> float:
    """A fixed share of ``ABSENT_SPREAD_SECONDS`` for a group in a region."""
    seed = f"{key.account}/{key.region}/{key.group}".encode()
    return (zlib.crc32(seed) % 1000) / 1000 * ABSENT_SPREAD_SECONDS


def recheck(waits: Mapping[str, float | None], now: float) -> str | None:
    """Of the regions that lacked an entry (``waits``: region -> when it may be asked again;
    None for a region not known to lack it), the one to ask again in this cycle: the longest
    due, or none. One a cycle keeps an idle cycle at two calls however many regions lack the
    group; each is still asked no more often than ``ABSENT_RECHECK_SECONDS``."""
    due = [(until, region) for region, until in waits.items() if until is not None and until <= now]
    return min(due)[1] if due else None


class ServicePass:
    """One collection of one service over its regions and groups."""

    def __init__(self, service: CloudWatchService, access: Access, ctx: Context) -> None:
        self.service = service
        self.access = access
        self.ctx = ctx
        # Line 0: a service built from arguments (``legacy``), not read from ossec.conf.
        where = f"at line {service.line}" if service.line > 0 else "of the command line"
        self.name = f"service {where} ({', '.join(service.log_groups)})"
        state = ctx.state
        self.outside = Outside(
            store=state.cursors,
            sink=ctx.forwarder,
            stop=ctx.stop,
            progress=ctx.progress,
            page_lock=ctx.page_lock,
            filter_denied=state.filter_denied,
            deny_filter=state.deny_filter,
            count_streams=ctx.count_streams,
        )
        self.settings = Settings(
            lookback_ms=int(ctx.lookback * 1000),
            settle_ms=int(ctx.settle * 1000),
            remove_idle_ms=int(ctx.remove_idle * 1000),
            remove=service.remove_log_streams,
            late_every_ms=int(ctx.late_every * 1000),
        )

    def identity(self) -> tuple[str, str]:
        """The account id labelling state, and the partition: configured, else as last
        asked with the same access key (an access key id belongs to one account for good),
        else STS; STS failing, the last ones known."""
        label = self.access.label
        known = self.ctx.state.remembered_identity(label)
        configured = self.service.aws_account_id
        if configured and self.service.regions:
            return configured, known.partition if known else "aws"
        now = self.ctx.clock()
        key_id = self.access.credential_id()
        if known is not None and (
            (key_id is not None and key_id == known.key_id)
            # Credentials that do not say who they are: asked again after a while.
            or (key_id is None and 0 <= now - known.asked < self.access.identity_lifetime)
        ):
            return configured or known.account, known.partition
        try:
            account, partition = self.access.caller_identity()
        except AwsError:
            if known is None:
                raise
            log.warning("%s: STS is not answering; using account %s", self.name, known.account)
            return configured or known.account, known.partition
        self.ctx.state.remember_account(label, account, partition, now, key_id or "")
        return configured or account, partition

    def start_for(self, account: str, region: str, group: str, created: int | None = None) -> int:
        """Where a group's first collection starts: only_logs_after, else 00:00 UTC of the
        day it was first seen, or its creation time when a prefix found it new."""
        if self.service.only_logs_after is not None:
            return int(self.service.only_logs_after.timestamp() * 1000)
        # AWS's day, not the host's: a host clock an hour off near midnight must not
        # start a new group a day late.
        proposed = today_start(self.access.aws_now())
        if created is not None:
            proposed = min(proposed, created)
        return self.ctx.state.group_default_start(account, region, group, proposed)

    def run(self) -> Tally:
        """Collect every group in every region; failures are counted, never raised."""
        tally = Tally()
        started = time.monotonic()
        entries = [parse_entry(text) for text in self.service.log_groups]
        names = [e for e in entries if isinstance(e, GroupName)]
        prefixes = [e for e in entries if isinstance(e, GroupPrefix)]
        arns = [e for e in entries if isinstance(e, GroupArn)]
        try:
            account, partition = self.identity()
            regions = list(self.service.regions)
            search_all = not regions
            if search_all and (names or prefixes):
                regions = self.access.partition_regions(partition)
        except AwsError as exc:
            tally.fail(type(exc).__name__, f"{self.name}: {exc}")
            log.error("%s: cannot start: %s", self.name, exc)
            return tally

        def where(entry: str) -> list[str]:
            return self._regions_due(account, regions, entry) if search_all else regions

        jobs = [
            Job(GroupKey(account, region, entry.name), entry.name, NAME)
            for entry in names
            for region in where(entry.name)
        ]
        found = {entry.name: False for entry in names}
        with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="collect") as pool:
            if prefixes:
                wanted = [(region, prefix) for prefix in prefixes for region in where(prefix.text)]
                for part, listed in pool.map(
                    lambda pair: self._discover(account, pair[0], pair[1], search_all), wanted
                ):
                    tally.add(part)
                    jobs.extend(listed)
            jobs.extend(
                Job(GroupKey(arn.account, arn.region, arn.name), arn.arn, ARN) for arn in arns
            )
            # A group named and also found by a prefix (or by ARN) is read once.
            unique: dict[GroupKey, Job] = {}
            for job in jobs:
                unique.setdefault(job.key, job)
            jobs = list(unique.values())
            results = pool.map(lambda job: self._group(job, account, search_all), jobs)
            for job, (part, present) in zip(jobs, results, strict=True):
                tally.add(part)
                if job.kind == NAME:
                    found[job.key.group] = found[job.key.group] or present
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
            "%s, account %s: %d events, %d bytes, %d groups read%s, %d discarded, %d deleted, "
            "%d failures, %.2f s%s",
            self.name,
            account,
            tally.events,
            tally.bytes,
            tally.groups,
            f" ({tally.left} left by a stop request)" if tally.left else "",
            tally.discarded,
            tally.deleted,
            len(tally.failures),
            time.monotonic() - started,
            held_note(tally.held),
        )
        return tally

    def _regions_due(self, account: str, regions: list[str], entry: str) -> list[str]:
        """The regions to look for an entry (a group or a prefix) in, with no <regions>:
        every region not known to lack it, and at most one that lacked it and is due."""
        now = self.ctx.clock()
        waits = {
            region: self.ctx.state.absent_until(GroupKey(account, region, entry))
            for region in regions
        }
        picked = recheck(waits, now)
        return [r for r in regions if waits[r] is None or r == picked]

    def _discover(
        self, account: str, region: str, prefix: GroupPrefix, search_all: bool
    ) -> tuple[Tally, list[Job]]:
        """The groups a prefix selects in a region: listed again when the last listing is
        older than ``discover_every``, else as last listed."""
        tally = Tally()
        state = self.ctx.state
        where = f"account {account}, region {region}, prefix {prefix.text}"
        spot = GroupKey(account, region, prefix.text)
        if self.ctx.stop.is_set():
            return tally, []
        stored = state.listing(account, region, prefix.text)
        listing = stored
        now = self.ctx.clock()
        if discovery.due(stored, now, self.ctx.discover_every):
            try:
                logs = self.access.logs(region, self.ctx.budgets.get(account, region))
                groups = list(logs.log_groups(prefix.prefix))
            except RegionUnavailable as exc:
                if search_all:
                    self._absent(spot, where, exc)
                    return tally, []
                self._listing_failed(tally, where, exc, stored)
            except AwsError as exc:
                self._listing_failed(tally, where, exc, stored)
            else:
                listing = discovery.relist(stored, groups, now)
                state.save_listing(account, region, prefix.text, listing)
                if search_all and state.absent_until(spot) is not None:
                    state.clear_absent(spot)
                self._report_listing(where, stored, listing)
        if listing is None:
            return tally, []
        jobs = [
            Job(GroupKey(account, region, name), name, PREFIX, prefix.text, listing.created(name))
            for name in listing.names()
        ]
        return tally, jobs

    def _listing_failed(
        self, tally: Tally, where: str, exc: AwsError, stored: Listing | None
    ) -> None:
        if isinstance(exc, AccessDenied):
            exc = AccessDenied(
                f"{exc} (add logs:DescribeLogGroups to the policy to read prefixes)",
                exc.code,
                exc.operation,
            )
        kept = "the groups it listed before are read" if stored else "nothing is read for it"
        tally.fail(type(exc).__name__, f"{where}: {exc}")
        log.error(
            "%s: cannot list the log groups: %s; %s, and it is listed again next cycle",
            where,
            exc,
            kept,
        )

    def _report_listing(self, where: str, before: Listing | None, after: Listing) -> None:
        if before is None:
            log.info("%s: %d log groups", where, len(after.groups))
            return
        for name in discovery.gone(before, after):
            log.info("%s: log group %s is gone; no longer read (its position is kept)", where, name)
        for name in sorted(after.new - before.new):
            log.info("%s: new log group %s; collected from its creation", where, name)

    def _vanished(self, job: Job) -> None:
        """A group found by a prefix no longer exists: it is left out of the stored listing
        (until a listing finds it again), said once, and not counted as a failure."""
        key = job.key
        state = self.ctx.state
        listing = state.listing(key.account, key.region, job.entry)
        if listing is not None:
            state.save_listing(key.account, key.region, job.entry, listing.without(key.group))
        log.info(
            "account %s, region %s, log group %s (prefix %s): the group is gone; no longer "
            "read (its position is kept)",
            key.account,
            key.region,
            key.group,
            job.entry,
        )

    def _group(self, job: Job, account: str, search_all: bool) -> tuple[Tally, bool]:
        tally = Tally()
        key = job.key
        where = f"account {key.account}, region {key.region}, log group {key.group}"
        if self.ctx.stop.is_set():
            tally.left += 1
            return tally, True
        try:
            # The request budget is the caller's: a cross-account read spends the quota of
            # the account that makes the calls.
            logs = self.access.logs(key.region, self.ctx.budgets.get(account, key.region))
            start = self.start_for(key.account, key.region, key.group, job.created)
            options = self.ctx.group_rules.for_group(key.account, key.region, key.group)
            # DeleteLogStream takes no ARN: another account's streams are never removed.
            settings = self.settings if job.kind != ARN else replace(self.settings, remove=False)
            GroupPass(
                key,
                logs,
                self.outside,
                settings,
                discard=self.service.discard,
                tally=tally,
                target=job.target,
                options=options,
            ).run(start)
        except Stopped:
            tally.left += 1
            return tally, True
        except (GroupNotFound, RegionUnavailable) as exc:
            if job.kind == PREFIX and isinstance(exc, GroupNotFound):
                self._vanished(job)
                return tally, True
            if search_all and job.kind == NAME:
                self._absent(key, where, exc)
                return tally, False
            tally.fail(type(exc).__name__, f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        except AccessDenied as exc:
            if exc.operation == "DeleteLogStream":
                exc = AccessDenied(
                    f"events collected, streams not removed: {exc} (add logs:DeleteLogStream "
                    "to the policy, or set remove_log_streams to no)",
                    exc.code,
                    exc.operation,
                )
            tally.fail(type(exc).__name__, f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        except AwsError as exc:
            tally.fail(type(exc).__name__, f"{where}: {exc}")
            log.error("%s: %s; retried next cycle", where, exc)
        else:
            if search_all and job.kind == NAME and self.ctx.state.absent_until(key) is not None:
                self.ctx.state.clear_absent(key)
            for (_, _, stream), count in sorted(tally.per_stream.items()):
                log.debug("%s: stream %s: %d events", where, stream, count)
            log.debug(
                "%s: %d events read, %d forwarded",
                where,
                tally.events + tally.discarded,
                tally.events,
            )
        return tally, True

    def _absent(self, key: GroupKey, where: str, exc: AwsError) -> None:
        """Remember that a region lacks the group: said once, then looked for hourly."""
        now = self.ctx.clock()
        first = self.ctx.state.absent_until(key) is None
        later = ABSENT_RECHECK_SECONDS + (spread(key) if first else 0.0)
        self.ctx.state.mark_absent(key, now + later)
        if first:
            log.info(
                "%s: skipped (%s); looked for again within %d minutes",
                where,
                exc,
                round(later / 60),
            )
        else:
            log.debug("%s: still absent (%s)", where, exc)
