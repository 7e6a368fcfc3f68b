"""Group cursors (the engine's `Checkpoints`): each group's cursor with its read under way,
gap and late fence, the per-stream marks of a per-stream read, and how far each group is
behind. A cursor is stored with its streams' counters in one commit."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence

from ..model import Boundary, Cursor, Cycle, Gap, GroupKey, Sent
from . import groups, seeds, streams
from .codec import GROUP_WHERE, as_int, boundary, digests, gk
from .db import Database

CURSOR_COLUMNS = (
    "covered_from, fence, newest_ts, newest_ingestion, cycle_lo, cycle_fence, mark_ts, mark, "
    "gap_start, gap_until, gap_fence, gap_mark_ts, gap_mark, tail_lo, tail_until, held, "
    "late_fence, cycle_sweep"
)
CURSOR_WIDTH = CURSOR_COLUMNS.count(",") + 1


class Cursors:
    """The cursors and stream_marks tables over the one connection; the seeds of a group's
    first read come from ``seeds``."""

    def __init__(self, db: Database, seeds: seeds.Seeds) -> None:
        self._db = db
        self._seeds = seeds

    def cursor(self, key: GroupKey) -> Cursor | None:
        """The stored cursor of a group, or None when it was never collected."""
        row = self._db.one(f"SELECT {CURSOR_COLUMNS} FROM cursors WHERE {GROUP_WHERE}", gk(key))
        return None if row is None else decode(row)

    def seeds(self, key: GroupKey) -> dict[str, Boundary]:
        """Per-stream positions kept from before group cursors, by stream name."""
        return self._seeds.of_group(key)

    def save(self, key: GroupKey, cursor: Cursor, sent: Mapping[str, Sent]) -> None:
        """Store a group's cursor and add ``sent`` to its streams' counters, in one commit."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            _upsert(db, key, cursor, sent, now)

        self._db.transaction(work)

    def finish(self, key: GroupKey, cursor: Cursor) -> None:
        """Store the cursor of a completed read; per-stream seeds and marks are done with."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            _upsert(db, key, cursor, {}, now)
            db.execute(f"UPDATE cursors SET last_checked = ? WHERE {GROUP_WHERE}", (now, *gk(key)))
            seeds.drop(db, GROUP_WHERE, gk(key))
            db.execute(f"DELETE FROM stream_marks WHERE {GROUP_WHERE}", gk(key))

        self._db.transaction(work)

    def stream_marks(self, key: GroupKey) -> dict[str, Boundary]:
        """The progress of each stream in a per-stream read under way."""
        rows = self._db.rows(
            f"SELECT stream, mark_ts, mark FROM stream_marks WHERE {GROUP_WHERE}", gk(key)
        )
        return {str(name): boundary(ts, mark) for name, ts, mark in rows}

    def save_stream_mark(
        self, key: GroupKey, stream: str, mark: Boundary, cursor: Cursor, sent: Mapping[str, Sent]
    ) -> None:
        """Store one stream's progress in a per-stream read, the cursor and the counters."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            _upsert(db, key, cursor, sent, now)
            db.execute(
                "INSERT INTO stream_marks (account, region, log_group, stream, mark_ts, mark) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, log_group, stream) "
                "DO UPDATE SET mark_ts = excluded.mark_ts, mark = excluded.mark",
                (*gk(key), stream, mark.ts, digests(mark)),
            )

        self._db.transaction(work)

    def forget_stream(self, key: GroupKey, stream: str) -> None:
        """Drop what is kept of a deleted stream."""

        def work(db: sqlite3.Connection) -> None:
            where = f"{GROUP_WHERE} AND stream = ?"
            args = (*gk(key), stream)
            streams.drop(db, where, args)
            seeds.drop(db, where, args)
            db.execute(f"DELETE FROM stream_marks WHERE {where}", args)

        self._db.transaction(work)

    def forget_groups(self, account: str, names: Sequence[str], regions: Sequence[str]) -> int:
        """Forget the cursors and counters of these groups (in ``regions``, or all), so that
        they are read again from the start; returns how many groups were forgotten."""
        forgotten = 0

        def work(db: sqlite3.Connection) -> None:
            nonlocal forgotten
            for group in names:
                where = "account = ? AND log_group = ?"
                args: list[object] = [account, group]
                if regions:
                    where += f" AND region IN ({', '.join('?' for _ in regions)})"
                    args += list(regions)
                forgotten += db.execute(f"DELETE FROM cursors WHERE {where}", args).rowcount
                streams.drop(db, where, args)
                seeds.drop(db, where, args)
                db.execute(f"DELETE FROM stream_marks WHERE {where}", args)
                groups.drop(db, where, args)

        self._db.transaction(work)
        return forgotten

    def lags(self, now_ms: int) -> list[tuple[str, str, str, int]]:
        """(account, region, group, ms): how far each group's collection is behind now."""
        rows = self._db.rows(
            "SELECT account, region, log_group, fence FROM cursors WHERE fence IS NOT NULL "
            "ORDER BY account, region, log_group"
        )
        return [(str(a), str(r), str(g), max(0, now_ms - int(f))) for a, r, g, f in rows]

    def held(self) -> list[tuple[str, str, str, int]]:
        """(account, region, group, events): what each group's last completed read left
        for the settle margin (the next read sends it)."""
        rows = self._db.rows(
            "SELECT account, region, log_group, held FROM cursors WHERE fence IS NOT NULL "
            "ORDER BY account, region, log_group"
        )
        return [(str(a), str(r), str(g), int(h or 0)) for a, r, g, h in rows]


def decode(row: tuple[object, ...]) -> Cursor:
    """A cursor from the values of ``CURSOR_COLUMNS``."""
    covered, fence, newest_ts, newest_in, cycle_lo, cycle_fence, mark_ts, mark = row[:8]
    gap_start, gap_until, gap_fence, gap_mark_ts, gap_mark = row[8:13]
    tail_lo, tail_until, held, late_fence, cycle_sweep = row[13:18]
    cycle = None
    if cycle_lo is not None and cycle_fence is not None:
        cycle = Cycle(
            int(str(cycle_lo)),
            int(str(cycle_fence)),
            boundary(mark_ts, mark),
            sweep=as_int(cycle_sweep) != 0,
        )
    gap = None
    if gap_start is not None and gap_until is not None and gap_fence is not None:
        gap = Gap(
            int(str(gap_start)),
            int(str(gap_until)),
            int(str(gap_fence)),
            boundary(gap_mark_ts, gap_mark),
        )
    return Cursor(
        covered_from=int(str(covered)),
        fence=as_int(fence),
        newest_ts=as_int(newest_ts),
        newest_ingestion=as_int(newest_in),
        cycle=cycle,
        gap=gap,
        tail_lo=as_int(tail_lo),
        tail_until=as_int(tail_until),
        held=as_int(held) or 0,
        late_fence=as_int(late_fence),
    )


def _upsert(
    db: sqlite3.Connection, key: GroupKey, c: Cursor, sent: Mapping[str, Sent], now: float
) -> None:
    """The group's cursor row, then its streams' counters: the caller's one transaction."""
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
            *gk(key),
            c.covered_from,
            c.fence,
            c.newest_ts,
            c.newest_ingestion,
            c.cycle.lo if c.cycle else None,
            c.cycle.fence if c.cycle else None,
            cycle_mark.ts,
            digests(cycle_mark),
            c.gap.start if c.gap else None,
            c.gap.until if c.gap else None,
            c.gap.fence if c.gap else None,
            gap_mark.ts,
            digests(gap_mark),
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
    streams.add_sent(db, key, sent, now)
