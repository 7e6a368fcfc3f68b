"""Checkpoints per (account, region, group, stream) in SQLite: the only module that speaks SQL."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import StateError, StateLocked

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    stream TEXT NOT NULL,
    covered_from INTEGER NOT NULL,
    last_ts INTEGER,
    boundary TEXT NOT NULL DEFAULT '[]',
    token TEXT,
    token_start INTEGER,
    token_saved REAL,
    last_ingestion INTEGER,
    gap_from INTEGER,
    gap_until INTEGER,
    gap_boundary TEXT NOT NULL DEFAULT '[]',
    checked_ingestion INTEGER,
    last_read REAL,
    reported_last_event INTEGER,
    events INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    last_collected REAL,
    PRIMARY KEY (account, region, log_group, stream)
);
CREATE TABLE IF NOT EXISTS groups (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    default_start INTEGER NOT NULL,
    PRIMARY KEY (account, region, log_group)
);
CREATE TABLE IF NOT EXISTS filter_denied (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    PRIMARY KEY (account, region, log_group)
);
CREATE TABLE IF NOT EXISTS identities (
    credentials TEXT PRIMARY KEY,
    account TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StreamKey:
    """Where a stream lives: account, region, log group and stream name."""

    account: str
    region: str
    group: str
    stream: str


@dataclass(frozen=True)
class Position:
    """Where to resume a stream, and what was forwarded at its last millisecond.

    ``covered_from``: every event at or after this time (ms) was collected or is being
    collected; ``last_ts``: the newest event timestamp forwarded; ``boundary``: digests of
    the events forwarded with timestamp ``last_ts`` (with repeats), so that a re-read from
    ``last_ts`` skips exactly those; ``token``: GetLogEvents' forward token, valid only with
    the ``token_start`` it was obtained with, saved at ``token_saved`` (epoch seconds).
    A backfill in progress (``only_logs_after`` moved earlier) still has to read from
    ``gap_from`` up to ``gap_until`` (exclusive), skipping ``gap_boundary`` at ``gap_from``.
    ``checked_ingestion`` is the stream's ``lastIngestionTime`` as DescribeLogStreams gave
    it when the stream was last read to its end, at ``last_read`` (epoch seconds).
    """

    covered_from: int
    last_ts: int | None = None
    boundary: tuple[str, ...] = ()
    token: str | None = None
    token_start: int | None = None
    token_saved: float | None = None
    last_ingestion: int | None = None
    gap_from: int | None = None
    gap_until: int | None = None
    gap_boundary: tuple[str, ...] = ()
    checked_ingestion: int | None = None
    last_read: float | None = None


@dataclass(frozen=True)
class StreamRecord:
    """A stored stream: its key, position and counters."""

    key: StreamKey
    position: Position
    events: int = 0
    bytes: int = 0
    last_collected: float | None = None
    reported_last_event: int | None = None

    @property
    def lag_ms(self) -> int | None:
        """How far the newest event forwarded is behind the newest CloudWatch reported."""
        reported = self.reported_last_event
        if reported is None:
            return None
        newest = self.position.last_ts if self.position.last_ts is not None else reported
        return max(0, reported - newest)


class StateStore:
    """A SQLite state file, safe to share between threads of one process.

    Writes are committed at once (WAL, synchronous=FULL), so a position on disk never runs
    ahead of what the caller has already forwarded. An exclusive lock file beside the
    database keeps a second daemon away.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {self.path.parent}: {exc}"
            ) from exc
        if lock:
            self._lock_fd = _take_lock(self.path.with_name(self.path.name + ".lock"))
        try:
            self._db = self._open_checked()
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise StateError(f"state file {self.path} is unusable: {exc}") from exc
        except StateError:
            self._release_lock()
            raise

    def _open_checked(self) -> sqlite3.Connection:
        """Open the database; a corrupt, truncated or newer file is moved aside first."""
        try:
            return self._connect()
        except (sqlite3.DatabaseError, _NewerSchema) as exc:
            aside = self._move_aside()
            log.error(
                "state file %s cannot be used (%s); moved aside to %s. Collection starts "
                "again from each service's only_logs_after (or today), not from the beginning",
                self.path,
                exc,
                aside,
            )
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before save() returns, so a position that says
            # "forwarded" survives a power loss.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            _check_version(db, self.path)
            _add_missing_columns(db)
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.unusable-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                source.replace(Path(str(aside) + suffix))
        return aside

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # streams -----------------------------------------------------------------

    def get(self, key: StreamKey) -> StreamRecord | None:
        """The stored record of one stream, or None when it was never collected."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM streams WHERE account = ? AND region = ? "
                "AND log_group = ? AND stream = ?",
                (key.account, key.region, key.group, key.stream),
            ).fetchone()
        return None if row is None else _record(row)

    def group_records(self, account: str, region: str, group: str) -> dict[str, StreamRecord]:
        """Every stored stream of one group, by stream name."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM streams WHERE account = ? AND region = ? "
                "AND log_group = ?",
                (account, region, group),
            ).fetchall()
        return {r[3]: _record(r) for r in rows}

    def save(self, key: StreamKey, position: Position, *, events: int, nbytes: int) -> None:
        """Store a stream's new position and add to its counters, committed before returning."""
        self.save_many([(key, position, events, nbytes)])

    def save_many(self, rows: list[tuple[StreamKey, Position, int, int]]) -> None:
        """Store several streams' positions (key, position, events, bytes) in one commit."""
        now = time.time()
        values = [
            (
                key.account,
                key.region,
                key.group,
                key.stream,
                p.covered_from,
                p.last_ts,
                json.dumps(list(p.boundary)),
                p.token,
                p.token_start,
                p.token_saved,
                p.last_ingestion,
                p.gap_from,
                p.gap_until,
                json.dumps(list(p.gap_boundary)),
                p.checked_ingestion,
                p.last_read,
                now,
                events,
                nbytes,
            )
            for key, p, events, nbytes in rows
        ]
        self._execute_many(_UPSERT, values)

    def _execute_many(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Run ``sql`` once per row, all in one transaction, committed before returning."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def note_reported(self, account: str, region: str, group: str, last: dict[str, int]) -> None:
        """Record each stream's lastEventTimestamp as DescribeLogStreams reported it."""
        self._execute_many(
            "UPDATE streams SET reported_last_event = ? WHERE account = ? "
            "AND region = ? AND log_group = ? AND stream = ?",
            [(ts, account, region, group, name) for name, ts in last.items()],
        )

    def group_lags(self) -> list[tuple[str, str, str, int]]:
        """(account, region, group, lag in ms): the largest lag among each group's streams."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account, region, log_group, "
                "MAX(MAX(0, reported_last_event - COALESCE(last_ts, reported_last_event))) "
                "FROM streams WHERE reported_last_event IS NOT NULL "
                "GROUP BY account, region, log_group ORDER BY account, region, log_group"
            ).fetchall()
        return [(str(a), str(r), str(g), int(lag)) for a, r, g, lag in rows]

    def forget(self, key: StreamKey) -> None:
        """Drop a stream's row (the stream is gone)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM streams WHERE account = ? AND region = ? AND log_group = ? "
                "AND stream = ?",
                (key.account, key.region, key.group, key.stream),
            )

    def all_records(self) -> Iterator[StreamRecord]:
        """Every stored stream, ordered by account, region, group and stream."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM streams ORDER BY account, region, log_group, stream"
            ).fetchall()
        for row in rows:
            yield _record(row)

    # groups and identities ---------------------------------------------------

    def group_default_start(self, account: str, region: str, group: str, proposed: int) -> int:
        """The start time of new streams in a group when no only_logs_after is configured.

        The first call for a group stores ``proposed`` (today 00:00 UTC); later calls return
        the stored value, so a stream created tomorrow is read from its first event.
        """
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO groups (account, region, log_group, default_start) "
                "VALUES (?, ?, ?, ?)",
                (account, region, group, proposed),
            )
            row = self._db.execute(
                "SELECT default_start FROM groups WHERE account = ? AND region = ? "
                "AND log_group = ?",
                (account, region, group),
            ).fetchone()
        return int(row[0])

    def filter_denied(self, account: str, region: str, group: str) -> bool:
        """Whether FilterLogEvents was refused for this group (per-stream reads then)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM filter_denied WHERE account = ? AND region = ? AND log_group = ?",
                (account, region, group),
            ).fetchone()
        return row is not None

    def deny_filter(self, account: str, region: str, group: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO filter_denied (account, region, log_group) VALUES (?, ?, ?)",
                (account, region, group),
            )

    def remembered_account(self, credentials: str) -> str | None:
        """The account id last resolved for a credentials label, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT account FROM identities WHERE credentials = ?", (credentials,)
            ).fetchone()
        return None if row is None else str(row[0])

    def remember_account(self, credentials: str, account: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO identities (credentials, account) VALUES (?, ?) "
                "ON CONFLICT (credentials) DO UPDATE SET account = excluded.account",
                (credentials, account),
            )


# Columns added to `streams` after its first form; older files get them on open.
_LATER_COLUMNS = {
    "gap_from": "INTEGER",
    "gap_until": "INTEGER",
    "gap_boundary": "TEXT NOT NULL DEFAULT '[]'",
    "checked_ingestion": "INTEGER",
    "last_read": "REAL",
    "reported_last_event": "INTEGER",
}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    present = {str(row[1]) for row in db.execute("PRAGMA table_info(streams)")}
    for name, declaration in _LATER_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE streams ADD COLUMN {name} {declaration}")


class _NewerSchema(Exception):
    """The state file was written by a newer aws-wodle."""


def _check_version(db: sqlite3.Connection, path: Path) -> None:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
    elif not str(row[0]).isdigit() or int(row[0]) > SCHEMA_VERSION:
        raise _NewerSchema(
            f"{path} has schema version {row[0]}, newer than this aws-wodle's {SCHEMA_VERSION}"
        )


_UPSERT = (
    "INSERT INTO streams (account, region, log_group, stream, covered_from, last_ts, "
    "boundary, token, token_start, token_saved, last_ingestion, gap_from, gap_until, "
    "gap_boundary, checked_ingestion, last_read, last_collected, events, bytes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (account, region, log_group, stream) DO UPDATE SET "
    "covered_from = excluded.covered_from, last_ts = excluded.last_ts, "
    "boundary = excluded.boundary, token = excluded.token, "
    "token_start = excluded.token_start, token_saved = excluded.token_saved, "
    "last_ingestion = excluded.last_ingestion, gap_from = excluded.gap_from, "
    "gap_until = excluded.gap_until, gap_boundary = excluded.gap_boundary, "
    "checked_ingestion = excluded.checked_ingestion, last_read = excluded.last_read, "
    "last_collected = excluded.last_collected, "
    "events = streams.events + excluded.events, bytes = streams.bytes + excluded.bytes"
)

_COLUMNS = (
    "account, region, log_group, stream, covered_from, last_ts, boundary, token, token_start, "
    "token_saved, last_ingestion, gap_from, gap_until, gap_boundary, checked_ingestion, "
    "last_read, events, bytes, last_collected, reported_last_event"
)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _record(row: tuple[object, ...]) -> StreamRecord:
    (account, region, group, stream, covered, last_ts, boundary, token, token_start) = row[:9]
    token_saved, last_ingestion, gap_from, gap_until, gap_boundary = row[9:14]
    checked_ingestion, last_read, events, nbytes, last_collected, reported = row[14:]
    position = Position(
        covered_from=int(str(covered)),
        last_ts=None if last_ts is None else int(str(last_ts)),
        boundary=tuple(json.loads(str(boundary))),
        token=None if token is None else str(token),
        token_start=None if token_start is None else int(str(token_start)),
        token_saved=None if token_saved is None else float(str(token_saved)),
        last_ingestion=_int(last_ingestion),
        gap_from=_int(gap_from),
        gap_until=_int(gap_until),
        gap_boundary=tuple(json.loads(str(gap_boundary))),
        checked_ingestion=_int(checked_ingestion),
        last_read=None if last_read is None else float(str(last_read)),
    )
    return StreamRecord(
        key=StreamKey(str(account), str(region), str(group), str(stream)),
        position=position,
        events=int(str(events)),
        bytes=int(str(nbytes)),
        last_collected=None if last_collected is None else float(str(last_collected)),
        reported_last_event=_int(reported),
    )


def _take_lock(lock_path: Path) -> int:
    """Hold an exclusive lock on ``lock_path``; name the holder's pid when it is taken."""
    import fcntl  # noqa: PLC0415 - POSIX only, like the daemon itself

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StateLocked(
            f"state file {lock_path.with_suffix('')} is in use by another aws-wodle "
            f"(pid {holder}); only one collector may use a state file"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a state file for reading only (``status``), without taking the daemon's lock."""
    if not Path(path).exists():
        raise StateError(f"no state file at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def read_records(path: str | os.PathLike[str]) -> list[StreamRecord]:
    """Every stream of a state file, read without disturbing a running daemon."""
    try:
        db = open_readonly(path)
        try:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM streams ORDER BY account, region, log_group, stream"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc
    return [_record(r) for r in rows]
