"""``aws-wodle legacy``: the old aws-s3 wodle's command line, for CloudWatch Logs, run once.

The manager's wodle runs ``wodles/aws/aws-s3 --service cloudwatchlogs ...`` on each interval,
reads its stdout, and logs the text after the first ``ERROR: `` when the exit code is not 0
(it also forwards every stdout line to the manager as an event of location ``aws-s3``). This
command takes that same command line, so that it can be installed in place of that script:
it builds the service from its arguments with the rules and messages of ``ossec.conf``,
collects once with our collector and our state, and answers in the old module's terms.

Output, on stdout, one line per record: ``DEBUG: `` (``--debug 1`` shows what is done per
region and log group and a summary; ``--debug 2`` and more add one line per stream),
``WARNING: `` and ``ERROR: `` (always; the old module showed its warnings only as DEBUG lines).
The old module's own lines come where it printed them, word for word:

- ``--debug 1`` and more: ``DEBUG: +++ Debug mode on - Level: N`` first; per stream that
  sent events, ``DEBUG: +++ Sent N events to Analysisd``; per log group that had nothing
  new, ``DEBUG: +++ There are no new events in the "GROUP" group``; for a region that
  CloudWatch Logs does not have, ``DEBUG: +++ ERROR: Invalid region 'X'`` (without
  ``--debug``, ``ERROR: Invalid region 'X'``), exit 22;
- ``--debug 2`` and more: per event discarded, ``DEBUG: +++ The "REGEX" regex found a match
  in the "FIELD" field. The event will be skipped.`` (a JSON message, with a field), or
  ``DEBUG: +++ The "REGEX" regex found a match. The event will be skipped.`` (matched as a
  whole).

No secret is ever printed, at any level, and no event message either (the old module printed
each at level 3, echoed its arguments, secret key included, at level 2, and those lines came
back to the manager as events).

Exit codes, from the old module's table (``aws_s3.py``), for the cases that apply here:

====  ===================================================================================
0     success
1     unknown error (the message starts with ``Unknown error``, which the wodle looks for)
2     bad arguments, or interrupted by SIGINT/SIGTERM (the old module's code for SIGINT)
3     the credentials cannot be used (no credentials, keys refused by STS)
5     our state file cannot be used (the old module's "error accessing SQLite DB")
11    the manager's queue socket is away (the old "Wazuh must be running"), after waiting
      ``QUEUE_WAIT_SECONDS`` for it
12    not a CloudWatch Logs run: ``--service`` other than cloudwatchlogs, ``--bucket`` or
      ``--subscriber`` (the old code for an invalid bucket or service type)
13    the manager's queue refused events otherwise (full), or ``--queue`` names something
      that is no datagram socket (a directory, a file, a stream socket)
16    a CloudWatch Logs call failed for a log group (missing group, access denied,
      throttling past every retry); every other group was still collected
22    a region that CloudWatch Logs does not have
23    the AWS profile does not exist
====  ===================================================================================

Accepted and ignored, because they concern buckets and subscribers: ``-O/--aws_organization_id``,
``-x/--external_id``, ``-R/--remove``, ``-l/--trail_prefix``, ``-L/--trail_suffix``, ``-t/--type``.
The old ``-q/--queue`` (an SQS queue name, for subscribers only) is not accepted: ``--queue``
here is ours. Differences that are deliberate: ``-e/--skip_on_error`` is accepted and changes
nothing (``SKIP_ON_ERROR`` in ``config``: every run keeps going past a failing group, and the
exit code still reports it);
``-P/--remove-log-streams`` keeps a stream written to within the last 10 minutes; ``-o/--reparse``
forgets the positions of the named groups, so every stream is read again from
``--only_logs_after`` (or from the first day this collector read the group);
``-rd/--iam_role_duration`` takes 900 to 3600 like ``ossec.conf``.

Our extensions: ``--queue PATH`` (or ``AWS_WODLE_QUEUE``) for the manager's queue socket,
``--state PATH`` (or ``AWS_WODLE_STATE``) for the state file (by default the same files as
``aws-wodle run`` uses under the manager's home), and ``--settle SECONDS`` and
``--late-every SECONDS`` as for ``run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from .. import __version__
from ..aws.cloudwatch import AwsAccess, known_regions
from ..config import (
    DEFAULT_INTERVAL_SECONDS,
    SKIP_ON_ERROR,
    CloudWatchService,
    Config,
    DiscardRule,
    Findings,
    Option,
    Wodle,
    build_service,
)
from ..errors import AccessDenied, AwsError, CredentialsError, ForwardError, StateError
from ..manager.forward import WRONG_KIND, QueueForwarder, queue_problem
from ..paths import DEFAULT_HOME, queue_path, state_path
from ..poll.pipeline import DEFAULT_LATE_EVERY_SECONDS, DEFAULT_SETTLE_SECONDS, Context, Tally
from ..schedule import Interval
from ..store.state import StateStore
from . import logsetup, memtune
from .daemon import Daemon
from .lifecycle import Lifecycle

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNKNOWN = 1
EXIT_ARGUMENTS = 2
EXIT_CREDENTIALS = 3
EXIT_STATE = 5
EXIT_QUEUE_AWAY = 11
EXIT_NOT_CLOUDWATCH = 12
EXIT_QUEUE_REFUSED = 13
EXIT_CLOUDWATCH = 16
EXIT_REGION = 22
EXIT_PROFILE = 23

QUEUE_ENV = "AWS_WODLE_QUEUE"
STATE_ENV = "AWS_WODLE_STATE"

# The old module gave up at the first refused send; a manager restart takes a few seconds,
# so a one-shot run waits this long for the queue before giving up with code 11. Whatever was
# sent is committed, and the next run resumes there.
QUEUE_WAIT_SECONDS = 10.0

# Queue errors meaning "nobody is reading the socket" (code 11); the others mean it is full.
_QUEUE_AWAY = {"ENOENT", "ECONNREFUSED", "ENOTCONN", "EDESTADDRREQ", "EPIPE", "ECONNRESET"}
# STS answers meaning "these keys are not valid", whatever module translated them.
_BAD_KEYS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SECRET_OPTIONS = ("-k", "--secret_key")
_PREFIX = {
    logging.DEBUG: "DEBUG: ",
    logging.INFO: "DEBUG: ",
    logging.WARNING: "WARNING: ",
    logging.ERROR: "ERROR: ",
    logging.CRITICAL: "ERROR: ",
}


class Refused(Exception):
    """The run cannot go on: ``messages`` are printed as ERROR lines, ``code`` is returned."""

    def __init__(self, code: int, *messages: str) -> None:
        self.code = code
        self.messages = messages
        super().__init__("; ".join(messages))


class _ArgumentError(Exception):
    """argparse found the command line invalid."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports errors to its caller instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


