"""``aws-wodle import-state``: carry the old aws-s3 wodle's CloudWatch Logs positions over.

The old module keeps, in ``<ossec-home>/wodles/aws/aws_services.db``, a table
``cloudwatch_logs (aws_region, aws_log_group, aws_log_stream, next_token, start_time,
end_time)``: per stream, the first and the newest event time it covered (ms) and a forward
token, without the account. Its next run would resume at ``end_time + 1``: every event at
``end_time`` was sent. Each row becomes a seed for the group's first read: the stream's
events up to ``end_time`` count as sent, every one at ``end_time`` included (the mark
``Boundary.ALL``); the token is dropped (it may be past its 24 hours). A row without
``end_time`` has sent nothing.

Each imported group also gets its default start (used when ``only_logs_after`` is not set)
at its earliest ``start_time``: otherwise a stream the old module last read before today
would restart at today 00:00 and lose the events in between.

A stream that our state already holds, or of a group we already collect, is never
overwritten: our position is newer. The old
database is opened read-only and never changed; this module is the only one that reads it.

Operators run this as root, and the service runs as the manager's user: run as root, the
import writes the state as the owner of the state directory (see ``statedir``), gives that
owner any state file that root left there, and refuses to start when that directory does
not exist yet.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..aws.cloudwatch import AwsAccess
from ..errors import AwsError, StateError
from ..model import Boundary, CloudWatchService
from ..paths import DEFAULT_HOME, state_path
from .state import StateStore, StreamKey
from .statedir import user_name

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ARGUMENTS = 2

OLD_TABLE = "cloudwatch_logs"
OLD_COLUMNS = (
    "aws_region",
    "aws_log_group",
    "aws_log_stream",
    "next_token",
    "start_time",
    "end_time",
)
# Where the old module keeps its database, under the manager's home.
OLD_DB_RELATIVE = "wodles/aws/aws_services.db"
# The old module may be writing its database right now; wait this long for its lock.
OLD_DB_TIMEOUT_SECONDS = 5.0

_ACCOUNT = re.compile(r"[0-9]{12}")


@dataclass(frozen=True)
class OldRow:
    """One stream of the old module's table, its times in ms since the epoch."""

    region: str
    group: str
    stream: str
    start_time: int
    end_time: int | None


@dataclass(frozen=True)
class ImportResult:
    """What an import did: streams imported, kept as our state had them, and bad rows."""

    imported: int
    skipped: int
    bad: int
    problems: tuple[str, ...] = ()


def _millis(value: object) -> int | None:
    """A stored time: an integer, its text, or nothing (the old module wrote "None" too)."""
    if value is None or value in ("", "None"):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(f"not a time in ms: {value!r}")
    if number < 0:
        raise ValueError(f"negative time: {number}")
    return number


def parse_row(raw: Sequence[object]) -> OldRow:
    """One row of ``OLD_COLUMNS``; raises ValueError naming what is wrong with it."""
    region, group, stream, _token, start, end = raw
    names = []
    for label, value in (("region", region), ("log group", group), ("log stream", stream)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"empty {label}")
        names.append(value)
    start_time = _millis(start)
    end_time = _millis(end)
    if start_time is None:
        if end_time is None:
            raise ValueError("neither start_time nor end_time")
        start_time = end_time
    if end_time is not None and end_time < start_time:
        raise ValueError(f"end_time {end_time} before start_time {start_time}")
    return OldRow(names[0], names[1], names[2], start_time, end_time)


def read_old_rows(old_db: str) -> tuple[list[OldRow], list[str]]:
    """The rows of the old module's table, and a problem line per row that cannot be used.

    Raises StateError when the file is missing, not SQLite, locked, or lacks the table.
    """
    path = Path(old_db)
    if not path.is_file():
        raise StateError(f"no such file: {old_db}")
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=OLD_DB_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open {old_db}: {exc}") from None
    try:
        columns = {str(row[1]) for row in db.execute(f"PRAGMA table_info({OLD_TABLE})")}
        if not columns:
            raise StateError(
                f"{old_db} has no {OLD_TABLE} table: is it the aws-s3 wodle's aws_services.db, "
                "and did its cloudwatchlogs service run?"
            )
        missing = [name for name in OLD_COLUMNS if name not in columns]
        if missing:
            raise StateError(f"{old_db}: table {OLD_TABLE} lacks column(s) {', '.join(missing)}")
        raw = db.execute(
            f"SELECT {', '.join(OLD_COLUMNS)} FROM {OLD_TABLE} "
            "ORDER BY aws_region, aws_log_group, aws_log_stream"
        ).fetchall()
    except sqlite3.Error as exc:
        hint = "; is the old module still running? disable it first" if "locked" in str(exc) else ""
        raise StateError(f"cannot read {old_db}: {exc}{hint}") from None
    finally:
        db.close()
    rows: list[OldRow] = []
    problems: list[str] = []
    for row in raw:
        try:
            rows.append(parse_row(row))
        except ValueError as exc:
            where = " / ".join(str(part) for part in row[:3])
            problems.append(f"row {where}: {exc}; skipped")
    return rows, problems


def position_of(row: OldRow) -> Boundary:
    """What the old module sent of a stream (see the module docstring)."""
    if row.end_time is None:
        return Boundary()
    return Boundary(row.end_time, (Boundary.ALL,))


