"""The run loop: each wodle on its own schedule, reload and a clean stop (requested by the
signals that ``lifecycle`` installs)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TextIO

from .. import schedule
from ..aws.cloudwatch import AwsAccess
from ..config import CloudWatchService, Config, Wodle
from ..errors import ConfigError, ForwardError
from ..poll.collector import ServicePass
from ..poll.pipeline import Context, Stopped, Tally
from ..push.source import KinesisSource
from .notify import Notifier

log = logging.getLogger(__name__)

# A cycle running longer than this reports its progress, this often.
PROGRESS_SECONDS = 10.0
# How often a terminal progress bar is redrawn.
BAR_SECONDS = 0.5

# After a stop request, the page in hand gets this long to be forwarded and committed. A call
# stuck in AWS retries is then abandoned: positions on disk never pass what was forwarded,
# so the next start resumes there.
STOP_GRACE_SECONDS = 5.0


def cycle_status(tally: Tally, when: datetime) -> str:
    """The one-line STATUS= of systemd after a cycle."""
    return (
        f"last cycle {when.strftime('%H:%M:%S')}: {tally.events} events, {tally.bytes} bytes, "
        f"{tally.groups} groups read, {len(tally.failures)} failures"
    )


def report_broken(wodle: Wodle, tally: Tally) -> None:
    """Log each service of ``wodle`` that cannot be collected as written, at error priority,
    and count it as a failure of the cycle (reason ``ConfigError``), so that ``run --once``
    exits 1 and ``status`` shows it; the wodle's other services are still collected."""
    for broken in wodle.broken:
        for problem in broken.problems:
            log.error("%s; this service is not collected until the file is fixed", problem)
        tally.fail(
            "ConfigError",
            f"cloudwatchlogs service at line {broken.line} not collected: "
            + "; ".join(str(problem) for problem in broken.problems),
        )


def local_now() -> datetime:
    """Now, as an aware datetime in the machine's time zone (schedules use wall-clock time)."""
    return datetime.now().astimezone()


@dataclass
class WodleRun:
    """A wodle, the access objects of its services, and when it runs next."""

    wodle: Wodle
    accesses: list[tuple[CloudWatchService, AwsAccess]]
    due: datetime
    last_start: datetime | None = None


