"""Who each set of credentials is (account, partition, the access key id asked with), and
the groups not found in a region, with when to look for them again."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..model import GroupKey
from .codec import GROUP_WHERE, gk
from .db import Database


@dataclass(frozen=True)
class Identity:
    """Who a set of credentials is, as STS said (or an assumed role's ARN says)."""

    account: str
    partition: str
    asked: float  # epoch seconds
    key_id: str  # the access key id asked with; '' when unknown


class Identities:
    """The identities and absent tables over the one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def remembered(self, credentials: str) -> Identity | None:
        """The account and partition last asked for a credentials label, when, and the
        access key id they were asked with ('' when unknown)."""
        row = self._db.one(
            "SELECT account, partition, asked, key_id FROM identities WHERE credentials = ?",
            (credentials,),
        )
        if row is None:
            return None
        return Identity(str(row[0]), str(row[1]), float(str(row[2])), str(row[3]))

    def remember(
        self,
        credentials: str,
        account: str,
        partition: str = "aws",
        asked: float | None = None,
        key_id: str = "",
    ) -> None:
        self._db.execute(
            "INSERT INTO identities (credentials, account, partition, asked, key_id) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (credentials) DO UPDATE SET "
            "account = excluded.account, partition = excluded.partition, "
            "asked = excluded.asked, key_id = excluded.key_id",
            (credentials, account, partition, time.time() if asked is None else asked, key_id),
        )

    def absent_until(self, key: GroupKey) -> float | None:
        """When a group missing from a region is to be looked for again (epoch s), or None."""
        row = self._db.one(f"SELECT next_check FROM absent WHERE {GROUP_WHERE}", gk(key))
        return None if row is None else float(str(row[0]))

    def mark_absent(self, key: GroupKey, next_check: float) -> None:
        self._db.execute(
            "INSERT INTO absent (account, region, log_group, next_check) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (account, region, log_group) DO UPDATE SET "
            "next_check = excluded.next_check",
            (*gk(key), next_check),
        )

    def clear_absent(self, key: GroupKey) -> None:
        self._db.execute(f"DELETE FROM absent WHERE {GROUP_WHERE}", gk(key))
