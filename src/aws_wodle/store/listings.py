"""The groups each prefix selected when last listed, per account and region."""

from __future__ import annotations

import json

from ..model import GroupInfo, Listing
from .db import Database


class Listings:
    """The listings table over the one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, account: str, region: str, prefix: str) -> Listing | None:
        """The groups a prefix selected when last listed in an account and region."""
        row = self._db.one(
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

    def save(self, account: str, region: str, prefix: str, listing: Listing) -> None:
        """Keep a prefix's listing (replacing the one before)."""
        groups = json.dumps([[info.name, info.creation_time] for info in listing.groups])
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
