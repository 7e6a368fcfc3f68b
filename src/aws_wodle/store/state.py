"""Checkpoints per (account, region, group, stream) in SQLite: the only module that speaks SQL."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import redact
from ..errors import StateError, StateLocked
from ..model import Boundary, Cursor, Cycle, Gap, GroupInfo, GroupKey, Listing, Sent
from ..paths import STATE_RELATIVE
from . import statedir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# SQLite's page cache per connection (KiB).
CACHE_KIB = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    covered_from INTEGER NOT NULL,
    fence INTEGER,
    newest_ts INTEGER,
    newest_ingestion INTEGER,
    cycle_lo INTEGER,
    cycle_fence INTEGER,
    mark_ts INTEGER,
    mark TEXT NOT NULL DEFAULT '[]',
    gap_start INTEGER,
    gap_until INTEGER,
    gap_fence INTEGER,
    gap_mark_ts INTEGER,
    gap_mark TEXT NOT NULL DEFAULT '[]',
    tail_lo INTEGER,
    tail_until INTEGER,
    held INTEGER NOT NULL DEFAULT 0,
    late_fence INTEGER,
    cycle_sweep INTEGER,
    events INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    last_collected REAL,
    last_checked REAL,
    PRIMARY KEY (account, region, log_group)
);
CREATE TABLE IF NOT EXISTS streams (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    stream TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    newest_ts INTEGER,
    newest_ingestion INTEGER,
    last_collected REAL,
    PRIMARY KEY (account, region, log_group, stream)
);
CREATE TABLE IF NOT EXISTS stream_marks (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    stream TEXT NOT NULL,
    mark_ts INTEGER,
    mark TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (account, region, log_group, stream)
);
CREATE TABLE IF NOT EXISTS seeds (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    stream TEXT NOT NULL,
    covered_from INTEGER NOT NULL,
    last_ts INTEGER,
    boundary TEXT NOT NULL DEFAULT '[]',
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
    account TEXT NOT NULL,
    partition TEXT NOT NULL DEFAULT 'aws',
    asked REAL NOT NULL DEFAULT 0,
    key_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS absent (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    next_check REAL NOT NULL,
    PRIMARY KEY (account, region, log_group)
);
CREATE TABLE IF NOT EXISTS listings (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    prefix TEXT NOT NULL,
    listed_at REAL NOT NULL,
    first_listed_at REAL NOT NULL,
    groups TEXT NOT NULL DEFAULT '[]',
    new TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (account, region, prefix)
);
CREATE TABLE IF NOT EXISTS failures (
    at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS push_problems (
    stream TEXT NOT NULL,
    region TEXT NOT NULL,
    at REAL NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (stream, region)
);
"""


@dataclass(frozen=True)
class Identity:
    """Who a set of credentials is, as STS said (or an assumed role's ARN says)."""

    account: str
    partition: str
    asked: float  # epoch seconds
    key_id: str  # the access key id asked with; '' when unknown


@dataclass(frozen=True)
class StreamKey:
    """Where a stream lives: account, region, log group and stream name."""

    account: str
    region: str
    group: str
    stream: str

    @property
    def group_key(self) -> GroupKey:
        return GroupKey(self.account, self.region, self.group)


@dataclass(frozen=True)
class StreamRecord:
    """What was sent of one stream: counts and the newest times."""

    key: StreamKey
    events: int = 0
    bytes: int = 0
    newest_ts: int | None = None
    newest_ingestion: int | None = None
    last_collected: float | None = None


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


