"""A page held as columns (pure logic): its events made on demand are the events, the
events at its newest timestamp move a boundary as the whole page does, and a Page reads the
same whichever way it holds them."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from aws_wodle.model import Boundary, Columns, LogEvent, Page
from aws_wodle.poll import boundary
from support.fakelogs import ListSink
from test_engine import Rig


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


class KeepingSink(ListSink):
    """A sink that keeps each list of datagrams it was handed, to look at it afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[list[bytes]] = []

    def send_all(self, datagrams: Iterable[bytes]) -> None:
        assert isinstance(datagrams, list)
        self.handed.append(datagrams)
        super().send_all(datagrams)


def test_a_pages_datagrams_are_let_go_once_sent() -> None:
    """The datagrams of a page (its size again) are not kept after they were sent, whichever
    way the page was held: a read of several pages holds at most one page's at a time."""
    rig = Rig(settle=0, page_events=100)
    sink = rig.sink = KeepingSink()
    for n in range(1_000):
        rig.logs.put("app", f"s{n % 7}", rig.logs.now - 60_000 + n, f"e{n}")
    rig.logs.advance(1_000)
    rig.cycle()
    assert len(sink.received) == 1_000
    assert len(sink.handed) >= 10
    assert all(not datagrams for datagrams in sink.handed)
