"""Per-stream positions from before group cursors (a version 1 file, or the old module's
state taken over by ``import-state``): the seeds of each group's first read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ..model import Boundary, GroupKey
from .codec import GROUP_WHERE, boundary, digests, gk
from .db import Database
from .streams import StreamKey


@dataclass(frozen=True)
class ImportedStream:
    """A stream position taken over from the old module (``import-state``) that no read
    has used yet: every event up to ``last_ts`` (ms; None: nothing) counts as sent."""

    key: StreamKey
    covered_from: int
    last_ts: int | None


class Seeds:
    """The seeds table over the one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def of_group(self, key: GroupKey) -> dict[str, Boundary]:
        """Per-stream positions kept from before group cursors, by stream name."""
        rows = self._db.rows(
            f"SELECT stream, last_ts, boundary FROM seeds WHERE {GROUP_WHERE} "
            "AND last_ts IS NOT NULL",
            gk(key),
        )
        return {str(name): Boundary(int(ts), tuple(json.loads(b))) for name, ts, b in rows}

    def has(self, key: StreamKey) -> bool:
        """Whether a seed is kept of a stream."""
        where = f"{GROUP_WHERE} AND stream = ?"
        args = (key.account, key.region, key.group, key.stream)
        return self._db.one(f"SELECT 1 FROM seeds WHERE {where}", args) is not None

    def save(self, rows: Sequence[tuple[StreamKey, int, Boundary]]) -> None:
        """Store per-stream positions (key, covered_from, boundary) for groups' first reads."""

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR REPLACE INTO seeds (account, region, log_group, stream, covered_from, "
                "last_ts, boundary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (k.account, k.region, k.group, k.stream, covered, b.ts, digests(b))
                    for k, covered, b in rows
                ],
            )

        self._db.transaction(work)

    def one(self, key: StreamKey) -> tuple[int, Boundary] | None:
        """One stream's seed: its covered_from and boundary."""
        row = self._db.one(
            f"SELECT covered_from, last_ts, boundary FROM seeds WHERE {GROUP_WHERE} AND stream = ?",
            (key.account, key.region, key.group, key.stream),
        )
        if row is None:
            return None
        covered, ts, marks = row
        return int(str(covered)), boundary(ts, marks)


def drop(db: sqlite3.Connection, where: str, args: tuple[object, ...] | list[object]) -> None:
    """Delete the seeds ``where`` selects (inside a transaction)."""
    db.execute(f"DELETE FROM seeds WHERE {where}", args)


def imported(db: sqlite3.Connection) -> list[ImportedStream]:
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
