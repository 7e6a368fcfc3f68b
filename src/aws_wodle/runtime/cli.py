"""The command line: argument parsing, wiring of the real objects, and exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from .. import __version__, redact
from ..aws.budget import DEFAULT_RATES, Budgets
from ..config import Config, load_config, profile_warnings, summary
from ..config.settings import (
    RunOptions,
    SettingsFile,
    load_settings,
    merge,
    parse_duration,
    unmatched_rules,
)
from ..config.settings import describe as describe_settings
from ..config.values import FORMATS, parse_address
from ..errors import ConfigError, StateError, WodleError
from ..manager.forward import QUEUE_WAIT_SECONDS, QueueForwarder, queue_problem
from ..paths import (
    DEFAULT_HOME,
    STATE_RELATIVE,
    config_path,
    queue_path,
    settings_path,
    state_path,
)
from ..poll.pipeline import Context, Tally
from ..push.source import KinesisSource
from ..push.stats import PushStats, Reporter
from ..store.state import (
    GroupRecord,
    ImportedStream,
    StateStore,
    StreamRecord,
    read_imported,
    read_status,
)
from . import logsetup, memtune
from .lifecycle import Lifecycle
from .metrics import Metrics, serve
from .metricserver import show as show_address

log = logging.getLogger("aws_wodle")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    if name not in DEFAULT_RATES:
        known = ", ".join(sorted(DEFAULT_RATES))
        raise argparse.ArgumentTypeError(f"unknown operation '{name}' (one of {known})")
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"invalid rate '{value}': a number of requests per second")
    return name, rate


def _metrics_address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-wodle",
        description="Collects CloudWatch Logs for the aws-s3 wodles of ossec.conf.",
    )
    parser.add_argument("--version", action="version", version=f"aws-wodle {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="collect, once or as a daemon")
    run.add_argument("--config", help="ossec.conf (default: <home>/etc/ossec.conf)")
    run.add_argument("--settings", help=_SETTINGS_HELP)
    run.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")
    _strict_perms_flag(run)
    run.add_argument("--queue", help="manager queue socket (default: <home>/queue/sockets/queue)")
    run.add_argument("--state", help=f"state file (default: <home>/{STATE_RELATIVE})")
    run.add_argument("--once", action="store_true", help="run every enabled wodle now, then exit")
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        type=str.lower,
        help="default info (or the settings file's log_level)",
    )
    run.add_argument(
        "--log-format",
        choices=FORMATS,
        help="syslog: each line starts with its syslog priority, for the journal; "
        "json: one JSON object a line; plain: with timestamps, for a terminal "
        "(default: plain when stderr is a terminal, else syslog)",
    )
    run.add_argument(
        "--queue-wait",
        type=_duration,
        metavar="DURATION",
        help="with --once: how long to wait for a missing or refusing manager queue before "
        f"giving up with exit 1 (e.g. {QUEUE_WAIT_SECONDS:.0f}s, the default); the daemon "
        "waits as long as it takes",
    )
    run.add_argument(
        "--remove-idle",
        type=_duration,
        help="with remove_log_streams, keep a stream written to within this time "
        "(e.g. 10m; 0 turns the margin off; default 10m)",
    )

    run.add_argument(
        "--lookback",
        type=_duration,
        help="how late an event may arrive (its ingestion time minus its timestamp) and still "
        "be forwarded exactly once; each cycle re-reads this much of every group's recent "
        "events (e.g. 15m, the default; 0 turns it off: cheapest, but late events are lost)",
    )
    run.add_argument(
        "--late-every",
        type=_duration,
        help="how often a cycle reads the whole lookback for events that arrived more than "
        "a few seconds after their timestamps; the cycles in between read only the last "
        "moments, so a late event waits up to this long plus the settle margin and one "
        "interval (5m, the default; 1h reads less; 0: every cycle reads the whole lookback, so "
        "late events go with the next cycle, at (lookback + interval) / interval reads an event)",
    )
    run.add_argument(
        "--settle",
        type=_duration,
        help="how long after AWS accepts an event it is trusted to be readable (PutLogEvents "
        "is eventually consistent); events newer than this wait for the next cycle "
        "(default 30s)",
    )
    run.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        type=_metrics_address,
        help="serve Prometheus metrics at http://ADDR:PORT/metrics, on a loopback address "
        "only (e.g. 127.0.0.1:9109); off by default",
    )
    run.add_argument(
        "--rate",
        action="append",
        type=_rate,
        default=[],
        metavar="OPERATION=PER_SECOND",
        help="request rate per account and region for a CloudWatch Logs operation, if the "
        "account's quotas differ from the defaults (GetLogEvents=10, FilterLogEvents=5, "
        "DescribeLogStreams=5, DescribeLogGroups=5, DeleteLogStream=5); repeatable",
    )

    check = commands.add_parser("check-config", help="validate ossec.conf and summarise it")
    check.add_argument("--config", help="ossec.conf (default: <home>/etc/ossec.conf)")
    check.add_argument("--settings", help=_SETTINGS_HELP)
    check.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also ask AWS once, with the configured credentials, whether each log group "
        "and [[kinesis]] source can be read, naming a permission missing (exit 1 if not)",
    )
    _strict_perms_flag(check)

    status = commands.add_parser("status", help="what was collected, per group (or stream)")
    status.add_argument("--state", help=f"state file (default: <home>/{STATE_RELATIVE})")
    status.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")
    status.add_argument("--json", action="store_true", help="one JSON document for scripts")
    status.add_argument(
        "--streams", action="store_true", help="also one row per stream that sent events"
    )
    status.add_argument(
        "--config",
        help="ossec.conf, beside which the settings file is (default: <home>/etc/ossec.conf)",
    )
    status.add_argument("--settings", help=_SETTINGS_HELP)
    _strict_perms_flag(status)

    # These two take their own arguments (the old module's, for `legacy`): main() hands
    # them over before this parser runs; they are listed here for --help.
    commands.add_parser(
        "import-state",
        add_help=False,
        help="start each stream where the old module stopped (reads its aws_services.db)",
    )
    commands.add_parser(
        "legacy",
        add_help=False,
        help="one run with the old aws-s3 wodle's command line (--service cloudwatchlogs ...)",
    )
    return parser


def _strict_perms_flag(command: argparse.ArgumentParser) -> None:
    """The switch that turns the refusal of loosely permitted config files into a warning."""
    command.add_argument(
        "--no-strict-perms",
        dest="strict_perms",
        action="store_false",
        help="use ossec.conf and aws-wodle.toml even when users other than root, the one "
        "running aws-wodle and the manager's group could change them (or their directory), "
        "with a warning; by default such a file is refused (exit 2)",
    )


def _config_path(args: argparse.Namespace) -> str:
    return str(args.config or config_path(args.ossec_home))


def _state_path(args: argparse.Namespace) -> str:
    return str(args.state or state_path(args.ossec_home))


def _load(path: str, args: argparse.Namespace) -> Config:
    from ..aws.cloudwatch import known_regions  # noqa: PLC0415 - botocore only where it is needed

    config = load_config(path, known_regions(), strict_perms=args.strict_perms)
    for wodle in config.wodles:
        for service in wodle.services:
            logsetup.add_secrets([service.secret_key])
    return config


_SETTINGS_HELP = (
    "aws-wodle's own settings file (default: aws-wodle.toml beside ossec.conf, "
    "<home>/etc/aws-wodle.toml; when that is missing, the defaults); a flag given on the "
    "command line overrides it"
)


def _settings_file(args: argparse.Namespace) -> SettingsFile:
    """The settings file: the one named by --settings (which must exist), else the one
    beside ossec.conf, if any."""
    path = args.settings or settings_path(_config_path(args))
    return load_settings(
        str(path), required=args.settings is not None, strict_perms=args.strict_perms
    )


def _run_options(args: argparse.Namespace) -> RunOptions:
    """The settings file merged with the flags given (a flag overrides the file)."""
    flags = {
        "lookback": args.lookback,
        "late_every": args.late_every,
        "settle": args.settle,
        "remove_idle": args.remove_idle,
        "queue_wait": args.queue_wait,
        "metrics": args.metrics,
        "log_level": args.log_level,
        "log_format": args.log_format,
    }
    return merge(_settings_file(args), flags, dict(args.rate))


def _apply(options: RunOptions, before: RunOptions, ctx: Context) -> None:
    """Use reloaded run options from the next cycle on (reloads happen between cycles)."""
    ctx.lookback = options.lookback
    ctx.late_every = options.late_every
    ctx.settle = options.settle
    ctx.remove_idle = options.remove_idle
    ctx.discover_every = options.discover_every
    ctx.group_rules = options.groups
    ctx.count_streams = options.log_level == "debug"
    ctx.budgets.set_rates(options.rates)
    logging.getLogger().setLevel(options.log_level.upper())
    for warning in options.settings.warnings:
        log.warning("%s", warning)
    for name in ("log_format", "metrics"):
        if getattr(options, name) != getattr(before, name):
            log.warning("%s changed: it takes effect when aws-wodle is restarted", name)


def _load_or_report(path: str, args: argparse.Namespace) -> Config | None:
    """The configuration, or None after printing one ``FILE:LINE: message`` per error."""
    try:
        return _load(path, args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Exit 0 when the manager starts with the file and every service is collected; else
    print one ``FILE:LINE: message`` per error and exit 2. Each warning is printed once, on
    stderr, and the summary of what would run on stdout."""
    config = _load_or_report(_config_path(args), args)
    try:
        settings: SettingsFile | None = _settings_file(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        settings = None
    if config is None or settings is None:
        return EXIT_CONFIG
    for broken in config.broken:
        for problem in broken.problems:
            print(problem, file=sys.stderr)
    warnings = (
        *config.warnings,
        *profile_warnings(config, args.ossec_home),
        *settings.warnings,
        *unmatched_rules(settings, config),
    )
    for warning in dict.fromkeys(warnings):
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(config))
    print(describe_settings(merge(settings, {}, {})))
    if config.broken:
        return EXIT_CONFIG
    if getattr(args, "probe", False):
        return _probe(config, settings)
    return EXIT_OK