def _refuse_directory(path: Path) -> None:
    """A state path naming a directory (not followed through a link) is a mistake of the
    command line: say so in one line, naming the file it probably meant."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise StateError(
            f"state file {path} is a directory: --state names the state file itself "
            f"(e.g. {path / Path(STATE_RELATIVE).name})"
        )


class StateStore:
    """A SQLite state file, safe to share between threads of one process.

    Writes are committed at once (WAL, synchronous=FULL), so a position on disk never runs
    ahead of what the caller has already forwarded. An exclusive lock file beside the
    database keeps a second daemon away.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True) -> None:
        self.path = Path(path)
        _refuse_directory(self.path)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        try:
            statedir.make_directory(self.path.parent)
        except PermissionError as exc:
            raise StateError(_refusal(self.path.parent, "cannot be created", exc)) from exc
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {self.path.parent}: {exc}"
            ) from exc
        with statedir.entered(self.path) as (owner, handed):
            self._owner = owner
            self.handed_over = handed
            _check_writable(self.path)
            if lock:
                self._lock_fd = _take_lock(self.path.with_name(self.path.name + ".lock"), owner)
            try:
                statedir.prepare_database(self.path, owner)
                self._db = self._open_checked()
            except sqlite3.DatabaseError as exc:
                self._release_lock()
                raise StateError(f"state file {self.path} is unusable: {exc}") from exc
            except BaseException:
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
        statedir.prepare_database(self.path, self._owner)
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
            # A page's rows touch a few hundred B-tree pages at most; SQLite's default
            # cache (2 MB) would grow with the number of streams for no gain.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            _refuse_newer(db, self.path)
            _upgrade_v1(db)
            db.executescript(_SCHEMA)
            _add_cursor_columns(db)
            _take_seeds_v1(db)
            _write_version(db)
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

    def _transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``work`` in one transaction, committed (on disk) before returning."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else tuple(row)

    # group cursors (the engine's Checkpoints) -------------------------------------------

    def cursor(self, key: GroupKey) -> Cursor | None:
        """The stored cursor of a group, or None when it was never collected."""
        row = self._one(f"SELECT {_CURSOR_COLUMNS} FROM cursors WHERE {_GROUP_WHERE}", _gk(key))
        return None if row is None else _cursor(row)

    def save(self, key: GroupKey, cursor: Cursor, sent: Mapping[str, Sent]) -> None:
        """Store a group's cursor and add ``sent`` to its streams' counters, in one commit."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            _upsert_cursor(db, key, cursor, sent, now)

        self._transaction(work)

    def finish(self, key: GroupKey, cursor: Cursor) -> None:
        """Store the cursor of a completed read; per-stream seeds and marks are done with."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            _upsert_cursor(db, key, cursor, {}, now)
            db.execute(
                f"UPDATE cursors SET last_checked = ? WHERE {_GROUP_WHERE}", (now, *_gk(key))
            )
            db.execute(f"DELETE FROM seeds WHERE {_GROUP_WHERE}", _gk(key))
            db.execute(f"DELETE FROM stream_marks WHERE {_GROUP_WHERE}", _gk(key))

        self._transaction(work)

    def seeds(self, key: GroupKey) -> dict[str, Boundary]:
        """Per-stream positions kept from before group cursors, by stream name."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT stream, last_ts, boundary FROM seeds WHERE {_GROUP_WHERE} "
                "AND last_ts IS NOT NULL",
                _gk(key),
            ).fetchall()
        return {str(name): Boundary(int(ts), tuple(json.loads(b))) for name, ts, b in rows}

    def stream_marks(self, key: GroupKey) -> dict[str, Boundary]:
        """The progress of each stream in a per-stream read under way."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT stream, mark_ts, mark FROM stream_marks WHERE {_GROUP_WHERE}", _gk(key)
            ).fetchall()
        return {str(name): _boundary(ts, mark) for name, ts, mark in rows}

    def save_stream_mark(
        self, key: GroupKey, stream: str, mark: Boundary, cursor: Cursor, sent: Mapping[str, Sent]
    ) -> None:
        """Store one stream's progress in a per-stream read, the cursor and the counters."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            _upsert_cursor(db, key, cursor, sent, now)
            db.execute(
                "INSERT INTO stream_marks (account, region, log_group, stream, mark_ts, mark) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, log_group, stream) "
                "DO UPDATE SET mark_ts = excluded.mark_ts, mark = excluded.mark",
                (*_gk(key), stream, mark.ts, json.dumps(list(mark.digests))),
            )

        self._transaction(work)

    def forget_stream(self, key: GroupKey, stream: str) -> None:
        """Drop what is kept of a deleted stream."""

        def work(db: sqlite3.Connection) -> None:
            for table in ("streams", "seeds", "stream_marks"):
                db.execute(
                    f"DELETE FROM {table} WHERE {_GROUP_WHERE} AND stream = ?", (*_gk(key), stream)
                )

        self._transaction(work)

    # per-stream seeds (import-state) ------------------------------------------------

    def has_stream(self, key: StreamKey) -> bool:
        """Whether anything is kept of a stream: counters, a seed, or its group's cursor."""
        where = (key.account, key.region, key.group, key.stream)
        for table in ("streams", "seeds"):
            if self._one(f"SELECT 1 FROM {table} WHERE {_GROUP_WHERE} AND stream = ?", where):
                return True
        return self.cursor(key.group_key) is not None

    def save_seeds(self, rows: Sequence[tuple[StreamKey, int, Boundary]]) -> None:
        """Store per-stream positions (key, covered_from, boundary) for groups' first reads."""

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR REPLACE INTO seeds (account, region, log_group, stream, covered_from, "
                "last_ts, boundary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        k.account,
                        k.region,
                        k.group,
                        k.stream,
                        covered,
                        b.ts,
                        json.dumps(list(b.digests)),
                    )
                    for k, covered, b in rows
                ],
            )

        self._transaction(work)

    def seed(self, key: StreamKey) -> tuple[int, Boundary] | None:
        """One stream's seed: its covered_from and boundary."""
        row = self._one(
            f"SELECT covered_from, last_ts, boundary FROM seeds WHERE {_GROUP_WHERE} "
            "AND stream = ?",
            (key.account, key.region, key.group, key.stream),
        )
        if row is None:
            return None
        covered, ts, digests = row
        return int(str(covered)), _boundary(ts, digests)

    # reading back -------------------------------------------------------------------

    def all_records(self) -> list[StreamRecord]:
        """Every stream's counters, ordered by account, region, group and stream."""
        with self._lock:
            return _stream_records(self._db)

    def forget_groups(self, account: str, groups: Sequence[str], regions: Sequence[str]) -> int:
        """Forget the cursors and counters of these groups (in ``regions``, or all), so that
        they are read again from the start; returns how many groups were forgotten."""
        forgotten = 0

        def work(db: sqlite3.Connection) -> None:
            nonlocal forgotten
            for group in groups:
                where = "account = ? AND log_group = ?"
                args: list[object] = [account, group]
                if regions:
                    where += f" AND region IN ({', '.join('?' for _ in regions)})"
                    args += list(regions)
                forgotten += db.execute(f"DELETE FROM cursors WHERE {where}", args).rowcount
                for table in ("streams", "seeds", "stream_marks", "groups"):
                    db.execute(f"DELETE FROM {table} WHERE {where}", args)

        self._transaction(work)
        return forgotten

    def group_lags(self, now_ms: int) -> list[tuple[str, str, str, int]]:
        """(account, region, group, ms): how far each group's collection is behind now."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account, region, log_group, fence FROM cursors WHERE fence IS NOT NULL "
                "ORDER BY account, region, log_group"
            ).fetchall()
        return [(str(a), str(r), str(g), max(0, now_ms - int(f))) for a, r, g, f in rows]

    def group_held(self) -> list[tuple[str, str, str, int]]:
        """(account, region, group, events): what each group's last completed read left
        for the settle margin (the next read sends it)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account, region, log_group, held FROM cursors WHERE fence IS NOT NULL "
                "ORDER BY account, region, log_group"
            ).fetchall()
        return [(str(a), str(r), str(g), int(h or 0)) for a, r, g, h in rows]

    # groups, identities, absent groups, failures ----------------------------------------

    def group_default_start(self, account: str, region: str, group: str, proposed: int) -> int:
        """The start time of a group when no only_logs_after is configured.

        The first call for a group stores ``proposed`` (today 00:00 UTC); later calls return
        the stored value.
        """
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO groups (account, region, log_group, default_start) "
                "VALUES (?, ?, ?, ?)",
                (account, region, group, proposed),
            )
            row = self._db.execute(
                f"SELECT default_start FROM groups WHERE {_GROUP_WHERE}", (account, region, group)
            ).fetchone()
        return int(row[0])

    def filter_denied(self, key: GroupKey) -> bool:
        """Whether FilterLogEvents was refused for this group (per-stream reads then)."""
        return self._one(f"SELECT 1 FROM filter_denied WHERE {_GROUP_WHERE}", _gk(key)) is not None

    def deny_filter(self, key: GroupKey) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO filter_denied (account, region, log_group) VALUES (?, ?, ?)",
                _gk(key),
            )

    def remembered_identity(self, credentials: str) -> Identity | None:
        """The account and partition last asked for a credentials label, when, and the
        access key id they were asked with ('' when unknown)."""
        row = self._one(
            "SELECT account, partition, asked, key_id FROM identities WHERE credentials = ?",
            (credentials,),
        )
        if row is None:
            return None
        return Identity(str(row[0]), str(row[1]), float(str(row[2])), str(row[3]))

    def remembered_account(self, credentials: str) -> str | None:
        """The account id last resolved for a credentials label, if any."""
        known = self.remembered_identity(credentials)
        return None if known is None else known.account

    def remember_account(
        self,
        credentials: str,
        account: str,
        partition: str = "aws",
        asked: float | None = None,
        key_id: str = "",
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO identities (credentials, account, partition, asked, key_id) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (credentials) DO UPDATE SET "
                "account = excluded.account, partition = excluded.partition, "
                "asked = excluded.asked, key_id = excluded.key_id",
                (credentials, account, partition, time.time() if asked is None else asked, key_id),
            )

    def absent_until(self, key: GroupKey) -> float | None:
        """When a group missing from a region is to be looked for again (epoch s), or None."""
        row = self._one(f"SELECT next_check FROM absent WHERE {_GROUP_WHERE}", _gk(key))
        return None if row is None else float(str(row[0]))

    def mark_absent(self, key: GroupKey, next_check: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO absent (account, region, log_group, next_check) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, region, log_group) DO UPDATE SET "
                "next_check = excluded.next_check",
                (*_gk(key), next_check),
            )

    def clear_absent(self, key: GroupKey) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM absent WHERE {_GROUP_WHERE}", _gk(key))

    def listing(self, account: str, region: str, prefix: str) -> Listing | None:
        """The groups a prefix selected when last listed in an account and region."""
        row = self._one(
            "SELECT listed_at, first_listed_at, groups, new FROM listings "
            "WHERE account = ? AND region = ? AND prefix = ?",
            (account, region, prefix),
        )
        if row is None:
            return None
        listed_at, first, groups, new = row
        infos = tuple(
            GroupInfo(str(name), None if created is None else int(created))
            for name, created in json.loads(str(groups))
        )
        return Listing(
            float(str(listed_at)), float(str(first)), infos, frozenset(json.loads(str(new)))
        )

    def save_listing(self, account: str, region: str, prefix: str, listing: Listing) -> None:
        """Keep a prefix's listing (replacing the one before)."""
        groups = json.dumps([[info.name, info.creation_time] for info in listing.groups])
        with self._lock:
            self._db.execute(
                "INSERT INTO listings (account, region, prefix, listed_at, first_listed_at, "
                "groups, new) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account, region, prefix) DO UPDATE SET "
                "listed_at = excluded.listed_at, first_listed_at = excluded.first_listed_at, "
                "groups = excluded.groups, new = excluded.new",
                (
                    account,
                    region,
                    prefix,
                    listing.listed_at,
                    listing.first_listed_at,
                    groups,
                    json.dumps(sorted(listing.new)),
                ),
            )

    def record_failures(self, messages: Sequence[str]) -> None:
        """Keep the last cycle's failures (for ``status``), replacing the cycle before's;
        masked, as they may quote an answer that quotes a credential."""
        now = time.time()
        masked = [(now, redact.mask(m)) for m in messages]

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM failures")
            db.executemany("INSERT INTO failures (at, message) VALUES (?, ?)", masked)

        self._transaction(work)

    def record_push_problem(self, stream: str, region: str, message: str | None) -> None:
        """A ``[[kinesis]]`` source's standing problem (for ``status``); None clears it."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM push_problems WHERE stream = ? AND region = ?", (stream, region)
            )
            if message is not None:
                db.execute(
                    "INSERT INTO push_problems (stream, region, at, message) VALUES (?, ?, ?, ?)",
                    (stream, region, time.time(), redact.mask(message)),
                )

        self._transaction(work)


@contextlib.contextmanager
def _reading(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """The state file opened for reading only, as its directory's owner when run as root,
    following no link there (``statedir``)."""
    with statedir.entered(Path(path)):
        db = open_readonly(path)
        try:
            yield db
        finally:
            db.close()


def read_push_problems(path: str | os.PathLike[str]) -> list[tuple[str, str, float, str]]:
    """The ``[[kinesis]]`` sources' standing problems in a state file: (stream, region,
    since, message); none in a state file written before they were recorded."""
    if not Path(path).exists():
        return []
    try:
        with _reading(path) as db:
            rows = db.execute(
                "SELECT stream, region, at, message FROM push_problems ORDER BY stream, region"
            ).fetchall()
    except sqlite3.DatabaseError:
        return []
    return [(str(a), str(b), float(c), str(d)) for a, b, c, d in rows]


_GROUP_WHERE = "account = ? AND region = ? AND log_group = ?"
_CURSOR_COLUMNS = (
    "covered_from, fence, newest_ts, newest_ingestion, cycle_lo, cycle_fence, mark_ts, mark, "
    "gap_start, gap_until, gap_fence, gap_mark_ts, gap_mark, tail_lo, tail_until, held, "
    "late_fence, cycle_sweep"
)
_CURSOR_WIDTH = _CURSOR_COLUMNS.count(",") + 1
# Columns added to the cursors table since schema version 2 (an older aws-wodle ignores
# them, so the version is unchanged), with their definitions.
_ADDED_CURSOR_COLUMNS = (
    ("tail_lo", "INTEGER"),
    ("tail_until", "INTEGER"),
    ("held", "INTEGER NOT NULL DEFAULT 0"),
    # Reads split by lateness: the late events' fence, and whether the read under way is a
    # sweep (empty: it is, as every read was before the split).
    ("late_fence", "INTEGER"),
    ("cycle_sweep", "INTEGER"),
)


def _gk(key: GroupKey) -> tuple[str, str, str]:
    return key.account, key.region, key.group


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _boundary(ts: object, digests: object) -> Boundary:
    return Boundary(_int(ts), tuple(json.loads(str(digests))))


def _cursor(row: tuple[object, ...]) -> Cursor:
    covered, fence, newest_ts, newest_in, cycle_lo, cycle_fence, mark_ts, mark = row[:8]
    gap_start, gap_until, gap_fence, gap_mark_ts, gap_mark = row[8:13]
    tail_lo, tail_until, held, late_fence, cycle_sweep = row[13:18]
    cycle = None
    if cycle_lo is not None and cycle_fence is not None:
        cycle = Cycle(
            int(str(cycle_lo)),
            int(str(cycle_fence)),
            _boundary(mark_ts, mark),
            sweep=_int(cycle_sweep) != 0,
        )
    gap = None
    if gap_start is not None and gap_until is not None and gap_fence is not None:
        gap = Gap(
            int(str(gap_start)),
            int(str(gap_until)),
            int(str(gap_fence)),
            _boundary(gap_mark_ts, gap_mark),
        )
    return Cursor(
        covered_from=int(str(covered)),
        fence=_int(fence),
        newest_ts=_int(newest_ts),
        newest_ingestion=_int(newest_in),
        cycle=cycle,
        gap=gap,
        tail_lo=_int(tail_lo),
        tail_until=_int(tail_until),
        held=_int(held) or 0,
        late_fence=_int(late_fence),
    )


def _upsert_cursor(
    db: sqlite3.Connection, key: GroupKey, c: Cursor, sent: Mapping[str, Sent], now: float
) -> None:
    cycle_mark = c.cycle.mark if c.cycle else Boundary()
    gap_mark = c.gap.mark if c.gap else Boundary()
    events = sum(s.events for s in sent.values())
    nbytes = sum(s.bytes for s in sent.values())
    db.execute(
        "INSERT INTO cursors (account, region, log_group, covered_from, fence, newest_ts, "
        "newest_ingestion, cycle_lo, cycle_fence, mark_ts, mark, gap_start, gap_until, "
        "gap_fence, gap_mark_ts, gap_mark, tail_lo, tail_until, held, late_fence, "
        "cycle_sweep, events, bytes, last_collected) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account, region, log_group) DO UPDATE SET "
        "covered_from = excluded.covered_from, fence = excluded.fence, "
        "newest_ts = excluded.newest_ts, newest_ingestion = excluded.newest_ingestion, "
        "cycle_lo = excluded.cycle_lo, cycle_fence = excluded.cycle_fence, "
        "mark_ts = excluded.mark_ts, mark = excluded.mark, gap_start = excluded.gap_start, "
        "gap_until = excluded.gap_until, gap_fence = excluded.gap_fence, "
        "gap_mark_ts = excluded.gap_mark_ts, gap_mark = excluded.gap_mark, "
        "tail_lo = excluded.tail_lo, tail_until = excluded.tail_until, held = excluded.held, "
        "late_fence = excluded.late_fence, cycle_sweep = excluded.cycle_sweep, "
        "events = cursors.events + excluded.events, bytes = cursors.bytes + excluded.bytes, "
        "last_collected = CASE WHEN excluded.events > 0 THEN excluded.last_collected "
        "ELSE cursors.last_collected END",
        (
            *_gk(key),
            c.covered_from,
            c.fence,
            c.newest_ts,
            c.newest_ingestion,
            c.cycle.lo if c.cycle else None,
            c.cycle.fence if c.cycle else None,
            cycle_mark.ts,
            json.dumps(list(cycle_mark.digests)),
            c.gap.start if c.gap else None,
            c.gap.until if c.gap else None,
            c.gap.fence if c.gap else None,
            gap_mark.ts,
            json.dumps(list(gap_mark.digests)),
            c.tail_lo,
            c.tail_until,
            c.held,
            c.late_fence,
            None if c.cycle is None else int(c.cycle.sweep),
            events,
            nbytes,
            now if events else None,
        ),
    )
    if sent:
        db.executemany(
            "INSERT INTO streams (account, region, log_group, stream, events, bytes, newest_ts, "
            "newest_ingestion, last_collected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, region, log_group, stream) DO UPDATE SET "
            "events = streams.events + excluded.events, bytes = streams.bytes + excluded.bytes, "
            "newest_ts = MAX(COALESCE(streams.newest_ts, 0), excluded.newest_ts), "
            "newest_ingestion = MAX(COALESCE(streams.newest_ingestion, 0), "
            "excluded.newest_ingestion), last_collected = excluded.last_collected",
            [
                (*_gk(key), name, s.events, s.bytes, s.newest_ts, s.newest_ingestion, now)
                for name, s in sent.items()
            ],
        )


def _stream_records(db: sqlite3.Connection) -> list[StreamRecord]:
    rows = db.execute(
        "SELECT account, region, log_group, stream, events, bytes, newest_ts, newest_ingestion, "
        "last_collected FROM streams ORDER BY account, region, log_group, stream"
    ).fetchall()
    return [
        StreamRecord(
            key=StreamKey(str(a), str(r), str(g), str(s)),
            events=int(e),
            bytes=int(b),
            newest_ts=_int(ts),
            newest_ingestion=_int(ing),
            last_collected=None if last is None else float(last),
        )
        for a, r, g, s, e, b, ts, ing, last in rows
    ]


def _group_records(db: sqlite3.Connection) -> list[GroupRecord]:
    counts = {
        (str(a), str(r), str(g)): int(n)
        for a, r, g, n in db.execute(
            "SELECT account, region, log_group, COUNT(*) FROM streams "
            "GROUP BY account, region, log_group"
        )
    }
    # A file not yet opened by this version (status reads it as it is) lacks the columns
    # added since: they read as empty.
    present = {str(r[1]) for r in db.execute("PRAGMA table_info(cursors)")}
    columns = _CURSOR_COLUMNS
    for name, _ in _ADDED_CURSOR_COLUMNS:
        if name not in present:
            columns = columns.replace(f", {name}", f", NULL AS {name}")
    rows = db.execute(
        f"SELECT account, region, log_group, {columns}, events, bytes, last_collected, "
        "last_checked FROM cursors ORDER BY account, region, log_group"
    ).fetchall()
    out = []
    for row in rows:
        key = GroupKey(str(row[0]), str(row[1]), str(row[2]))
        end = 3 + _CURSOR_WIDTH
        events, nbytes, last_collected, last_checked = row[end : end + 4]
        out.append(
            GroupRecord(
                key=key,
                cursor=_cursor(tuple(row[3:end])),
                events=int(events),
                bytes=int(nbytes),
                last_collected=None if last_collected is None else float(last_collected),
                last_checked=None if last_checked is None else float(last_checked),
                streams=counts.get((key.account, key.region, key.group), 0),
            )
        )
    return out


class _NewerSchema(Exception):
    """The state file was written by a newer aws-wodle."""


def _refuse_newer(db: sqlite3.Connection, path: Path) -> None:
    """A file written by a newer aws-wodle is not ours to change."""
    tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        return
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is not None and (not str(row[0]).isdigit() or int(row[0]) > SCHEMA_VERSION):
        raise _NewerSchema(
            f"{path} has schema version {row[0]}, newer than this aws-wodle's {SCHEMA_VERSION}"
        )


def _write_version(db: sqlite3.Connection) -> None:
    """Write this schema's version."""
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )


