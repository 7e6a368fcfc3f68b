"""Facts about a group besides its cursor: the start time chosen for it when no
only_logs_after is configured, and whether FilterLogEvents was refused for it."""

from __future__ import annotations

import sqlite3

from ..model import GroupKey
from .codec import GROUP_WHERE, gk
from .db import Database


class Groups:
    """The groups and filter_denied tables over the one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def default_start(self, account: str, region: str, group: str, proposed: int) -> int:
        """The start time of a group when no only_logs_after is configured.

        The first call for a group stores ``proposed`` (today 00:00 UTC); later calls return
        the stored value.
        """
        with self._db.locked() as db:
            db.execute(
                "INSERT OR IGNORE INTO groups (account, region, log_group, default_start) "
                "VALUES (?, ?, ?, ?)",
                (account, region, group, proposed),
            )
            row = db.execute(
                f"SELECT default_start FROM groups WHERE {GROUP_WHERE}", (account, region, group)
            ).fetchone()
        return int(row[0])

    def filter_denied(self, key: GroupKey) -> bool:
        """Whether FilterLogEvents was refused for this group (per-stream reads then)."""
        return self._db.one(f"SELECT 1 FROM filter_denied WHERE {GROUP_WHERE}", gk(key)) is not None

    def deny_filter(self, key: GroupKey) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO filter_denied (account, region, log_group) VALUES (?, ?, ?)",
            gk(key),
        )


def drop(db: sqlite3.Connection, where: str, args: tuple[object, ...] | list[object]) -> None:
    """Delete the start times of the groups ``where`` selects (inside a transaction)."""
    db.execute(f"DELETE FROM groups WHERE {where}", args)