def _probe(config: Config, settings: SettingsFile) -> int:
    from ..push.worker import source_clients  # noqa: PLC0415
    from .probe import probe_all  # noqa: PLC0415 - botocore only where it is needed

    failed = 0
    for finding in probe_all(config, settings.kinesis, source_clients):
        print(redact.escape_controls(redact.mask(finding.line())))
        failed += not finding.ok
    if failed:
        print(f"probe: {failed} cannot be read with the configured credentials", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _report_config_error(exc: ConfigError, fmt: str) -> None:
    """One ``FILE:LINE: message`` per problem on stderr, at error priority for the journal."""
    for problem in exc.problems:
        if fmt == "json":
            log.error("%s", problem)
        else:
            print(f"<3>{problem}" if fmt == "syslog" else str(problem), file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    memtune.return_big_buffers()
    try:
        options = _run_options(args)
    except ConfigError as exc:
        _report_config_error(exc, logsetup.setup(args.log_level or "info", args.log_format))
        return EXIT_CONFIG
    fmt = logsetup.setup(options.log_level, options.log_format)
    for warning in options.settings.warnings:
        log.warning("%s", warning)
    logsetup.add_secrets([source.secret_key for source in options.settings.kinesis])
    path = _config_path(args)
    try:
        config = _load(path, args)
    except ConfigError as exc:
        _report_config_error(exc, fmt)
        return EXIT_CONFIG
    for warning in (*config.warnings, *unmatched_rules(options.settings, config)):
        log.warning("%s", warning)
    queue = str(args.queue or queue_path(args.ossec_home))
    wrong = queue_problem(queue)
    if wrong is not None:
        log.error("%s", wrong)
        return EXIT_FAILED
    try:
        state = StateStore(_state_path(args))
    except StateError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    life = Lifecycle()
    stop = life.stop
    # run --once gives up on a manager that stays away (then exits 1); the daemon waits.
    forwarder = QueueForwarder(
        queue,
        stopping=stop.is_set,
        max_wait=options.queue_wait if args.once else None,
        on_failure=stop.set,
    )
    ctx = Context(
        state=state,
        forwarder=forwarder,
        remove_idle=options.remove_idle,
        lookback=options.lookback,
        late_every=options.late_every,
        settle=options.settle,
        count_streams=options.log_level == "debug",
        stop=stop,
        budgets=Budgets(options.rates),
        group_rules=options.groups,
        discover_every=options.discover_every,
    )
    in_use = [options]

    def reload() -> Config:
        """SIGHUP: ossec.conf and the settings file again; either one invalid keeps both
        as they were (the daemon reports the problems)."""
        fresh = _load(path, args)
        changed = _run_options(args)
        logsetup.add_secrets([source.secret_key for source in changed.settings.kinesis])
        _apply(changed, in_use[0], ctx)
        for warning in unmatched_rules(changed.settings, fresh):
            log.warning("%s", warning)
        in_use[0] = changed
        return fresh

    from .daemon import Daemon  # noqa: PLC0415 - botocore only where it is needed

    daemon = Daemon(load=reload, ctx=ctx, config=config)
    daemon.on_cycle = lambda tally: state.record_failures(tally.failures)
    pushed: PushStats | None = None
    if args.once:
        if options.settings.kinesis:
            log.info("[[kinesis]] sources are read by the daemon only (run without --once)")
    else:
        from ..push.worker import PushWorker, source_clients  # noqa: PLC0415 - botocore only here

        pushed = PushStats()
        stats = pushed

        def problem(source: KinesisSource, message: str | None) -> None:
            state.record_push_problem(source.stream_name, source.region, message)

        daemon.kinesis = lambda: in_use[0].settings.kinesis
        daemon.make_push = lambda source: PushWorker(
            source, source_clients, forwarder, stats=stats, on_problem=problem
        )
        Reporter(stats, stop).start()
    if args.once and sys.stderr.isatty():
        daemon.bar = sys.stderr
    server = None
    if options.metrics:
        metrics = Metrics(ctx.budgets, state, pushed)

        def on_cycle(tally: Tally) -> None:
            state.record_failures(tally.failures)
            metrics.add_cycle(tally)

        daemon.on_cycle = on_cycle
        try:
            server = serve(options.metrics, metrics.render)
        except OSError as exc:
            log.error("cannot serve metrics at %s: %s", show_address(options.metrics), exc)
            state.close()
            return EXIT_FAILED
    # SIGTERM and SIGINT stop after the page in hand; SIGHUP re-reads the configuration
    # between cycles (run --once takes the request and never acts on it).
    life.install_signals(wake=daemon.request_stop, reload=daemon.request_reload)
    log.debug(
        "%d start-up objects set aside from the garbage collector", memtune.set_aside_startup()
    )
    try:
        if args.once:
            tally = daemon.run_once()
            code = EXIT_OK
            if tally.failures:
                log.error(
                    "run finished with %d failures (each reported above)", len(tally.failures)
                )
                code = EXIT_FAILED
        else:
            log.info("aws-wodle %s started with %s", __version__, path)
            daemon.run_forever()
            code = EXIT_OK
    finally:
        if server is not None:
            server.shutdown()
        if not daemon.abandoned:
            forwarder.close()
            state.close()
    if forwarder.failure is not None:
        log.error("%s", forwarder.failure)
        code = EXIT_FAILED
    elif args.once and forwarder.unsent:
        log.error("stopped before the manager's queue took every event; the next run sends them")
        code = EXIT_FAILED
    if not args.once:
        return life.exit(code, abandoned=daemon.abandoned)
    return life.exit(
        code,
        abandoned=daemon.abandoned,
        interrupted=lambda sig: _interrupted(sig, tally, daemon.services_left),
    )


def _interrupted(signum: int, tally: Tally, services_left: int) -> int:
    """Say how far an interrupted ``run --once`` got; its exit code, as shells give a
    command a signal ended: 128 plus the signal's number (130 SIGINT, 143 SIGTERM)."""
    name = signal.Signals(signum).name
    unstarted = f", {services_left} services not started" if services_left else ""
    log.error(
        "interrupted by %s: %d events sent, %d groups read to the end, %d groups left%s; "
        "the next run resumes where this one stopped",
        name,
        tally.events,
        tally.groups,
        tally.left,
        unstarted,
    )
    return 128 + signum


def _ms_iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def _s_iso(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def _group_row(record: GroupRecord, now: float) -> dict[str, object]:
    c = record.cursor
    behind = None if c.fence is None else max(0.0, now - c.fence / 1000)
    return {
        "account": record.key.account,
        "region": record.key.region,
        "group": record.key.group,
        "streams": record.streams,
        "events_forwarded": record.events,
        "bytes_forwarded": record.bytes,
        "covered_from": _ms_iso(c.covered_from),
        "collected_up_to": _ms_iso(c.fence),
        "behind_seconds": None if behind is None else round(behind, 1),
        "newest_event_time": _ms_iso(c.newest_ts),
        "newest_ingestion_time": _ms_iso(c.newest_ingestion),
        "read_under_way": c.cycle is not None,
        "backfill_pending": c.gap is not None,
        "events_held": c.held,
        "last_collection_time": _s_iso(record.last_collected),
        "last_checked_time": _s_iso(record.last_checked),
        "last_checked_age_seconds": (
            None if record.last_checked is None else round(now - record.last_checked, 1)
        ),
    }


def _stream_row(record: StreamRecord) -> dict[str, object]:
    return {
        "account": record.key.account,
        "region": record.key.region,
        "group": record.key.group,
        "stream": record.key.stream,
        "events_forwarded": record.events,
        "bytes_forwarded": record.bytes,
        "newest_event_time": _ms_iso(record.newest_ts),
        "newest_ingestion_time": _ms_iso(record.newest_ingestion),
        "last_collection_time": _s_iso(record.last_collected),
    }


def _human_seconds(value: object) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    seconds = float(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Aligned columns; each cell masked and on one line (a group or stream name is data:
    its newlines and terminal escapes are shown as ``#012``, ``#033``)."""
    table = [tuple(redact.clean(cell) for cell in row) for row in (header, *rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _imported_rows(imported: list[ImportedStream]) -> list[dict[str, object]]:
    """One row per group holding imported positions that no collection used yet."""
    by_group: dict[tuple[str, str, str], list[ImportedStream]] = {}
    for item in imported:
        key = item.key
        by_group.setdefault((key.account, key.region, key.group), []).append(item)
    rows = []
    for (account, region, group), items in by_group.items():
        sent = [i.last_ts for i in items if i.last_ts is not None]
        rows.append(
            {
                "account": account,
                "region": region,
                "group": group,
                "streams": len(items),
                "covered_from": _ms_iso(min(i.covered_from for i in items)),
                "sent_up_to": _ms_iso(max(sent) if sent else None),
                "collected": False,
            }
        )
    return rows


def _imported_stream_row(item: ImportedStream) -> dict[str, object]:
    return {
        "account": item.key.account,
        "region": item.key.region,
        "group": item.key.group,
        "stream": item.key.stream,
        "sent_up_to": _ms_iso(item.last_ts),
    }


def _print_imported(rows: list[dict[str, object]], streams: list[ImportedStream]) -> None:
    print("\nimported by import-state, not collected yet (each stream resumes after SENT UP TO):")
    _print_table(
        ("ACCOUNT", "REGION", "GROUP", "STREAMS", "SENT UP TO"),
        [
            (str(r["account"]), str(r["region"]), str(r["group"]), str(r["streams"]),
             str(r["sent_up_to"]))
            for r in rows
        ],
    )  # fmt: skip
    if streams:
        print()
        _print_table(
            ("ACCOUNT", "REGION", "GROUP", "STREAM", "SENT UP TO"),
            [
                (i.key.account, i.key.region, i.key.group, i.key.stream, _ms_iso(i.last_ts))
                for i in streams
            ],
        )


def cmd_status(args: argparse.Namespace) -> int:
    try:
        groups, streams, failures = read_status(_state_path(args), streams=args.streams)
        imported = read_imported(_state_path(args))
    except StateError as exc:
        print(f"error: {redact.clean(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    now = time.time()
    push_rows, push_problems, settings_problem = _push_status(args)
    group_rows = [_group_row(g, now) for g in groups]
    stream_rows = [_stream_row(r) for r in streams or []]
    # Masked again: a state file written before masking existed may hold a credential.
    failure_rows = [
        {"time": _s_iso(at), "message": redact.mask(message)} for at, message in failures
    ]
    imported_rows = _imported_rows(imported)
    if args.json:
        doc: dict[str, object] = {"groups": group_rows, "last_cycle_failures": failure_rows}
        if args.streams:
            doc["streams"] = stream_rows
        if imported:
            doc["imported"] = imported_rows
            if args.streams:
                doc["imported_streams"] = [_imported_stream_row(i) for i in imported]
        doc["kinesis"] = push_rows
        doc["kinesis_problems"] = push_problems
        if settings_problem:
            doc["settings_problem"] = settings_problem
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    _print_table(
        (
            "ACCOUNT",
            "REGION",
            "GROUP",
            "STREAMS",
            "EVENTS",
            "COLLECTED UP TO",
            "BEHIND",
            "HELD",
            "LAST CHECKED",
            "CHECKED AGO",
        ),
        [
            (
                str(r["account"]),
                str(r["region"]),
                str(r["group"]),
                str(r["streams"]),
                str(r["events_forwarded"]),
                str(r["collected_up_to"]),
                _human_seconds(r["behind_seconds"]),
                str(r["events_held"]),
                str(r["last_checked_time"]),
                _human_seconds(r["last_checked_age_seconds"]),
            )
            for r in group_rows
        ],
    )
    if not group_rows:
        print("(no groups collected yet)")
    if imported_rows:
        _print_imported(imported_rows, imported if args.streams else [])
    if args.streams:
        print()
        _print_table(
            ("ACCOUNT", "REGION", "GROUP", "STREAM", "EVENTS", "NEWEST EVENT", "LAST COLLECTION"),
            [
                (
                    str(r["account"]),
                    str(r["region"]),
                    str(r["group"]),
                    str(r["stream"]),
                    str(r["events_forwarded"]),
                    str(r["newest_event_time"]),
                    str(r["last_collection_time"]),
                )
                for r in stream_rows
            ],
        )
    if failure_rows:
        print(f"\nlast cycle's failures ({len(failure_rows)}):")
        for row in failure_rows:
            print(f"  {row['time']}  {redact.escape_controls(str(row['message']))}")
    if settings_problem:
        print(f"\n[[kinesis]] sources not shown: {settings_problem}")
    _print_push(push_rows, push_problems)
    return EXIT_OK


# What a shell reports for a command stopped by SIGPIPE (128 + 13), as `yes | head` gives.
EXIT_PIPE = 141


def _reader_gone() -> int:
    """Output went to a pipe whose reader left (``status --json | head -1``): stop quietly,
    as well-behaved commands do. stdout is pointed at /dev/null so that the interpreter's
    last flush at exit finds nobody gone and prints nothing either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


def _push_status(
    args: argparse.Namespace,
) -> tuple[list[dict[str, object]], list[dict[str, object]], str | None]:
    """The [[kinesis]] sources' lease tables, their standing problems (from the state
    file), and why the settings file could not be read (None when it could)."""
    from ..store.state import read_push_problems  # noqa: PLC0415

    problems: list[dict[str, object]] = [
        {"stream": stream, "region": region, "since": _s_iso(at), "message": redact.mask(m)}
        for stream, region, at, m in read_push_problems(_state_path(args))
    ]
    try:
        settings = _settings_file(args)
    except ConfigError as exc:
        return [], problems, "; ".join(str(p) for p in exc.problems)
    if not settings.kinesis:
        return [], problems, None
    from ..push.status import all_status  # noqa: PLC0415 - botocore only where it is needed

    return all_status(settings.kinesis), problems, None


def _print_push(rows: list[dict[str, object]], problems: list[dict[str, object]]) -> None:
    for row in rows:
        print(
            f"\nkinesis stream {row['stream']} in {row['region']} "
            f"(lease table {row['lease_table']}):"
        )
        if row["error"]:
            print(f"  {redact.escape_controls(redact.mask(str(row['error'])))}")
            continue
        shards = row["shards"]
        assert isinstance(shards, list)
        _print_table(
            ("SHARD", "OWNER", "BEHIND", "CHECKPOINTED AGO", "SWITCHES", "CHECKPOINT"),
            [
                (
                    str(s["shard"]),
                    str(s["owner"] or "(free)"),
                    _human_seconds(s["behind_seconds"]),
                    _human_seconds(s["checkpoint_age_seconds"]),
                    str(s["owner_switches"]),
                    str(s["checkpoint"]),
                )
                for s in shards
            ],
        )
        if not shards:
            print("  (no shards leased yet)")
    if problems:
        print(f"\n[[kinesis]] sources failing ({len(problems)}):")
        for p in problems:
            text = redact.escape_controls(str(p["message"]))
            print(f"  {p['since']}  {p['stream']} in {p['region']}: {text}")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["legacy"]:
        from . import legacy  # noqa: PLC0415 - botocore only where it is needed

        return legacy.main(arguments[1:])
    if arguments[:1] == ["import-state"]:
        from ..store import migrate  # noqa: PLC0415 - botocore only where it is needed

        return migrate.main(arguments[1:])
    if arguments[:1] == ["state-dir"]:
        from ..store import statedir  # noqa: PLC0415 - the units' and packages' safe install -d

        return statedir.main(arguments[1:])
    args = _parser().parse_args(arguments)
    handlers = {"run": cmd_run, "check-config": cmd_check_config, "status": cmd_status}
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_gone()
    except WodleError as exc:
        print(f"error: {redact.clean(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