def _add_cursor_columns(db: sqlite3.Connection) -> None:
    """Give a cursors table written before them the columns added since."""
    present = {str(row[1]) for row in db.execute("PRAGMA table_info(cursors)")}
    for name, definition in _ADDED_CURSOR_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE cursors ADD COLUMN {name} {definition}")


def _upgrade_v1(db: sqlite3.Connection) -> None:
    """A version 1 file kept a position per stream: those become the seeds of each group's
    first read, and the table makes room for per-stream counters. Older identities rows
    gain a partition and the time they were asked."""
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(streams)")}
    if "covered_from" in columns:
        db.execute("ALTER TABLE streams RENAME TO streams_v1")
    identity = {str(row[1]) for row in db.execute("PRAGMA table_info(identities)")}
    if identity and "partition" not in identity:
        db.execute("ALTER TABLE identities ADD COLUMN partition TEXT NOT NULL DEFAULT 'aws'")
        db.execute("ALTER TABLE identities ADD COLUMN asked REAL NOT NULL DEFAULT 0")
    if identity and "key_id" not in identity:
        # Version 2 files of 0.1.0's first builds; the column is additive.
        db.execute("ALTER TABLE identities ADD COLUMN key_id TEXT NOT NULL DEFAULT ''")


def _take_seeds_v1(db: sqlite3.Connection) -> None:
    tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "streams_v1" not in tables:
        return
    db.execute(
        "INSERT OR IGNORE INTO seeds (account, region, log_group, stream, covered_from, last_ts, "
        "boundary) SELECT account, region, log_group, stream, covered_from, last_ts, boundary "
        "FROM streams_v1"
    )
    db.execute(
        "INSERT OR IGNORE INTO streams (account, region, log_group, stream, events, bytes, "
        "newest_ts, last_collected) SELECT account, region, log_group, stream, events, bytes, "
        "last_ts, last_collected FROM streams_v1"
    )
    db.execute("DROP TABLE streams_v1")


