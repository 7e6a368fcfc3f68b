"""One ``[[kinesis]]`` source: its leases kept, balanced and read, until a stop.

One thread per source coordinates: every third of the lease period it renews the leases it
holds and reads the lease table (noting whose counters moved); every lease period it lists
the shards, adds leases for new ones, and takes what ``balance.plan`` says. Each lease held
is read by a thread of its own (``reader.ShardReader``): a shard's reads block on Kinesis
and on the manager's queue independently of the others, and a thread per shard keeps that
plain (a worker holds a few shards, at most a few dozen). At a stop, the readers finish the
batch in hand (sent, then checkpointed), and the leases are released so that the other
workers take them over at once instead of after a lease period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..aws.cloudwatch import AwsAccess
from ..aws.kinesis import NotFound, clients
from ..errors import AwsError, ForwardError
from ..manager.forward import QueueForwarder
from . import balance
from .leases import Lease, LeaseLost, LeaseTable
from .reader import Framer, Held, ShardReader
from .shards import Shard, add_new, check_stream, gone, list_shards, ready
from .source import KinesisSource, default_worker_id
from .stats import PushStats

log = logging.getLogger(__name__)

# How long a stop waits for the readers to finish their batch before leaving them.
STOP_GRACE_SECONDS = 5.0
# A failure to reach the lease table or the stream is retried after this long, at most.
RETRY_CAP_SECONDS = 30.0
# A stream that does not exist is looked for again this often (quietly, after the error).
MISSING_STREAM_SECONDS = 60.0

# What a source's worker reports for ``status`` (a message), or None once it works.
ProblemSink = Callable[[KinesisSource, "str | None"], None]


@dataclass
class Running:
    """A lease held and the thread reading its shard."""

    held: Held
    reader: ShardReader
    thread: threading.Thread
    outcome: list[str] = field(default_factory=list)


class PushWorker:
    """Reads one source's shards under leases, sharing them with the other workers."""

    def __init__(
        self,
        source: KinesisSource,
        clients: Callable[[KinesisSource], tuple[Any, Any]],
        forwarder: QueueForwarder,
        *,
        clock: Callable[[], float] = time.monotonic,
        stats: PushStats | None = None,
        on_problem: ProblemSink | None = None,
    ) -> None:
        self.source = source
        self.stats = stats or PushStats()
        self.key = (source.stream_name, source.region)
        self.stats.source(self.key)
        self._on_problem = on_problem
        self._problem: str | None = None
        self.me = source.worker_id or default_worker_id()
        self._clients = clients
        self.forwarder = forwarder
        self.clock = clock
        self.stop_event = threading.Event()
        self.running: dict[str, Running] = {}
        # Shards read to their end: their leases stay held (and renewed), showing the other
        # workers that this one is alive while it waits for the children, until a stop.
        self.done: dict[str, Held] = {}
        self._seen: dict[str, tuple[int, str | None]] = {}
        self.changed_at: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.kinesis: Any = None
        self.table: LeaseTable | None = None
        # The shards of the last listing; None until the first one.
        self._listed: set[str] | None = None
        # Leases this worker asked of another to balance the load: when it asked.
        self._asked: dict[str, float] = {}

    @property
    def renew_every(self) -> float:
        return self.source.lease_period / 3

    def start(self) -> None:
        name = f"kinesis:{self.source.stream_name}"
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Ask every thread to stop, wait for them, and release the leases held."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout + self.source.lease_period)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the coordinating thread --------------------------------------------------------

    def _main(self) -> None:
        try:
            self._setup()
            if not self.stop_event.is_set():
                log.info(
                    "kinesis stream %s: worker %s started (lease table %s, lease period %gs)",
                    self.source.stream,
                    self.me,
                    self.source.lease_table,
                    self.source.lease_period,
                )
                self._loop()
        except Exception:
            log.exception("kinesis stream %s: the worker failed", self.source.stream)
        finally:
            self._shutdown()

    def _report(self, problem: str | None) -> None:
        """Record the source's problem where ``status`` reads it (None: it works now)."""
        if problem == self._problem:
            return
        self._problem = problem
        if self._on_problem is not None:
            try:
                self._on_problem(self.source, problem)
            except Exception:
                log.exception("kinesis stream %s: cannot record its state", self.source.stream)

    def _stream_found(self) -> bool:
        """Whether the stream exists (ListShards answers); a missing one is an error once,
        recorded for ``status``, and looked for again every ``MISSING_STREAM_SECONDS``
        without creating its lease table."""
        try:
            check_stream(self.kinesis, self.source.stream)
        except NotFound:
            problem = (
                f"kinesis stream {self.source.stream} does not exist in {self.source.region} "
                f"(or these credentials cannot see it); no lease table is created for it, "
                f"and it is looked for again every {MISSING_STREAM_SECONDS:g} s"
            )
            self.stats.failed(self.key, "StreamNotFound")
            if self._problem != problem:
                log.error("%s", problem)
            else:
                log.debug("%s", problem)
            self._report(problem)
            return False
        if self._problem is not None and "does not exist" in self._problem:
            log.info("kinesis stream %s found", self.source.stream)
        return True

    def _setup(self) -> None:
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                self.kinesis, dynamodb = self._clients(self.source)
                if not self._stream_found():
                    self.stop_event.wait(MISSING_STREAM_SECONDS)
                    continue
                table = LeaseTable(dynamodb, self.source.lease_table)
                if table.ensure():
                    log.info("lease table %s created", table.name)
                self.table = table
                return
            except AwsError as exc:
                self.stats.failed(self.key, exc.code or "Error")
                self._report(f"cannot use lease table {self.source.lease_table}: {exc}")
                log.error(
                    "kinesis stream %s: cannot use lease table %s: %s; retrying in %.0f s",
                    self.source.stream,
                    self.source.lease_table,
                    exc,
                    delay,
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, RETRY_CAP_SECONDS)

    def _loop(self) -> None:
        next_balance = 0.0
        pause = 0.0  # after an unexpected failure: doubling up to RETRY_CAP_SECONDS
        while not self.stop_event.is_set():
            started = self.clock()
            try:
                self._renew()
                leases = self._observe()
                if started >= next_balance:
                    next_balance = started + self.source.lease_period
                    leases = self._sync_shards(leases)
                self._balance(leases)
                pause = 0.0
                self._report(None)
            except NotFound as exc:
                self.stats.failed(self.key, exc.code or "NotFound")
                problem = f"kinesis stream {self.source.stream}: {exc}"
                if problem != self._problem:
                    log.error("%s; trying again every round", problem)
                self._report(problem)
            except AwsError as exc:
                self.stats.failed(self.key, exc.code or "Error")
                log.warning("kinesis stream %s: %s; trying again shortly", self.source.stream, exc)
            except Exception:
                # A bug or an answer of a shape never seen must not end the source's
                # collection: the readers go on, and the round is tried again.
                pause = min(max(1.0, pause * 2), RETRY_CAP_SECONDS)
                log.exception(
                    "kinesis stream %s: unexpected failure coordinating the leases; trying "
                    "again in %.0f s",
                    self.source.stream,
                    pause,
                )
            self._reap()
            self.stats.holding(self.key, set(self.running) | set(self.done))
            spent = self.clock() - started
            self.stop_event.wait(max(0.05, self.renew_every - spent, pause))

    def _renew(self) -> None:
        for key, run in list(self.running.items()):
            if run.held.lost.is_set():
                continue
            try:
                run.held.renew()
            except LeaseLost:
                log.info("lease on shard %s lost to another worker; stopped reading it", key)
            except AwsError as exc:
                log.warning("lease on shard %s not renewed: %s", key, exc)
        for key, held in list(self.done.items()):
            try:
                held.renew()
            except LeaseLost:
                del self.done[key]  # removed with its shard, or taken: nothing to read
            except AwsError as exc:
                log.debug("lease on finished shard %s not renewed: %s", key, exc)

    def _observe(self) -> list[Lease]:
        """Read the lease table; note each lease whose counter or owner moved."""
        assert self.table is not None
        leases = self.table.leases()
        now = self.clock()
        for lease in leases:
            mark = (lease.counter, lease.owner)
            if self._seen.get(lease.key) != mark:
                self._seen[lease.key] = mark
                self.changed_at[lease.key] = now
        present = {lease.key for lease in leases}
        for key in list(self._seen):
            if key not in present:
                self._seen.pop(key, None)
                self.changed_at.pop(key, None)
        return leases

    def _sync_shards(self, leases: list[Lease]) -> list[Lease]:
        assert self.table is not None
        shards: list[Shard] = list_shards(self.kinesis, self.source.stream)
        listed = {shard.id for shard in shards}
        created = add_new(self.table, shards, {lease.key for lease in leases})
        removed = [lease for lease in gone(leases, listed) if self.table.delete(lease)]
        if created:
            log.info("kinesis stream %s: leases added for shards %s", self.source.stream, created)
        if removed:
            names = [lease.key for lease in removed]
            log.info(
                "kinesis stream %s: leases of closed shards removed: %s", self.source.stream, names
            )
        self._listed = listed
        if created or removed:
            return self._observe()
        return leases

    def _balance(self, leases: list[Lease]) -> None:
        assert self.table is not None
        if self._listed is None:
            return
        by_key = {lease.key: lease for lease in leases}
        open_leases = [
            lease for lease in leases if not lease.finished and ready(lease, by_key, self._listed)
        ]
        # A lease the table gives to this worker id while no reader here holds it was
        # handed over to it, or is left from an earlier life of this worker (a fixed
        # worker_id, restarted): free for it.
        seen = [
            balance.Seen(
                lease.key,
                None if lease.owner == self.me and lease.key not in self.running else lease.owner,
                lease.counter,
            )
            for lease in open_leases
        ]
        finished = [
            balance.Seen(lease.key, lease.owner, lease.counter)
            for lease in leases
            if lease.finished
        ]
        period = self.source.lease_period
        chosen = balance.plan(
            seen, self.changed_at, self.clock(), period, self.me, held_elsewhere=finished
        )
        for pick in chosen.take:
            if self.stop_event.is_set() or pick.key in self.running:
                continue
            lease = by_key[pick.key]
            try:
                taken = self.table.take(lease, self.me)
            except LeaseLost:
                continue  # another worker took it first
            if lease.owner == self.me and self._asked.pop(lease.key, None) is not None:
                how = "handed over to this worker, who asked for it"
                self.stats.handed_over(self.key, "in")
            elif lease.owner is None or lease.owner == self.me:
                how = "taken"
            else:
                how = f"taken over from {lease.owner} (not renewed for {period:g}s)"
                self.stats.took_over(self.key)
            log.info("lease on shard %s %s; reading after %s", lease.key, how, taken.checkpoint)
            self._start_reader(taken)
        if chosen.steal is not None and not self.stop_event.is_set():
            self._ask(by_key[chosen.steal.key], open_leases)

    def _ask(self, lease: Lease, open_leases: list[Lease]) -> None:
        """Ask a live worker for a lease, to balance the load: it hands it over between two
        batches. One request at a time; a request left unanswered for two lease periods
        (an owner that does not hand over) is followed by taking the lease."""
        assert self.table is not None
        now = self.clock()
        # Requests standing: by this worker, of another, for a shard still read (one made
        # in an earlier life of this worker id counts from now).
        standing = {
            seen.key
            for seen in open_leases
            if seen.wanted_by == self.me and seen.owner not in (None, self.me)
        }
        self._asked = {key: self._asked.get(key, now) for key in standing}
        if self._asked and lease.key not in self._asked:
            return
        since = self._asked.get(lease.key)
        if since is None:
            try:
                self.table.request(lease, self.me)
            except LeaseLost:
                return  # another worker asked first, or the lease moved
            self._asked[lease.key] = now
            log.info("lease on shard %s asked of %s to balance the load", lease.key, lease.owner)
            return
        if now - since <= 2 * self.source.lease_period:
            return
        try:
            taken = self.table.take(lease, self.me)
        except LeaseLost:
            return  # renewed meanwhile: tried again next round
        self._asked.pop(lease.key, None)
        self.stats.took_over(self.key)
        log.warning(
            "lease on shard %s taken from %s, which did not hand it over within %gs; a batch "
            "it had in hand may be sent twice",
            lease.key,
            lease.owner,
            2 * self.source.lease_period,
        )
        self._start_reader(taken)

    def _start_reader(self, lease: Lease) -> None:
        assert self.table is not None
        held = Held(self.table, lease, self.me, period=self.source.lease_period, clock=self.clock)
        reader = ShardReader(
            self.kinesis,
            self.source.stream,
            held,
            self.forwarder,
            Framer(self.source.region, self.source.envelope),
            stop=self.stop_event,
            batch=self.source.batch,
            stats=self.stats,
            source_key=self.key,
        )
        run = Running(held, reader, threading.Thread())
        run.thread = threading.Thread(
            target=self._read, args=(run,), name=f"shard:{lease.key}", daemon=True
        )
        self.running[lease.key] = run
        run.thread.start()

    def _read(self, run: Running) -> None:
        try:
            run.outcome.append(run.reader.run())
        except ForwardError as exc:
            run.outcome.append("stopped")
            if not self.stop_event.is_set():
                log.warning("shard %s: %s", run.held.key, exc)
        except Exception:
            log.exception("shard %s: the reader failed", run.held.key)
            run.outcome.append("failed")

    def _reap(self) -> None:
        """Forget readers that ended: keep the leases of shards finished (see ``done``),
        give up the others (a reader failed: another worker, or this one, tries again)."""
        for key, run in list(self.running.items()):
            if run.thread.is_alive():
                continue
            del self.running[key]
            if run.outcome[:1] == ["finished"] and not run.held.lost.is_set():
                self.done[key] = run.held
            elif not run.held.lost.is_set():
                try:
                    run.held.release()
                except AwsError as exc:
                    log.info("lease on shard %s not released: %s", key, exc)

    def _shutdown(self) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for run in list(self.running.values()):
            run.thread.join(max(0.0, deadline - time.monotonic()))
        released = 0
        holding = [
            (key, run.held) for key, run in self.running.items() if not run.thread.is_alive()
        ]
        holding.extend(self.done.items())
        for key, held in holding:
            if held.lost.is_set():
                continue
            try:
                held.release()
                released += 1
            except AwsError as exc:
                log.info("lease on shard %s not released: %s", key, exc)
        if holding:
            log.info(
                "kinesis stream %s: worker %s stopped; %d leases released",
                self.source.stream,
                self.me,
                released,
            )
        self.running.clear()
        self.done.clear()
        self.stats.holding(self.key, set())


def source_clients(source: KinesisSource) -> tuple[Any, Any]:
    """The Kinesis and DynamoDB clients of a ``[[kinesis]]`` source, on a session built as
    the polling path builds its own (``cloudwatch.AwsAccess``: static keys, profile or the
    default chain, and the role assumed on top, renewed before it expires)."""
    access = AwsAccess(source.credentials())
    session = access.session()
    return clients(session, source.region, source.kinesis_endpoint, source.dynamodb_endpoint)