class OldStyleFormatter(logging.Formatter):
    """Formats records as the old module printed: ``DEBUG: msg``, ``WARNING: msg``, ...

    INFO records are shown as DEBUG lines: the old module printed nothing but DEBUG lines
    unless something went wrong. A message is one line, masked, its control characters
    escaped (``#012``: a name read from AWS cannot start a line); each line of a traceback
    carries the prefix too.
    """

    def format(self, record: logging.LogRecord) -> str:
        prefix = _PREFIX.get(record.levelno, "ERROR: ")
        lines = (logsetup.message(record), *logsetup.traceback_lines(record))
        return "\n".join(prefix + line for line in lines)


def setup_output(debug: int) -> None:
    """Send log lines to stdout in the old module's format, secrets masked.

    ``debug`` 0 shows warnings and errors, 1 adds what is done per region and group, 2 and
    more add the details per stream.
    """
    level = "warning" if debug <= 0 else "info" if debug == 1 else "debug"
    logsetup.setup(level)  # also keeps botocore and friends at WARNING
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(OldStyleFormatter())
    logging.getLogger().handlers[:] = [handler]


def _debug_level(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"invalid debug level '{text}': expected 0, 1, 2 or 3")
    return int(text)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"\s*([0-9]+)\s*(s?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration '{text}': a number of seconds")
    return float(match.group(1))


