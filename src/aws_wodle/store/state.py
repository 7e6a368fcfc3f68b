"""The state file as one object: `StateStore` opens the one connection (``db``) and hands
it to the parts, each over what it stores (``cursors``, ``stream_seeds``, ``streams``, ``groups``,
``identities``, ``listings``, ``problems``). Its methods are the parts' methods under the
names callers have always used; the engine is handed ``cursors`` alone (its `Checkpoints`).
The SQL is in the parts, the file's format in ``schema``, the readers behind ``status`` in
``status``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..model import Boundary, Cursor, GroupKey, Listing, Sent
from .cursors import Cursors
from .db import Database, open_readonly
from .groups import Groups
from .identities import Identities, Identity
from .listings import Listings
from .problems import Problems
from .schema import SCHEMA_VERSION
from .seeds import ImportedStream, Seeds
from .status import GroupRecord, read_imported, read_push_problems, read_status
from .streams import StreamKey, StreamRecord, Streams

__all__ = [
    "SCHEMA_VERSION",
    "GroupRecord",
    "Identity",
    "ImportedStream",
    "StateStore",
    "StreamKey",
    "StreamRecord",
    "open_readonly",
    "read_imported",
    "read_push_problems",
    "read_status",
]


class StateStore:
    """A SQLite state file, safe to share between threads of one process.

    Writes are committed at once (WAL, synchronous=FULL), so a position on disk never runs
    ahead of what the caller has already forwarded. An exclusive lock file beside the
    database keeps a second daemon away. Every part works over the same connection, so
    writes of two parts made in one transaction (a cursor and its streams' counters) are
    committed together or not at all.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True) -> None:
        self._db = Database(path, lock=lock)
        self.path = self._db.path
        self.handed_over = self._db.handed_over
        self.stream_seeds = Seeds(self._db)
        self.cursors = Cursors(self._db, self.stream_seeds)
        self.streams = Streams(self._db)
        self.groups = Groups(self._db)
        self.identities = Identities(self._db)
        self.listings = Listings(self._db)
        self.problems = Problems(self._db)

    def close(self) -> None:
        self._db.close()

    # group cursors (the engine's Checkpoints: ``cursors``) ------------------------------

    def cursor(self, key: GroupKey) -> Cursor | None:
        return self.cursors.cursor(key)

    def save(self, key: GroupKey, cursor: Cursor, sent: Mapping[str, Sent]) -> None:
        self.cursors.save(key, cursor, sent)

    def finish(self, key: GroupKey, cursor: Cursor) -> None:
        self.cursors.finish(key, cursor)

    def seeds(self, key: GroupKey) -> dict[str, Boundary]:
        return self.cursors.seeds(key)

    def stream_marks(self, key: GroupKey) -> dict[str, Boundary]:
        return self.cursors.stream_marks(key)

    def save_stream_mark(
        self, key: GroupKey, stream: str, mark: Boundary, cursor: Cursor, sent: Mapping[str, Sent]
    ) -> None:
        self.cursors.save_stream_mark(key, stream, mark, cursor, sent)

    def forget_stream(self, key: GroupKey, stream: str) -> None:
        self.cursors.forget_stream(key, stream)

    def forget_groups(self, account: str, groups: Sequence[str], regions: Sequence[str]) -> int:
        return self.cursors.forget_groups(account, groups, regions)

    def group_lags(self, now_ms: int) -> list[tuple[str, str, str, int]]:
        return self.cursors.lags(now_ms)

    def group_held(self) -> list[tuple[str, str, str, int]]:
        return self.cursors.held()

    # per-stream seeds (import-state) and counters ---------------------------------------

    def has_stream(self, key: StreamKey) -> bool:
        """Whether anything is kept of a stream: counters, a seed, or its group's cursor."""
        return (
            self.streams.has(key)
            or self.stream_seeds.has(key)
            or self.cursors.cursor(key.group_key) is not None
        )

    def save_seeds(self, rows: Sequence[tuple[StreamKey, int, Boundary]]) -> None:
        self.stream_seeds.save(rows)

    def seed(self, key: StreamKey) -> tuple[int, Boundary] | None:
        return self.stream_seeds.one(key)

    def all_records(self) -> list[StreamRecord]:
        return self.streams.records()

    # groups, identities, absent groups, listings, failures ------------------------------

    def group_default_start(self, account: str, region: str, group: str, proposed: int) -> int:
        return self.groups.default_start(account, region, group, proposed)

    def filter_denied(self, key: GroupKey) -> bool:
        return self.groups.filter_denied(key)

    def deny_filter(self, key: GroupKey) -> None:
        self.groups.deny_filter(key)

    def remembered_identity(self, credentials: str) -> Identity | None:
        return self.identities.remembered(credentials)

    def remembered_account(self, credentials: str) -> str | None:
        """The account id last resolved for a credentials label, if any."""
        known = self.identities.remembered(credentials)
        return None if known is None else known.account

    def remember_account(
        self,
        credentials: str,
        account: str,
        partition: str = "aws",
        asked: float | None = None,
        key_id: str = "",
    ) -> None:
        self.identities.remember(credentials, account, partition, asked, key_id)

    def absent_until(self, key: GroupKey) -> float | None:
        return self.identities.absent_until(key)

    def mark_absent(self, key: GroupKey, next_check: float) -> None:
        self.identities.mark_absent(key, next_check)

    def clear_absent(self, key: GroupKey) -> None:
        self.identities.clear_absent(key)

    def listing(self, account: str, region: str, prefix: str) -> Listing | None:
        return self.listings.get(account, region, prefix)

    def save_listing(self, account: str, region: str, prefix: str, listing: Listing) -> None:
        self.listings.save(account, region, prefix, listing)

    def record_failures(self, messages: Sequence[str]) -> None:
        self.problems.record_failures(messages)

    def record_push_problem(self, stream: str, region: str, message: str | None) -> None:
        self.problems.record_push_problem(stream, region, message)
