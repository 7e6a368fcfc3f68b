"""The edges of a read of the whole range, in-process against the fake: events left for the
settle margin by a first collection or a backfill are sent once, whatever their timestamp."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aws_wodle.aws.budget import Budgets
from aws_wodle.model import Cursor
from aws_wodle.runtime.metrics import Metrics
from aws_wodle.store.state import StateStore, read_status
from support.fakelogs import Crash
from test_engine import INTERVAL, KEY, LOOKBACK, MINUTE, SETTLE, Rig, drain


def _put_old(rig: Rig, age: int, count: int, tag: str) -> list[str]:
    """``count`` events timestamped ``age`` ms ago, accepted now and readable at once."""
    names = [f"{tag}{n}" for n in range(count)]
    for n, name in enumerate(names):
        rig.logs.put("app", f"s{n % 2}", rig.logs.now - age + n, name)
    return names


@pytest.mark.parametrize("denied", [False, True], ids=["filter", "per-stream"])
@pytest.mark.parametrize("lookback", [LOOKBACK, 0], ids=["lookback", "no-lookback"])
def test_a_first_collection_sends_what_it_held_whatever_the_timestamp(
    denied: bool, lookback: int
) -> None:
    """Five events two hours old put just before a first collection (inside its settle
    margin) are held by it, counted as held, and sent once by the reads after it, even when
    the next read comes before they have settled."""
    rig = Rig(lookback=lookback)
    rig.start = rig.logs.now - 3 * 3_600_000
    rig.logs.deny_filter = denied
    if denied:
        rig.store.denied.add(rig.key)
    rig.logs.put("app", "s0", rig.logs.now - 5 * MINUTE, "before")
    rig.logs.advance(SETTLE + 1)
    expected = ["before", *_put_old(rig, 2 * 3_600_000, 5, "old")]
    rig.logs.advance(1000)
    first = rig.cycle()
    assert rig.sink.messages() == ["before"]
    assert first.held == 5
    assert rig.store.cursors[rig.key].held == 5
    rig.logs.advance(1000)  # a second run at once: its fence is still before them
    second = rig.cycle()
    assert second.events == 0
    assert second.held == 5
    drain(rig, cycles=4)
    assert sorted(rig.sink.messages()) == sorted(expected)
    assert rig.store.cursors[rig.key].tail_lo is None
    assert rig.store.cursors[rig.key].held == 0


def test_the_tail_closes_and_later_reads_look_back_only_the_lookback() -> None:
    """Once a read's fence has passed the first collection's start, reads start at the
    lookback again: an idle group then costs one call a cycle, reading nothing old."""
    rig = Rig()
    rig.start = rig.logs.now - 3 * 3_600_000
    for n in range(50):
        rig.logs.put("app", "s0", rig.logs.now - 2 * 3_600_000 + n, f"e{n}")
    rig.logs.advance(SETTLE + INTERVAL)
    rig.cycle()
    assert rig.store.cursors[rig.key].tail_lo is not None
    drain(rig, cycles=2)
    cursor = rig.store.cursors[rig.key]
    assert cursor.tail_lo is None
    assert cursor.fence is not None
    calls = rig.logs.calls["FilterLogEvents"]
    rig.logs.advance(INTERVAL)
    tally = rig.cycle()
    assert rig.logs.calls["FilterLogEvents"] == calls + 1
    assert tally.events == 0
    assert len(rig.sink.messages()) == 50


@pytest.mark.parametrize("late_every", [0, 5 * MINUTE], ids=["unsplit", "split"])
def test_without_a_settle_margin_a_first_collection_leaves_no_tail(late_every: int) -> None:
    """With ``--settle 0s`` a first collection left nothing behind its fence: no tail opens,
    and the next read of an idle group looks back only the lookback (one call, nothing old
    returned) instead of reading the whole range again."""
    rig = Rig(settle=0, late_every=late_every)
    rig.start = rig.logs.now - 3 * 3_600_000
    for n in range(50):
        rig.logs.put("app", "s0", rig.logs.now - 2 * 3_600_000 + n, f"e{n}")
    rig.logs.advance(INTERVAL)
    rig.cycle()
    assert rig.store.cursors[rig.key].tail_lo is None
    calls, returned = rig.logs.calls["FilterLogEvents"], rig.logs.returned
    rig.logs.advance(1000)
    tally = rig.cycle()
    assert rig.logs.calls["FilterLogEvents"] == calls + 1
    assert rig.logs.returned == returned
    assert tally.events == 0
    assert len(rig.sink.messages()) == 50


@pytest.mark.parametrize("gap_ingested", ["long-ago", "just-now"])
def test_a_backfill_sends_what_came_in_meanwhile_whatever_the_timestamp(
    gap_ingested: str,
) -> None:
    """only_logs_after moved earlier: the gap's events ingested before the last fence come
    with the backfill, those ingested after it (some inside the settle margin) with the reads
    after it; each once."""
    rig = Rig()
    rig.start = rig.logs.now - 3_600_000
    expected: list[str] = []
    if gap_ingested == "long-ago":
        expected += _put_old(rig, 2 * 3_600_000, 5, "early")
    rig.logs.put("app", "s0", rig.logs.now - 1000, "recent")
    expected.append("recent")
    drain(rig, cycles=2)
    assert sorted(rig.sink.messages()) == ["recent"]
    rig.logs.advance(5 * MINUTE)
    expected += _put_old(rig, 2 * 3_600_000 + 30 * MINUTE, 5, "meanwhile")
    rig.logs.advance(SETTLE + 1)
    expected += _put_old(rig, 2 * 3_600_000 + 40 * MINUTE, 5, "settling")
    rig.logs.advance(1000)
    rig.start = rig.logs.now - 4 * 3_600_000
    rig.cycle()
    assert rig.store.cursors[rig.key].gap is None
    rig.logs.advance(1000)
    rig.cycle()
    drain(rig, cycles=4)
    assert sorted(rig.sink.messages()) == sorted(expected)
    assert rig.store.cursors[rig.key].tail_lo is None


def test_a_crash_between_reads_of_the_tail_loses_and_repeats_nothing() -> None:
    """The tail is part of the stored cursor: a read of it interrupted mid-page resumes, and
    every held event is sent once."""
    rig = Rig(page_events=3)
    rig.start = rig.logs.now - 3 * 3_600_000
    rig.logs.advance(SETTLE + 1)
    expected = _put_old(rig, 2 * 3_600_000, 20, "old")
    rig.logs.advance(1000)
    rig.cycle()
    assert rig.sink.messages() == []
    rig.logs.advance(SETTLE + INTERVAL)
    rig.sink.fail_after = 7
    with pytest.raises(Crash):
        rig.cycle()
    drain(rig, cycles=3)
    got = rig.sink.messages()
    assert sorted(set(got)) == sorted(expected)
    assert len(got) - len(set(got)) <= 3  # at most the page in flight


def test_the_tail_and_held_count_survive_reopening_and_older_files_gain_them(
    tmp_path: Path,
) -> None:
    """A cursor's tail and held count read back the same after reopening; a file written
    before them is read by ``status`` as it is, and opened, gains them empty."""
    path = tmp_path / "state.db"
    cursor = Cursor(covered_from=1, fence=5_000, tail_lo=10, tail_until=9_000, held=7)
    store = StateStore(path)
    store.save(KEY, cursor, {})
    store.close()
    store = StateStore(path)
    assert store.cursor(KEY) == cursor
    assert store.group_held() == [(KEY.account, KEY.region, KEY.group, 7)]
    store.close()
    with sqlite3.connect(path) as db:
        for column in ("tail_lo", "tail_until", "held"):
            db.execute(f"ALTER TABLE cursors DROP COLUMN {column}")
    groups, _, _ = read_status(path)
    assert groups[0].cursor == Cursor(covered_from=1, fence=5_000)
    store = StateStore(path)
    assert store.cursor(KEY) == Cursor(covered_from=1, fence=5_000)
    store.save(KEY, cursor, {})
    assert store.cursor(KEY) == cursor
    store.close()


def test_the_metrics_show_each_groups_held_events(tmp_path: Path) -> None:
    """``aws_wodle_events_held`` gives, per group, what its last read left for the settle
    margin."""
    store = StateStore(tmp_path / "state.db")
    store.save(KEY, Cursor(covered_from=1, fence=5_000, held=4), {})
    text = Metrics(Budgets(), store).render()
    store.close()
    assert "# TYPE aws_wodle_events_held gauge" in text
    assert (
        f'aws_wodle_events_held{{account="{KEY.account}",region="{KEY.region}",'
        f'group="{KEY.group}"}} 4'
    ) in text