def parser() -> argparse.ArgumentParser:
    """The old module's options that make sense for CloudWatch Logs, and two of ours."""
    p = _Parser(
        prog="aws-s3",
        description="Collect CloudWatch Logs once, with the aws-s3 wodle's command line.",
        allow_abbrev=False,
    )
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("-sr", "--service", help="the service: only cloudwatchlogs is handled")
    kind.add_argument("-b", "--bucket", help="refused: buckets are not handled here")
    kind.add_argument("-sb", "--subscriber", help="refused: subscribers are not handled here")
    p.add_argument("-g", "--aws_log_groups", default="", help="comma-separated log groups")
    p.add_argument("-r", "--regions", default="", help="comma-separated regions")
    p.add_argument("-s", "--only_logs_after", help="YYYY-MMM-DD, e.g. 2024-JAN-31")
    p.add_argument(
        "-P", "--remove-log-streams", action="store_true", dest="remove_log_streams",
        help="delete each stream once every event of it was forwarded",
    )  # fmt: skip
    p.add_argument("-p", "--aws_profile", help="named profile of the shared AWS files")
    p.add_argument("-a", "--access_key", help="static key id (deprecated)")
    p.add_argument("-k", "--secret_key", help="static secret key (deprecated; never printed)")
    p.add_argument("-i", "--iam_role_arn", help="role to assume through STS")
    p.add_argument("-rd", "--iam_role_duration", help="role session seconds, 900 to 3600")
    p.add_argument("-se", "--service_endpoint", help="CloudWatch Logs endpoint URL")
    p.add_argument("-st", "--sts_endpoint", help="STS endpoint URL")
    p.add_argument("-dr", "--discard-regex", dest="discard_regex", help="drop matching events")
    p.add_argument("-df", "--discard-field", dest="discard_field", help="JSON field to match")
    p.add_argument("-c", "--aws_account_id", help="account id labelling the state")
    p.add_argument("-n", "--aws_account_alias", help="account alias")
    p.add_argument("-d", "--debug", type=_debug_level, default=0, help="0 to 3")
    p.add_argument("-e", "--skip_on_error", action="store_true", help=SKIP_ON_ERROR)
    p.add_argument("-o", "--reparse", action="store_true", help="read everything again")
    ignored = p.add_argument_group("accepted and ignored (buckets and subscribers only)")
    for short, long in (("-O", "--aws_organization_id"), ("-x", "--external_id")):
        ignored.add_argument(short, long, help=argparse.SUPPRESS)
    for short, long in (("-l", "--trail_prefix"), ("-L", "--trail_suffix"), ("-t", "--type")):
        ignored.add_argument(short, long, help=argparse.SUPPRESS)
    ignored.add_argument("-R", "--remove", action="store_true", help=argparse.SUPPRESS)
    ours = p.add_argument_group("aws-wodle extensions")
    ours.add_argument("--queue", help=f"manager queue socket (or ${QUEUE_ENV})")
    ours.add_argument("--state", help=f"state file (or ${STATE_ENV})")
    ours.add_argument(
        "--settle",
        type=_seconds,
        default=DEFAULT_SETTLE_SECONDS,
        metavar="SECONDS",
        help="events accepted by AWS less than this long ago wait for the next run "
        f"(as run --settle; default {DEFAULT_SETTLE_SECONDS:g})",
    )
    ours.add_argument(
        "--late-every",
        type=_seconds,
        default=DEFAULT_LATE_EVERY_SECONDS,
        metavar="SECONDS",
        help="how often a run reads the whole lookback for events that arrived late (as run "
        f"--late-every; default {DEFAULT_LATE_EVERY_SECONDS:g}; 0: every run)",
    )
    return p


def secrets_in(argv: Sequence[str]) -> list[str]:
    """The values given to ``--secret_key``, found before parsing so that no error shows them."""
    found = []
    for i, arg in enumerate(argv):
        if arg in _SECRET_OPTIONS and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--secret_key="):
            found.append(arg.partition("=")[2])
        elif arg.startswith("-k") and len(arg) > 2:
            found.append(arg[2:])
    return found


def paths(args: argparse.Namespace, ossec_home: str) -> tuple[str, str]:
    """The queue socket and state file: option, else environment, else under ``ossec_home``."""
    queue = args.queue or os.environ.get(QUEUE_ENV) or queue_path(ossec_home)
    state = args.state or os.environ.get(STATE_ENV) or state_path(ossec_home)
    return queue, state


def _check_kind(args: argparse.Namespace) -> None:
    if args.bucket is not None:
        raise Refused(
            EXIT_NOT_CLOUDWATCH, "Invalid type of bucket: only CloudWatch Logs is handled"
        )
    if args.subscriber is not None:
        raise Refused(
            EXIT_NOT_CLOUDWATCH, "Invalid type of subscriber: only CloudWatch Logs is handled"
        )
    if str(args.service).strip().lower() != "cloudwatchlogs":
        raise Refused(
            EXIT_NOT_CLOUDWATCH,
            f"Invalid type of service '{args.service}': only cloudwatchlogs is handled",
        )