class PushRunner(Protocol):
    """A running ``[[kinesis]]`` source (``push.worker.PushWorker``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Daemon:
    """Runs the enabled aws-s3 wodles of a configuration, once or on their schedules, and
    beside them (as a daemon) a push worker per ``[[kinesis]]`` source."""

    # Reads the configuration (ossec.conf, and the settings file with it): at start unless
    # ``config`` is given, and on SIGHUP; a ConfigError keeps what is in use.
    load: Callable[[], Config]
    ctx: Context
    now: Callable[[], datetime] = local_now
    make_access: Callable[[CloudWatchService], AwsAccess] = AwsAccess
    on_cycle: Callable[[Tally], None] = lambda _tally: None
    config: Config | None = None
    notifier: Notifier = field(default_factory=Notifier)
    bar: TextIO | None = None  # a terminal to draw a progress bar on (run --once)
    abandoned: bool = False
    # Services a stop request left unstarted (run --once reports them).
    services_left: int = 0
    last_status: str = "starting"
    # The settings file's [[kinesis]] sources (read again after each reload), and how a
    # worker is made for one; the daemon runs one per source, from start to stop.
    kinesis: Callable[[], tuple[KinesisSource, ...]] = lambda: ()
    make_push: Callable[[KinesisSource], PushRunner] | None = None
    _pushing: tuple[KinesisSource, ...] = ()
    _push: list[PushRunner] = field(default_factory=list)
    _wake: threading.Event = field(default_factory=threading.Event)
    _reload: bool = False

    def start(self) -> Config:
        """Load the configuration; raises ConfigError when it is invalid."""
        self.config = self.load()
        return self.config

    def _runs(self, config: Config, now: datetime) -> list[WodleRun]:
        runs = []
        shared: dict[tuple[str | None, ...], AwsAccess] = {}
        for wodle in config.wodles:
            if wodle.disabled or not (wodle.services or wodle.broken):
                continue
            accesses = [(s, self._access(s, shared)) for s in wodle.services]
            runs.append(WodleRun(wodle, accesses, schedule.first_run(wodle.schedule, now)))
        return runs

    def _access(
        self, service: CloudWatchService, shared: dict[tuple[str | None, ...], AwsAccess]
    ) -> AwsAccess:
        """One AwsAccess (so one client and connection pool per region) per distinct set of
        credentials and endpoints, shared by the wodles and services that use it."""
        key = (
            service.aws_profile,
            service.access_key,
            service.secret_key,
            service.iam_role_arn,
            str(service.iam_role_duration),
            service.sts_endpoint,
            service.service_endpoint,
            ",".join(service.regions),
        )
        if key not in shared:
            shared[key] = self.make_access(service)
        return shared[key]

    def run_wodle(self, run: WodleRun) -> Tally:
        """Collect every service of one wodle, one after another, in a worker thread that a
        stop request gives ``STOP_GRACE_SECONDS`` to finish."""
        total = Tally()
        report_broken(run.wodle, total)

        def work() -> None:
            for done, (service, access) in enumerate(run.accesses):
                if self.ctx.stop.is_set():
                    self.services_left += len(run.accesses) - done
                    break
                try:
                    total.add(ServicePass(service, access, self.ctx).run())
                except Stopped:
                    break
                except ForwardError as exc:
                    # A stop request ends a wait for the manager's queue; so does a queue
                    # that refuses us or stays away past --queue-wait, which the command
                    # line reports itself.
                    if self.ctx.forwarder.failure is None:
                        log.warning("%s; unsent events are sent after the next start", exc)
                    break
                except Exception as exc:
                    log.exception("service at line %d: unexpected failure", service.line)
                    total.fail(type(exc).__name__, f"service at line {service.line}: {exc}")

        self._supervise(work)
        self.last_status = cycle_status(total, self.now())
        self.notifier.status(self.last_status)
        self.on_cycle(total)
        return total

    def _supervise(self, work: Callable[[], None]) -> None:
        failure: list[BaseException] = []

        def target() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                failure.append(exc)

        self.ctx.progress.begin()
        worker = threading.Thread(target=target, name="cycle", daemon=True)
        started = time.monotonic()
        next_report = started + PROGRESS_SECONDS
        next_bar = started + BAR_SECONDS
        worker.start()
        stop_seen: float | None = None
        while worker.is_alive():
            worker.join(0.1)
            self.notifier.ping()
            now = time.monotonic()
            if now >= next_report:
                next_report = now + PROGRESS_SECONDS
                line = self.ctx.progress.line()
                log.info("%s", line)
                self.notifier.status(line)
            if self.bar is not None and now >= next_bar:
                next_bar = now + BAR_SECONDS
                self.bar.write("\r" + self.ctx.progress.bar())
                self.bar.flush()
            if self.ctx.stop.is_set() and worker.is_alive():
                stop_seen = stop_seen if stop_seen is not None else time.monotonic()
                if time.monotonic() - stop_seen > STOP_GRACE_SECONDS:
                    self.abandoned = True
                    log.warning(
                        "stopping without waiting for AWS calls still in flight; "
                        "every stream resumes at its last committed page"
                    )
                    return
        if self.bar is not None:
            self.bar.write("\r" + self.ctx.progress.bar() + "\n")
            self.bar.flush()
        if failure:
            raise failure[0]

    def run_once(self) -> Tally:
        """Run every enabled wodle once, now, whatever its schedule."""
        config = self.config or self.start()
        total = Tally()
        runs = self._runs(config, self.now())
        for run in runs:
            if self.ctx.stop.is_set():
                self.services_left += len(run.accesses)
                continue
            total.add(self.run_wodle(run))
        return total

    # long-running ----------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the page in hand (SIGTERM, SIGINT); the wait between cycles ends."""
        self.ctx.stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Re-read the configuration (``load``) between cycles (SIGHUP)."""
        self._reload = True
        self._wake.set()

    def _do_reload(self, runs: list[WodleRun]) -> list[WodleRun]:
        self._reload = False
        self.notifier.reloading()
        try:
            config = self.load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused: %s", problem)
            log.error("reload refused: the configuration in use is kept")
            self.notifier.reloaded(f"reload refused, old configuration kept; {self.last_status}")
            return runs
        for warning in config.warnings:
            log.warning("%s", warning)
        self.config = config
        log.info("configuration reloaded: %d aws-s3 wodles", len(config.wodles))
        new_runs = self._runs(config, self.now())
        self.notifier.reloaded(f"configuration reloaded; {self.last_status}")
        return new_runs

    def _start_push(self) -> None:
        """Start a worker per [[kinesis]] source; after a reload, only if they changed."""
        sources = self.kinesis()
        if self.make_push is None or (sources == self._pushing and self._push):
            return
        self._stop_push()
        self._pushing = sources
        for source in sources:
            worker = self.make_push(source)
            worker.start()
            self._push.append(worker)

    def _stop_push(self) -> None:
        for worker in self._push:
            worker.stop()
        self._push = []

    def run_forever(self) -> None:
        """Run each wodle on its schedule until a stop is requested."""
        config = self.config or self.start()
        runs = self._runs(config, self.now())
        self._start_push()
        if not runs and not self._push:
            log.warning("no enabled aws-s3 wodle with a cloudwatchlogs service; idle")
        first = min((r.due for r in runs), default=None)
        when = first.isoformat(timespec="seconds") if first else "never"
        self.notifier.ready(f"{len(runs)} wodles scheduled; first run at {when}")
        while not self.ctx.stop.is_set():
            if self._reload:
                runs = self._do_reload(runs)
                self._start_push()
            now = self.now()
            for run in runs:
                if run.due <= now and not self.ctx.stop.is_set():
                    run.last_start = now
                    self.run_wodle(run)
                    if self.abandoned:
                        self._stop_push()
                        return
                    run.due = schedule.next_run(run.wodle.schedule, now, self.now())
                    log.debug("wodle at line %d next runs at %s", run.wodle.line, run.due)
            if self.ctx.stop.is_set():
                break
            wait = min(((r.due - self.now()).total_seconds() for r in runs), default=3600.0)
            if self.notifier.watchdog_interval is not None:
                wait = min(wait, self.notifier.watchdog_interval)
            self._wake.wait(timeout=max(0.0, min(wait, 3600.0)))
            self._wake.clear()
            self.notifier.ping()
        self.notifier.stopping()
        self._stop_push()
        log.info("stopped")
