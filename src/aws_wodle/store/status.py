"""The state file read from outside the daemon (``status``, ``import-state``): read only,
without its lock, as the state directory's owner; a file not yet opened by this version
is read as it is."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import StateError
from ..model import Cursor, GroupKey
from . import problems, seeds, streams
from .cursors import CURSOR_COLUMNS, CURSOR_WIDTH, decode
from .db import reading, refuse_directory
from .schema import ADDED_CURSOR_COLUMNS
from .seeds import ImportedStream
from .streams import StreamRecord


@dataclass(frozen=True)
class GroupRecord:
    """A stored group: its cursor, counters and when it was last read to its end."""

    key: GroupKey
    cursor: Cursor
    events: int = 0
    bytes: int = 0
    last_collected: float | None = None
    last_checked: float | None = None
    streams: int = 0


def _group_records(db: sqlite3.Connection) -> list[GroupRecord]:
    counts = streams.counts(db)
    # A file not yet opened by this version (status reads it as it is) lacks the columns
    # added since: they read as empty.
    present = {str(r[1]) for r in db.execute("PRAGMA table_info(cursors)")}
    columns = CURSOR_COLUMNS
    for name, _ in ADDED_CURSOR_COLUMNS:
        if name not in present:
            columns = columns.replace(f", {name}", f", NULL AS {name}")
    rows = db.execute(
        f"SELECT account, region, log_group, {columns}, events, bytes, last_collected, "
        "last_checked FROM cursors ORDER BY account, region, log_group"
    ).fetchall()
    out = []
    for row in rows:
        key = GroupKey(str(row[0]), str(row[1]), str(row[2]))
        end = 3 + CURSOR_WIDTH
        events, nbytes, last_collected, last_checked = row[end : end + 4]
        out.append(
            GroupRecord(
                key=key,
                cursor=decode(tuple(row[3:end])),
                events=int(events),
                bytes=int(nbytes),
                last_collected=None if last_collected is None else float(last_collected),
                last_checked=None if last_checked is None else float(last_checked),
                streams=counts.get((key.account, key.region, key.group), 0),
            )
        )
    return out


def read_imported(path: str | os.PathLike[str]) -> list[ImportedStream]:
    """The imported stream positions no collection has used yet, read as ``read_status``
    reads (a state file written before seeds existed has none)."""
    refuse_directory(Path(path))
    if not Path(path).exists():
        raise StateError(f"no state file at {path}")
    try:
        with reading(path) as db:
            return seeds.imported(db)
    except sqlite3.OperationalError:
        return []
    except sqlite3.DatabaseError as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc


def read_status(
    path: str | os.PathLike[str], *, streams: bool = False
) -> tuple[list[GroupRecord], list[StreamRecord] | None, list[tuple[float, str]]]:
    """Groups, streams (only when asked) and the last cycle's failures of a state file,
    read without disturbing a running daemon (and with read access only). Run as root, it
    reads as the state directory's owner, and follows no link there."""
    refuse_directory(Path(path))
    if not Path(path).exists():
        raise StateError(f"no state file at {path}")
    try:
        with reading(path) as db:
            groups = _group_records(db)
            records = _stream_records(db) if streams else None
            failures = problems.failures(db)
    except sqlite3.DatabaseError as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc
    return groups, records, failures


def read_push_problems(path: str | os.PathLike[str]) -> list[tuple[str, str, float, str]]:
    """The ``[[kinesis]]`` sources' standing problems in a state file: (stream, region,
    since, message); none in a state file written before they were recorded."""
    if not Path(path).exists():
        return []
    try:
        with reading(path) as db:
            return problems.push_problems(db)
    except sqlite3.DatabaseError:
        return []


# ``read_status`` has a keyword named ``streams``.
_stream_records = streams.records
