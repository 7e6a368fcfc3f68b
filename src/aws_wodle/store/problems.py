"""What went wrong, kept for ``status``: the last cycle's failures and each ``[[kinesis]]``
source's standing problem, masked as they may quote a credential."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from .. import redact
from .db import Database


class Problems:
    """The failures and push_problems tables over the one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_failures(self, messages: Sequence[str]) -> None:
        """Keep the last cycle's failures (for ``status``), replacing the cycle before's;
        masked, as they may quote an answer that quotes a credential."""
        now = time.time()
        masked = [(now, redact.mask(m)) for m in messages]

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM failures")
            db.executemany("INSERT INTO failures (at, message) VALUES (?, ?)", masked)

        self._db.transaction(work)

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

        self._db.transaction(work)


def failures(db: sqlite3.Connection) -> list[tuple[float, str]]:
    return [(float(at), str(m)) for at, m in db.execute("SELECT at, message FROM failures")]


def push_problems(db: sqlite3.Connection) -> list[tuple[str, str, float, str]]:
    rows = db.execute(
        "SELECT stream, region, at, message FROM push_problems ORDER BY stream, region"
    ).fetchall()
    return [(str(a), str(b), float(c), str(d)) for a, b, c, d in rows]