def _owner(path: Path) -> str:
    try:
        return statedir.user_name(path.stat().st_uid)
    except OSError:
        return "the manager's user"


def _me() -> str:
    return statedir.user_name(os.geteuid())


def _refusal(path: Path, what: str, exc: OSError) -> str:
    """One line for a state path that refuses us, naming it and the fix."""
    owner = _owner(path if path.exists() else path.parent)
    return (
        f"state path {path} {what}: permission denied ({exc.strerror or exc}); aws-wodle runs "
        f"as {_me()} and it belongs to {owner}: run aws-wodle as {owner} (sudo -u {owner} "
        f"aws-wodle ...), or give it to this user (chown -R {_me()} {path.parent})"
    )


def _check_writable(path: Path) -> None:
    """Refuse, with the fix, a state directory or file that we may not write: never take
    a permission problem for a damaged file (that would move it aside)."""
    folder = path.parent
    probe = folder / f".{path.name}.probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except PermissionError as exc:
        raise StateError(_refusal(folder, "is not writable", exc)) from exc
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm"):
        target = Path(f"{path}{suffix}")
        if not target.exists():
            continue
        try:
            os.close(os.open(target, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC))
        except PermissionError as exc:
            raise StateError(_refusal(target, "is not writable", exc)) from exc


