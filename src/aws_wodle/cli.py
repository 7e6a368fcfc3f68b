"""The command line: argument parsing, wiring of the real objects, and exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from . import __version__, legacy, logsetup, migrate
from .budget import DEFAULT_RATES, Budgets
from .cloudwatch import known_regions
from .config import Config, load_config, summary
from .daemon import Daemon
from .errors import ConfigError, StateError, WodleError
from .forward import QueueForwarder
from .metrics import Metrics, parse_address, serve
from .paths import DEFAULT_HOME, STATE_RELATIVE, config_path, queue_path, state_path
from .pipeline import (
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_REMOVE_IDLE_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    Context,
)
from .state import StateStore, StreamRecord, read_records

log = logging.getLogger("aws_wodle")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid duration '{text}': a number with an optional suffix s, m, h, d or w"
        )
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(int(match.group(1)) * factor)


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
    run.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")
    run.add_argument("--queue", help="manager queue socket (default: <home>/queue/sockets/queue)")
    run.add_argument("--state", help=f"state file (default: <home>/{STATE_RELATIVE})")
    run.add_argument("--once", action="store_true", help="run every enabled wodle now, then exit")
    run.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        type=str.lower,
    )
    run.add_argument(
        "--log-format",
        default="syslog",
        choices=logsetup.FORMATS,
        help="syslog: each line starts with its syslog priority, for the journal (default); "
        "json: one JSON object a line; plain: with timestamps, for a terminal",
    )
    run.add_argument(
        "--remove-idle",
        type=_duration,
        default=DEFAULT_REMOVE_IDLE_SECONDS,
        help="with remove_log_streams, keep a stream written to within this time "
        "(e.g. 10m; 0 turns the margin off; default 10m)",
    )

    run.add_argument(
        "--lookback",
        type=_duration,
        default=DEFAULT_LOOKBACK_SECONDS,
        help="how late an event may arrive (its ingestion time minus its timestamp) and still "
        "be forwarded exactly once; each cycle re-reads this much of every group's recent "
        "events (e.g. 15m, the default; 0 turns it off: cheapest, but late events are lost)",
    )
    run.add_argument(
        "--settle",
        type=_duration,
        default=DEFAULT_SETTLE_SECONDS,
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
        "DescribeLogStreams=5, DeleteLogStream=5); repeatable",
    )

    check = commands.add_parser("check-config", help="validate ossec.conf and summarise it")
    check.add_argument("--config", help="ossec.conf (default: <home>/etc/ossec.conf)")
    check.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")

    status = commands.add_parser("status", help="what was collected, per stream")
    status.add_argument("--state", help=f"state file (default: <home>/{STATE_RELATIVE})")
    status.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")
    status.add_argument("--json", action="store_true", help="one JSON document for scripts")

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


def _config_path(args: argparse.Namespace) -> str:
    return str(args.config or config_path(args.ossec_home))


def _state_path(args: argparse.Namespace) -> str:
    return str(args.state or state_path(args.ossec_home))


def _load(path: str) -> Config:
    config = load_config(path, known_regions())
    for wodle in config.wodles:
        for service in wodle.services:
            logsetup.add_secrets([service.secret_key])
    return config


def _load_or_report(path: str) -> Config | None:
    """The configuration, or None after printing one ``FILE:LINE: message`` per error."""
    try:
        return _load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load_or_report(_config_path(args))
    if config is None:
        return EXIT_CONFIG
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(config))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    logsetup.setup(args.log_level, args.log_format)
    path = _config_path(args)
    config = _load_or_report(path)
    if config is None:
        return EXIT_CONFIG
    for warning in config.warnings:
        log.warning("%s", warning)
    queue = str(args.queue or queue_path(args.ossec_home))
    try:
        state = StateStore(_state_path(args))
    except StateError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    stop = threading.Event()
    forwarder = QueueForwarder(queue, stopping=stop.is_set)
    ctx = Context(
        state=state,
        forwarder=forwarder,
        remove_idle=args.remove_idle,
        lookback=args.lookback,
        settle=args.settle,
        stop=stop,
        budgets=Budgets(dict(args.rate)),
    )
    daemon = Daemon(load=lambda: _load(path), ctx=ctx, config=config)
    if args.once and sys.stderr.isatty():
        daemon.bar = sys.stderr
    server = None
    if args.metrics:
        metrics = Metrics(ctx.budgets, state)
        daemon.on_cycle = metrics.add_cycle
        try:
            server = serve(args.metrics, metrics.render)
        except OSError as exc:
            log.error("cannot serve metrics at %s:%d: %s", *args.metrics, exc)
            state.close()
            return EXIT_FAILED
    daemon.install_signals()
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
    if daemon.abandoned:
        # Worker threads are stuck in AWS calls; nothing they hold is uncommitted state.
        logging.shutdown()
        os._exit(code)
    return code


def _ms_iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def _s_iso(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def _status_row(record: StreamRecord, now: float) -> dict[str, object]:
    p = record.position
    lag = record.lag_ms
    return {
        "account": record.key.account,
        "region": record.key.region,
        "group": record.key.group,
        "stream": record.key.stream,
        "position": {
            "covered_from": _ms_iso(p.covered_from),
            "last_event_timestamp": _ms_iso(p.last_ts),
            "resume": "token" if p.token else "timestamp",
            "backfill_pending": p.gap_until is not None,
        },
        "events_forwarded": record.events,
        "bytes_forwarded": record.bytes,
        "last_event_time": _ms_iso(p.last_ts),
        "newest_event_reported": _ms_iso(record.reported_last_event),
        "lag_seconds": None if lag is None else round(lag / 1000, 3),
        "last_collection_time": _s_iso(record.last_collected),
        "last_read_time": _s_iso(p.last_read),
        "last_read_age_seconds": None if p.last_read is None else round(now - p.last_read, 1),
    }


def _human_seconds(value: object) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    seconds = float(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def cmd_status(args: argparse.Namespace) -> int:
    try:
        records = read_records(_state_path(args))
    except StateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    now = time.time()
    rows = [_status_row(r, now) for r in records]
    if args.json:
        print(json.dumps({"streams": rows}, indent=2))
        return EXIT_OK
    header = (
        "ACCOUNT", "REGION", "GROUP", "STREAM", "EVENTS", "LAST EVENT", "LAG", "READ AGO",
        "LAST COLLECTION",
    )  # fmt: skip
    table = [header] + [
        (
            str(r["account"]),
            str(r["region"]),
            str(r["group"]),
            str(r["stream"]),
            str(r["events_forwarded"]),
            str(r["last_event_time"]),
            _human_seconds(r["lag_seconds"]),
            _human_seconds(r["last_read_age_seconds"]),
            str(r["last_collection_time"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(no streams collected yet)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["legacy"]:
        return legacy.main(arguments[1:])
    if arguments[:1] == ["import-state"]:
        return migrate.main(arguments[1:])
    args = _parser().parse_args(arguments)
    handlers = {"run": cmd_run, "check-config": cmd_check_config, "status": cmd_status}
    try:
        return handlers[args.command](args)
    except WodleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
