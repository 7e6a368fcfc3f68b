"""Reads split by lateness, in-process against the fake: prompt events by every read, late
ones by a sweep of the lookback every ``late_every``, each event sent once."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from aws_wodle.model import Boundary, Cursor, Cycle
from aws_wodle.poll import window
from aws_wodle.store.state import StateStore
from readcost import measure
from support.fakelogs import Crash
from test_engine import KEY, LOOKBACK, MINUTE, SETTLE, Rig

INTERVAL = 10_000
LATE_EVERY = 5 * MINUTE


def _put(rig: Rig, rng: random.Random, step: int, expected: dict[str, int]) -> None:
    """A few events of random lateness (prompt, late, up to the lookback, and stamped
    ahead of their ingestion), readable up to the settle margin later."""
    for n in range(rng.randint(0, 6)):
        late = rng.choice(
            [0, 1, 900, window.LATE_MARGIN_MS, window.LATE_MARGIN_MS + 1, 45_000, 3 * MINUTE,
             9 * MINUTE, LOOKBACK - SETTLE - 1, -1, -window.AHEAD_MS, -window.AHEAD_MS - 1,
             -5_000, -3 * MINUTE]
        )  # fmt: skip
        message = f"e{step}-{n}"
        stream = f"s{rng.randint(0, 9)}"
        rig.logs.put("app", stream, rig.logs.now - late, message, delay=rng.randint(0, SETTLE))
        expected[message] = rig.logs.now


def _settle_all(rig: Rig, cycles: int) -> None:
    for _ in range(cycles):
        rig.logs.advance(INTERVAL)
        rig.cycle()


@pytest.mark.parametrize("seed", range(6))
def test_random_lateness_is_sent_exactly_once_across_reads_and_sweeps(seed: int) -> None:
    """Events of every lateness within the lookback (and stamped ahead), pages cut short at
    random, cycles at random intervals, late_every switched between 5 minutes, 1 hour and 0
    on the way: each event is sent once."""
    rng = random.Random(seed)
    rig = Rig(page_events=7, short_pages=0.3, late_every=LATE_EVERY)
    expected: dict[str, int] = {}
    for step in range(400):
        _put(rig, rng, step, expected)
        rig.logs.advance(rng.randint(1, 2 * INTERVAL))
        if step % 2 == 0:
            rig.cycle()
        if step in (150, 250, 320):
            every = {150: 3_600_000, 250: 0, 320: LATE_EVERY}[step]
            rig.settings = rig.settings.__class__(LOOKBACK, SETTLE, 0, late_every_ms=every)
    _settle_all(rig, 3)
    rig.logs.advance(LATE_EVERY)
    _settle_all(rig, 3)
    got = rig.sink.messages()
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))


def test_reads_between_sweeps_look_only_at_the_last_moments() -> None:
    """Between sweeps a read asks for event times from its fence less the margin up to its
    new fence: a busy group's old events are not read again each cycle; a sweep reads the
    lookback."""
    rig = Rig(late_every=LATE_EVERY)
    for i in range(3000):
        rig.logs.put("app", f"s{i % 5}", rig.logs.now - 10 * MINUTE + i * 200, f"old{i}")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    _settle_all(rig, 2)  # past the first collection's tail
    before = rig.logs.returned
    rig.logs.advance(INTERVAL)
    rig.cycle()
    assert rig.store.cursors[KEY].late_fence is not None
    assert rig.logs.returned - before == 0
    rig.logs.advance(LATE_EVERY)
    before = rig.logs.returned
    rig.cycle()
    assert rig.logs.returned - before > 0  # the sweep reads the lookback
    assert len(rig.sink.received) == 3000


def test_events_stamped_just_ahead_of_their_ingestion_go_with_the_next_read() -> None:
    """A writer's clock a little ahead of AWS's: events stamped up to 2 s after their
    ingestion are sent by the next read between sweeps; one stamped further ahead waits
    for the sweep; each is sent once."""
    rig = Rig(late_every=LATE_EVERY)
    rig.logs.put("app", "s0", rig.logs.now - MINUTE, "old")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    _settle_all(rig, 3)  # past the first collection's tail, before the next sweep
    ahead = [1, 500, window.AHEAD_MS]
    for n, by in enumerate(ahead):
        rig.logs.put("app", "s0", rig.logs.now + by, f"ahead{n}")
    rig.logs.put("app", "s1", rig.logs.now + window.AHEAD_MS + 1, "further")
    _settle_all(rig, 4)
    got = rig.sink.messages()
    assert [m for m in got if m.startswith("ahead")] == ["ahead0", "ahead1", "ahead2"]
    assert "further" not in got
    rig.logs.advance(LATE_EVERY)
    rig.cycle()
    got = rig.sink.messages()
    assert got.count("further") == 1
    assert sorted(got) == sorted(set(got))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("which", ["prompt", "sweep"])
def test_a_crash_mid_read_repeats_at_most_that_page(seed: int, which: str) -> None:
    """A sink dying at a random point of a multi-page read, a read of prompt events or a
    sweep: the next run resumes the same read (same class, same fences); nothing is lost,
    at most one page repeated."""
    rng = random.Random(seed)
    rig = Rig(page_events=50, late_every=LATE_EVERY)
    rig.logs.put("app", "s", rig.logs.now - 1000, "first")
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    _settle_all(rig, 2)
    expected = ["first"]
    if which == "sweep":
        rig.logs.advance(LATE_EVERY)
    for i in range(400):
        late = rng.choice([0, 10, 2 * MINUTE, 6 * MINUTE])
        message = f"m{i}"
        rig.logs.put("app", f"s{i % 7}", rig.logs.now - late - (400 - i) * 10, message)
        expected.append(message)
    rig.logs.advance(SETTLE + 1)
    rig.sink.fail_after = rng.randint(0, 150)
    with pytest.raises(Crash):
        rig.cycle()
    cycle = rig.store.cursors[KEY].cycle
    assert cycle is not None
    assert cycle.sweep is (which == "sweep")
    rig.cycle()
    assert rig.store.cursors[KEY].cycle is None
    _settle_all(rig, 2)
    rig.logs.advance(LATE_EVERY)
    _settle_all(rig, 2)
    got = rig.sink.messages()
    assert set(got) == set(expected)
    assert len(got) - len(set(got)) <= 50


def test_late_events_wait_at_most_late_every_plus_settle_and_an_interval() -> None:
    """W2 (5% of events 1 to 10 minutes late) at a 10 s interval: prompt events reach the
    socket within an interval plus the settle margin of their ingestion, late ones within
    late_every plus the settle margin plus an interval; none lost or repeated."""
    result = measure("W2", interval_s=10, late_every_s=300, minutes=30, rate=(4, 20))
    assert result.lost == 0
    assert result.repeated == 0
    assert result.late_waits
    assert max(result.prompt_waits) <= 10_000 + 30_000
    assert max(result.late_waits) <= 300_000 + 30_000 + 10_000


@pytest.mark.parametrize("workload", ["W1", "W2"])
def test_a_busy_group_at_10_s_reads_each_event_at_most_8_times(workload: str) -> None:
    """At a 10 s interval and a 15-minute lookback, each event sent costs at most 8 events
    returned by FilterLogEvents (every read covering the lookback: over 90)."""
    result = measure(workload, interval_s=10, late_every_s=300, minutes=40, rate=(4, 20))
    assert result.lost == 0
    assert result.repeated == 0
    assert result.per_event <= 8


def test_an_hourly_sweep_at_5_min_reads_each_event_under_2_5_times() -> None:
    """late_every 1h at a 5-minute interval: at most 2.5 events returned per event sent, late
    events waiting up to about an hour."""
    result = measure("W2", interval_s=300, late_every_s=3600, minutes=180, rate=(2, 10))
    assert result.lost == 0
    assert result.repeated == 0
    assert result.per_event <= 2.5
    assert max(result.late_waits) <= 3_600_000 + 30_000 + 300_000


def test_a_backfill_waits_for_the_sweep_and_sends_once() -> None:
    """only_logs_after moved earlier while late events are behind the prompt ones: the
    backfill starts after the next sweep, and every event is sent once."""
    rig = Rig(late_every=LATE_EVERY)
    now = rig.logs.now
    rig.logs.put("app", "s", now - 50 * MINUTE, "old")
    rig.logs.put("app", "s", now - 1000, "new")
    rig.start = now - 40 * MINUTE
    rig.logs.advance(SETTLE + 1)
    rig.cycle()
    _settle_all(rig, 3)
    rig.logs.put("app", "s", rig.logs.now - 2 * MINUTE, "late")
    rig.logs.put("app", "s", rig.logs.now - 55 * MINUTE, "old-late")
    _settle_all(rig, 4)
    cursor = rig.store.cursors[KEY]
    assert cursor.late_fence is not None
    assert cursor.late_fence < (cursor.fence or 0)
    rig.start = now - 60 * MINUTE
    rig.cycle()
    assert rig.store.cursors[KEY].gap is None  # waits for the sweep
    rig.logs.advance(LATE_EVERY)
    _settle_all(rig, 4)
    got = rig.sink.messages()
    assert sorted(got) == ["late", "new", "old", "old-late"]


def test_the_split_cursor_is_kept_and_older_files_read(tmp_path: Path) -> None:
    """The late events' fence and a read of prompt events under way survive in the state
    file; a file written before them reads as unsplit (late fence = fence, a sweep)."""
    path = tmp_path / "state.db"
    store = StateStore(path)
    cursor = Cursor(
        covered_from=1, fence=500, late_fence=300, cycle=Cycle(450, 600, Boundary(), sweep=False)
    )
    store.save(KEY, cursor, {})
    store.close()
    again = StateStore(path)
    assert again.cursor(KEY) == cursor
    again.save(KEY, Cursor(covered_from=1, fence=500, cycle=Cycle(400, 600)), {})
    again.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE cursors DROP COLUMN late_fence")
    db.execute("ALTER TABLE cursors DROP COLUMN cycle_sweep")
    db.commit()
    db.close()
    old = StateStore(path)
    read = old.cursor(KEY)
    assert read is not None
    assert read.cycle is not None
    assert read.late_fence is None
    assert window.late_fence(read) == 500
    assert read.cycle.sweep
    old.close()


def test_what_a_first_collection_held_is_swept_whatever_its_timestamp() -> None:
    """Events two hours old put inside a first collection's settle margin are late ones:
    the reads of prompt events leave them, the first sweep sends them (its tail stays open
    until a sweep passes it), once."""
    rig = Rig(late_every=LATE_EVERY)
    rig.start = rig.logs.now - 3 * 3_600_000
    rig.logs.put("app", "s0", rig.logs.now - 5 * MINUTE, "before")
    rig.logs.advance(SETTLE + 1)
    expected = ["before"]
    for n in range(5):
        rig.logs.put("app", f"s{n % 2}", rig.logs.now - 2 * 3_600_000 + n, f"old{n}")
        expected.append(f"old{n}")
    rig.logs.advance(1000)
    first = rig.cycle()
    assert first.held == 5
    _settle_all(rig, 6)  # reads of prompt events, fences past the first read's start
    assert rig.sink.messages() == ["before"]
    assert rig.store.cursors[KEY].tail_lo is not None
    rig.logs.advance(LATE_EVERY)
    _settle_all(rig, 2)
    assert sorted(rig.sink.messages()) == sorted(expected)
    assert rig.store.cursors[KEY].tail_lo is None
