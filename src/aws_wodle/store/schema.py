"""The state file's format: its tables, its schema version, and the upgrades of files
written by earlier versions. Any change to the file's format is a change to this module."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2
TABLES = """
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


# Columns added to the cursors table since schema version 2 (an older aws-wodle ignores
# them, so the version is unchanged), with their definitions.
ADDED_CURSOR_COLUMNS = (
    ("tail_lo", "INTEGER"),
    ("tail_until", "INTEGER"),
    ("held", "INTEGER NOT NULL DEFAULT 0"),
    # Reads split by lateness: the late events' fence, and whether the read under way is a
    # sweep (empty: it is, as every read was before the split).
    ("late_fence", "INTEGER"),
    ("cycle_sweep", "INTEGER"),
)


class NewerSchema(Exception):
    """The state file was written by a newer aws-wodle."""


def bring_up_to_date(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a file of a newer aws-wodle; bring an older one to this version's tables."""
    _refuse_newer(db, path)
    _upgrade_v1(db)
    db.executescript(TABLES)
    _add_cursor_columns(db)
    _take_seeds_v1(db)
    _write_version(db)


def _refuse_newer(db: sqlite3.Connection, path: Path) -> None:
    """A file written by a newer aws-wodle is not ours to change."""
    tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        return
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is not None and (not str(row[0]).isdigit() or int(row[0]) > SCHEMA_VERSION):
        raise NewerSchema(
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
    for name, definition in ADDED_CURSOR_COLUMNS:
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
