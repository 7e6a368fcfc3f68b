"""What was sent of each stream: its counters and newest times (the streams table)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from ..model import GroupKey, Sent
from .codec import GROUP_WHERE, as_int, gk
from .db import Database


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


class Streams:
    """The per-stream counters over the one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def records(self) -> list[StreamRecord]:
        """Every stream's counters, ordered by account, region, group and stream."""
        with self._db.locked() as db:
            return records(db)

    def has(self, key: StreamKey) -> bool:
        """Whether counters are kept of a stream."""
        where = f"{GROUP_WHERE} AND stream = ?"
        args = (key.account, key.region, key.group, key.stream)
        return self._db.one(f"SELECT 1 FROM streams WHERE {where}", args) is not None


def add_sent(db: sqlite3.Connection, key: GroupKey, sent: Mapping[str, Sent], now: float) -> None:
    """Add ``sent`` to its streams' counters (inside the caller's transaction)."""
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
                (*gk(key), name, s.events, s.bytes, s.newest_ts, s.newest_ingestion, now)
                for name, s in sent.items()
            ],
        )


def drop(db: sqlite3.Connection, where: str, args: tuple[object, ...] | list[object]) -> None:
    """Delete the counters of the streams ``where`` selects (inside a transaction)."""
    db.execute(f"DELETE FROM streams WHERE {where}", args)


def records(db: sqlite3.Connection) -> list[StreamRecord]:
    rows = db.execute(
        "SELECT account, region, log_group, stream, events, bytes, newest_ts, newest_ingestion, "
        "last_collected FROM streams ORDER BY account, region, log_group, stream"
    ).fetchall()
    return [
        StreamRecord(
            key=StreamKey(str(a), str(r), str(g), str(s)),
            events=int(e),
            bytes=int(b),
            newest_ts=as_int(ts),
            newest_ingestion=as_int(ing),
            last_collected=None if last is None else float(last),
        )
        for a, r, g, s, e, b, ts, ing, last in rows
    ]


def counts(db: sqlite3.Connection) -> dict[tuple[str, str, str], int]:
    """How many streams of each (account, region, group) have counters."""
    return {
        (str(a), str(r), str(g)): int(n)
        for a, r, g, n in db.execute(
            "SELECT account, region, log_group, COUNT(*) FROM streams "
            "GROUP BY account, region, log_group"
        )
    }