def _take_lock(lock_path: Path, owner: statedir.Owner) -> int:
    """Hold an exclusive lock on ``lock_path`` (no link followed); name the holder's pid
    when it is taken."""
    import fcntl  # noqa: PLC0415 - POSIX only, like the daemon itself

    try:
        fd = statedir.open_file(lock_path, owner, os.O_RDWR | os.O_CREAT)
    except PermissionError as exc:
        raise StateError(_refusal(lock_path, "cannot be opened", exc)) from exc
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
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT 1 FROM meta").fetchall()
    except sqlite3.OperationalError:
        # A WAL file in a directory we may not write: with no daemon writing it (the -wal
        # and -shm files are gone), it can be read as an unchanging file.
        db.close()
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    return db


@dataclass(frozen=True)
class ImportedStream:
    """A stream position taken over from the old module (``import-state``) that no read
    has used yet: every event up to ``last_ts`` (ms; None: nothing) counts as sent."""

    key: StreamKey
    covered_from: int
    last_ts: int | None


def _imported(db: sqlite3.Connection) -> list[ImportedStream]:
    rows = db.execute(
        "SELECT account, region, log_group, stream, covered_from, last_ts FROM seeds "
        "ORDER BY account, region, log_group, stream"
    )
    return [
        ImportedStream(
            StreamKey(str(a), str(r), str(g), str(st)),
            int(covered),
            None if last is None else int(last),
        )
        for a, r, g, st, covered, last in rows
    ]


def read_imported(path: str | os.PathLike[str]) -> list[ImportedStream]:
    """The imported stream positions no collection has used yet, read as ``read_status``
    reads (a state file written before seeds existed has none)."""
    _refuse_directory(Path(path))
    if not Path(path).exists():
        raise StateError(f"no state file at {path}")
    try:
        with _reading(path) as db:
            return _imported(db)
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
    _refuse_directory(Path(path))
    if not Path(path).exists():
        raise StateError(f"no state file at {path}")
    try:
        with _reading(path) as db:
            groups = _group_records(db)
            records = _stream_records(db) if streams else None
            failures = [
                (float(at), str(m)) for at, m in db.execute("SELECT at, message FROM failures")
            ]
    except sqlite3.DatabaseError as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc
    return groups, records, failures