# The service options of the command line, by their ossec.conf names.
_OPTIONS = (
    "aws_log_groups",
    "regions",
    "only_logs_after",
    "aws_profile",
    "access_key",
    "secret_key",
    "iam_role_arn",
    "iam_role_duration",
    "sts_endpoint",
    "service_endpoint",
    "aws_account_id",
    "aws_account_alias",
    "discard_regex",
)


def _options(args: argparse.Namespace) -> dict[str, Option]:
    """The service options given, by their ossec.conf names, as ``config`` reads them."""
    options: dict[str, Option] = {}
    for name in _OPTIONS:
        value = getattr(args, name)
        if value is None or (name == "regions" and not value.strip()):
            continue
        if _CONTROL.search(value):
            raise Refused(EXIT_ARGUMENTS, f"--{name} holds control characters")
        options[name] = Option(value, field=args.discard_field if name == "discard_regex" else None)
    if args.remove_log_streams:
        options["remove_log_streams"] = Option("yes")
    return options


def _check_regions(text: str, known: Iterable[str]) -> None:
    """Refuse a region that CloudWatch Logs does not have, in the old module's words: at
    ``--debug 1`` and more its DEBUG line, else an ERROR line; exit 22."""
    valid = set(known)
    for region in (entry.strip() for entry in text.split(",")):
        if region and region not in valid:
            if log.isEnabledFor(logging.INFO):
                log.info("+++ ERROR: Invalid region '%s'", region)
                raise Refused(EXIT_REGION)
            raise Refused(EXIT_REGION, f"Invalid region '{region}'")


def build_service_from(args: argparse.Namespace) -> CloudWatchService:
    """The service these arguments describe, read with the rules and messages of
    ``ossec.conf``; raises Refused with every problem found."""
    if args.discard_field is not None and args.discard_regex is None:
        raise Refused(EXIT_ARGUMENTS, "--discard-field needs --discard-regex")
    options = _options(args)
    if not options.get("aws_log_groups", Option("")).text.strip():
        raise Refused(EXIT_ARGUMENTS, "--aws_log_groups is required for the cloudwatchlogs service")
    known = known_regions()
    _check_regions(args.regions, known)
    found = Findings()
    service = build_service(options, 0, found, known)
    if service is None:
        raise Refused(EXIT_ARGUMENTS, *(message for _, message in found.errors))
    for _, message in found.warnings:
        log.warning("%s", message)
    if service.discard is not None:
        discard = AnnouncedDiscard(service.discard.pattern, service.discard.field)
        service = dataclasses.replace(service, discard=discard)
    return service


def config_of(service: CloudWatchService, *, skip_on_error: bool) -> Config:
    """A configuration of one wodle holding ``service``, to run now."""
    wodle = Wodle(
        line=0,
        disabled=False,
        schedule=Interval(seconds=DEFAULT_INTERVAL_SECONDS),
        skip_on_error=skip_on_error,
        services=(service,),
    )
    return Config(path="command line", wodles=(wodle,), warnings=())


@dataclass(frozen=True)
class AnnouncedDiscard(DiscardRule):
    """A discard rule that prints the old module's line for each event it drops (shown at
    ``--debug 2`` and more, as the old module showed it)."""

    def discards(self, message: str) -> bool:
        where = self.matched_in(message)
        if where == "field":
            log.debug(
                '+++ The "%s" regex found a match in the "%s" field. The event will be skipped.',
                self.pattern.pattern,
                self.field,
            )
        elif where == "message":
            log.debug(
                '+++ The "%s" regex found a match. The event will be skipped.',
                self.pattern.pattern,
            )
        return where is not None


def only_service(config: Config) -> CloudWatchService:
    """The one service of a configuration built by ``config_of``."""
    return config.wodles[0].services[0]


def check_credentials(access: AwsAccess, service: CloudWatchService) -> str | None:
    """The account id labelling the state, after checking the credentials with STS.

    Unusable credentials raise Refused (codes 3 or 23). When STS cannot be reached, the run
    goes on (the collector falls back on the account it last knew) and None is returned
    unless ``aws_account_id`` was given.
    """
    try:
        account, _ = access.caller_identity()
    except CredentialsError as exc:
        if exc.code == "ProfileNotFound":
            raise Refused(EXIT_PROFILE, f"Profile not found: {exc}") from None
        raise Refused(EXIT_CREDENTIALS, f"Invalid credentials: {exc}") from None
    except AwsError as exc:
        if isinstance(exc, AccessDenied) or exc.code in _BAD_KEYS:
            raise Refused(EXIT_CREDENTIALS, f"Invalid credentials: {exc}") from None
        log.warning("cannot check the credentials with STS (%s); collecting anyway", exc)
        return service.aws_account_id
    log.info("credentials of account %s", account)
    return service.aws_account_id or account


