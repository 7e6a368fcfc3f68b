"""A page held as columns (pure logic): its events made on demand are the events, the
events at its newest timestamp move a boundary as the whole page does, and a Page reads the
same whichever way it holds them."""

from __future__ import annotations

import random

import pytest

from aws_wodle.model import Boundary, Columns, LogEvent, Page
from aws_wodle.poll import boundary


def events_of(rng: random.Random, count: int, *, ids: bool) -> list[LogEvent]:
    """Sorted by timestamp, several at each one (a boundary keeps every one at the
    newest)."""
    stamps = sorted(rng.randrange(1_000, 1_000 + max(1, count // 3)) for _ in range(count))
    return [
        LogEvent(ts, f"m{i}-{rng.random()}", ts + rng.randrange(0, 5_000),
                 f"s{rng.randrange(3)}", f"id{i}" if ids else "")
        for i, ts in enumerate(stamps)
    ]  # fmt: skip


@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("seed", range(20))
def test_columns_make_the_events_and_the_newest_move_a_boundary_as_all_do(
    seed: int, ids: bool
) -> None:
    rng = random.Random(seed)
    events = events_of(rng, rng.randrange(1, 300), ids=ids)
    columns = Columns.of(events, ids=ids)
    assert columns.events() == events
    assert all(type(e) is LogEvent for e in columns.events())
    newest = max(e.timestamp for e in events)
    assert columns.newest() == [e for e in events if e.timestamp == newest]
    for before in (Boundary(), Boundary(newest, ("x",)), Boundary(newest - 1, ("y",))):
        assert boundary.advance(before, columns.newest()) == boundary.advance(before, events)


def test_a_page_reads_the_same_whichever_way_it_holds_its_events() -> None:
    events = events_of(random.Random(1), 50, ids=True)
    held = Page(Columns.of(events), "t", 7)
    assert held.columns is not None
    assert held == Page(list(events), "t", 7)
    assert held.events == events
    # Asked for its events once, it holds them as events.
    assert held.columns is None
    held.drop()
    assert held.events == []
    as_columns = Page(Columns.of(events), None, 7)
    as_columns.drop()
    assert as_columns.columns is None
    assert as_columns.events == []
    assert Columns.of([]).newest() == []