def import_rows(
    rows: Sequence[OldRow], problems: Sequence[str], state: StateStore, account: str
) -> ImportResult:
    """Write the positions of ``rows`` for ``account``, leaving streams we already hold."""
    fresh: list[tuple[StreamKey, int, Boundary]] = []
    skipped = 0
    earliest: dict[tuple[str, str], int] = {}
    for row in rows:
        key = StreamKey(account, row.region, row.group, row.stream)
        if state.has_stream(key):
            skipped += 1
            continue
        fresh.append((key, row.start_time, position_of(row)))
        where = (row.region, row.group)
        earliest[where] = min(earliest.get(where, row.start_time), row.start_time)
    # Group starts first: a crash before the positions are written leaves them to a re-run.
    for (region, group), start in sorted(earliest.items()):
        state.group_default_start(account, region, group, start)
    if fresh:
        state.save_seeds(fresh)
    return ImportResult(len(fresh), skipped, len(problems), tuple(problems))


def import_state(old_db: str, state: StateStore, account: str) -> ImportResult:
    """Import the old module's CloudWatch Logs positions from ``old_db`` into ``state``,
    labelled with ``account``; raises StateError when ``old_db`` cannot be read."""
    rows, problems = read_old_rows(old_db)
    return import_rows(rows, problems, state, account)


def account_of_credentials(profile: str | None, sts_endpoint: str | None) -> str:
    """The account id of the credentials (a profile, or the default chain), from STS."""
    if sts_endpoint is not None and "://" not in sts_endpoint:
        sts_endpoint = "https://" + sts_endpoint  # a bare VPC endpoint host, as ossec.conf takes
    service = CloudWatchService(
        line=0,
        log_groups=(),
        regions=(),
        only_logs_after=None,
        aws_profile=profile,
        sts_endpoint=sts_endpoint,
    )
    account, _ = AwsAccess(service).caller_identity()
    return account


def parser() -> argparse.ArgumentParser:
    """The command line of ``aws-wodle import-state``."""
    p = argparse.ArgumentParser(
        prog="aws-wodle import-state",
        description="Start each stream where the old aws-s3 wodle stopped: import its "
        "CloudWatch Logs positions into our state.",
    )
    p.add_argument(
        "path",
        nargs="?",
        help=f"the old module's database (default: <home>/{OLD_DB_RELATIVE})",
    )
    p.add_argument("--state", help="our state file (default: <home>/var/aws-wodle/state.db)")
    p.add_argument("--ossec-home", default=DEFAULT_HOME, help="default: %(default)s")
    p.add_argument(
        "--account",
        help="the 12-digit account id the old module read (default: the credentials' account)",
    )
    p.add_argument("--aws-profile", help="profile whose account is taken, without --account")
    p.add_argument("--sts-endpoint", help="STS endpoint URL, without --account")
    return p


# The files of a state: the database, SQLite's two companions, and our lock.
def _running_as_root() -> bool:
    return os.geteuid() == 0


def missing_directory(state_file: str) -> str | None:
    """Run as root, the state directory must exist already, made for the service's user:
    one that root made would keep the service out. The problem line, or None."""
    folder = Path(state_file).parent
    if not _running_as_root() or folder.is_dir():
        return None
    return (
        f"the state directory {folder} does not exist; create it for the service's user "
        f"first (install -d -o wazuh -g wazuh -m 0750 {folder}; the package does this), or "
        f"run this as that user: sudo -u wazuh aws-wodle import-state ..."
    )


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def main(argv: Sequence[str]) -> int:
    """Run ``import-state``: 0 done, 1 failed (one line on stderr), 2 bad arguments."""
    p = parser()
    args = p.parse_args(list(argv))
    if args.account is not None and _ACCOUNT.fullmatch(args.account) is None:
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: invalid --account '{args.account}': 12 digits", file=sys.stderr)
        return EXIT_ARGUMENTS
    old_db = args.path or str(Path(args.ossec_home) / OLD_DB_RELATIVE)
    state_file = args.state or state_path(args.ossec_home)
    try:
        rows, problems = read_old_rows(old_db)
    except StateError as exc:
        return _fail(str(exc))
    account = args.account
    if account is None:
        try:
            account = account_of_credentials(args.aws_profile, args.sts_endpoint)
        except AwsError as exc:
            return _fail(f"cannot find the account of the credentials ({exc}); pass --account")
    missing = missing_directory(state_file)
    if missing is not None:
        return _fail(missing)
    try:
        state = StateStore(state_file)
    except StateError as exc:
        return _fail(str(exc))
    try:
        result = import_rows(rows, problems, state, account)
    except (StateError, sqlite3.Error) as exc:
        return _fail(f"cannot write {state_file}: {exc}")
    finally:
        state.close()
    for problem in result.problems:
        print(f"warning: {old_db}: {problem}", file=sys.stderr)
    print(
        f"imported {result.imported} streams from {old_db} into {state_file} for account "
        f"{account}; {result.skipped} already there (kept), {result.bad} bad rows skipped"
    )
    if state.handed_over:
        folder = Path(state_file).parent
        print(
            f"{', '.join(map(str, state.handed_over))} now belong to "
            f"{user_name(folder.stat().st_uid)}, the owner of {folder}, so that the service "
            f"can open them"
        )
    return EXIT_OK