def forget_for_reparse(state: StateStore, account: str, service: CloudWatchService) -> int:
    """Drop the positions of the service's groups (in its regions, or all), so that every
    stream is read again from the start; returns how many groups were forgotten."""
    return state.forget_groups(account, service.log_groups, service.regions)


class QueuePatience:
    """Tells the forwarder when to stop waiting for the manager's queue: on a stop request,
    or once one outage has lasted ``limit`` seconds (then it also requests the stop, so that
    the other readers end too)."""

    def __init__(
        self, limit: float, stop: threading.Event, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.stop = stop
        self.clock = clock
        self.forwarder: QueueForwarder | None = None
        self.exhausted = False
        self._outage = -1
        self._since = 0.0

    def __call__(self) -> bool:
        if self.exhausted or self.stop.is_set():
            return True
        outage = self.forwarder.outages if self.forwarder is not None else 0
        now = self.clock()
        if outage != self._outage:
            self._outage, self._since = outage, now
        if now - self._since >= self.limit:
            self.exhausted = True
            self.stop.set()
            return True
        return False


def report(tally: Tally, service: CloudWatchService) -> None:
    """The old module's lines: per region and stream that sent events, ``+++ Sent N events
    to Analysisd`` (``--debug 1``), after ours naming them (``--debug 2``), in the order the
    old module read them (regions as given, then groups as given); per log group with
    nothing new, ``+++ There are no new events in the "GROUP" group`` (``--debug 1``, not
    after a failure: the old module stopped at the first one)."""
    sent: dict[str, int] = {}
    for (region, group, stream), count in sorted(
        tally.per_stream.items(), key=lambda item: _read_order(item[0], service)
    ):
        if count <= 0:
            continue
        sent[group] = sent.get(group, 0) + count
        log.debug(
            "region %s, log group %s, log stream %s: %d events forwarded",
            region,
            group,
            stream,
            count,
        )
        log.info("+++ Sent %d events to Analysisd", count)
    for group in service.log_groups:
        if group in sent:
            log.info("log group %s: %d events forwarded", group, sent[group])
        elif not tally.failures:
            log.info('+++ There are no new events in the "%s" group', group)


def _read_order(
    key: tuple[str, str, str], service: CloudWatchService
) -> tuple[int, str, int, str, str]:
    """Where the old module read (region, group, stream): regions, then groups, in the
    order given (every region, when none is given, by name), then streams by name."""
    region, group, stream = key
    regions, groups = service.regions, service.log_groups
    return (
        regions.index(region) if region in regions else len(regions),
        region,
        groups.index(group) if group in groups else len(groups),
        group,
        stream,
    )


def summary(tally: Tally, seconds: float) -> None:
    """Log one line with what the run did; streams are counted by the events they sent
    (a whole group is read at once, so a stream with nothing new is never read alone)."""
    sent = len({key for key, count in tally.per_stream.items() if count > 0})
    log.info(
        "finished in %.2f s: %d events (%d bytes) forwarded, %d discarded, %d streams "
        "sent events, %d failures",
        seconds,
        tally.events,
        tally.bytes,
        tally.discarded,
        sent,
        len(tally.failures),
    )


def queue_refusal(reason: str, queue: str) -> Refused:
    """The error for a queue that could not take events, by its errno name."""
    if reason in _QUEUE_AWAY:
        return Refused(
            EXIT_QUEUE_AWAY,
            f"Wazuh must be running: the manager's queue {queue} is unavailable ({reason}); "
            "the next run resumes after the last event sent",
        )
    return Refused(
        EXIT_QUEUE_REFUSED,
        f"Error sending message to Wazuh: the manager's queue {queue} refused events "
        f"({reason}); the next run resumes after the last event sent",
    )


def _interrupted(_sig: int) -> int:
    """The line of a run a signal stopped, and the old module's code for SIGINT."""
    log.error("interrupted by a signal; every stream resumes after its last event sent")
    return EXIT_ARGUMENTS


def _collect_once(
    daemon: Daemon,
    access: AwsAccess,
    service: CloudWatchService,
    *,
    reparse: bool,
    queue: str,
    patience: QueuePatience,
) -> Tally:
    """Check the credentials, forget positions for a reparse, collect, and report."""
    state = daemon.ctx.state
    started = time.monotonic()
    account = check_credentials(access, service)
    if reparse:
        account = account or state.remembered_account(access.label)
        if account is None:
            raise Refused(EXIT_CREDENTIALS, "--reparse needs the account id: STS unreachable")
        forgotten = forget_for_reparse(state, account, service)
        log.info("reparse: %d group positions forgotten", forgotten)
    try:
        tally = daemon.run_once()
    except ForwardError as exc:
        if exc.reason == WRONG_KIND:
            raise Refused(EXIT_QUEUE_REFUSED, f"Error sending message to Wazuh: {exc}") from None
        raise queue_refusal(exc.reason, queue) from None
    if patience.exhausted:
        # The outage's own reason: ENOENT for a missing socket, ECONNREFUSED for a dead one.
        last = patience.forwarder.reason if patience.forwarder is not None else None
        raise queue_refusal(last or "ECONNREFUSED", queue)
    if not daemon.abandoned:
        report(tally, service)
    summary(tally, time.monotonic() - started)
    return tally


def collect(
    config: Config,
    access: AwsAccess,
    *,
    reparse: bool,
    queue: str,
    state_path: str,
    queue_wait: float,
    settle: float = DEFAULT_SETTLE_SECONDS,
    late_every: float = DEFAULT_LATE_EVERY_SECONDS,
) -> int:
    """Run the service once against the queue and state given; returns the exit code."""
    wrong = queue_problem(queue)
    if wrong is not None:
        raise Refused(EXIT_QUEUE_REFUSED, f"Error sending message to Wazuh: {wrong}")
    try:
        state = StateStore(state_path)
    except StateError as exc:
        raise Refused(EXIT_STATE, f"Unexpected error accessing the state file: {exc}") from None
    # SIGINT and SIGTERM stop after the page in hand; SIGHUP keeps the old module's fate.
    life = Lifecycle()
    stop = life.stop
    patience = QueuePatience(queue_wait, stop)
    forwarder = QueueForwarder(queue, stopping=patience)
    patience.forwarder = forwarder
    daemon = Daemon(
        load=lambda: config,
        ctx=Context(
            state=state,
            forwarder=forwarder,
            stop=stop,
            settle=settle,
            late_every=late_every,
            # the old module's "+++ Sent N events" lines, shown from --debug 1
            count_streams=log.isEnabledFor(logging.INFO),
        ),
        config=config,
        make_access=lambda _service: access,
    )
    life.install_signals()
    memtune.set_aside_startup()
    try:
        tally = _collect_once(
            daemon, access, only_service(config), reparse=reparse, queue=queue, patience=patience
        )
    finally:
        life.restore_signals()
        if not daemon.abandoned:
            forwarder.close()
            state.close()
    code = EXIT_CLOUDWATCH if tally.failures else EXIT_OK
    return life.exit(code, abandoned=daemon.abandoned, interrupted=_interrupted)


def main(
    argv: Sequence[str],
    *,
    ossec_home: str = DEFAULT_HOME,
    queue_wait: float = QUEUE_WAIT_SECONDS,
) -> int:
    """Run once with the old module's command line; returns the old module's exit code."""
    logsetup.add_secrets(secrets_in(argv))
    try:
        args = parser().parse_args(list(argv))
    except _ArgumentError as exc:
        setup_output(0)
        log.error("invalid arguments: %s (aws-s3 --help lists them)", exc)
        return EXIT_ARGUMENTS
    setup_output(args.debug)
    logsetup.add_secrets([args.secret_key])
    if args.debug > 0:
        log.info("+++ Debug mode on - Level: %d", args.debug)
    try:
        _check_kind(args)
        service = build_service_from(args)
        config = config_of(service, skip_on_error=args.skip_on_error)
        queue, state_path = paths(args, ossec_home)
        log.info(
            "aws-wodle %s: cloudwatchlogs, log groups %s, regions %s; queue %s, state %s",
            __version__,
            ",".join(service.log_groups),
            ",".join(service.regions) or "all of the credentials' partition",
            queue,
            state_path,
        )
        return collect(
            config,
            AwsAccess(service),
            reparse=args.reparse,
            queue=queue,
            state_path=state_path,
            queue_wait=queue_wait,
            settle=args.settle,
            late_every=args.late_every,
        )
    except Refused as exc:
        for message in exc.messages:
            log.error("%s", message)
        return exc.code
    except Exception as exc:  # noqa: BLE001 - the old module's last resort, exit 1
        log.error("Unknown error: %s: %s", type(exc).__name__, exc)
        return EXIT_UNKNOWN
