"""A page taken whole by the read's rule: the test on its extremes agrees with the rule's
look at each event, for random pages and rules (pure logic, no server)."""

from __future__ import annotations

import random

from aws_wodle.model import Boundary, LogEvent
from aws_wodle.poll import window
from aws_wodle.poll.boundary import digest


def page(rng: random.Random) -> list[LogEvent]:
    start = rng.randrange(1000, 1100)
    events = []
    for i in range(rng.randrange(0, 30)):
        ts = start + i * rng.randrange(0, 3)
        late = rng.choice([rng.randrange(0, 50), rng.randrange(-5, 0), rng.randrange(0, 200)])
        events.append(LogEvent(ts, f"m{i}", ts + late, f"s{rng.randrange(3)}"))
    return events


def test_a_page_is_taken_whole_exactly_when_every_event_of_it_is() -> None:
    """accept_all says yes only when accept takes every event (never a page with one event
    the rule, the fences or the mark would refuse), and says so for pages well inside."""
    rng = random.Random(20)
    whole = 0
    for _ in range(20_000):
        events = page(rng)
        rule = window.Rule(
            ts_from=rng.randrange(990, 1060),
            ts_until=rng.choice([None, rng.randrange(1050, 1200)]),
            fence_lo=rng.choice([None, rng.randrange(980, 1060)]),
            fence_hi=rng.randrange(1050, 1250),
            # Half the reads split by lateness: prompt events by fence_lo, late ones by
            # late_lo on a sweep and not at all otherwise.
            margin=rng.choice([None, rng.randrange(0, 60)]),
            late_lo=rng.choice([None, rng.randrange(950, 1060)]),
            late=rng.random() < 0.5,
        )
        mark = Boundary()
        if events and rng.random() < 0.5:
            at = rng.choice(events)
            mark = Boundary(at.timestamp + rng.randrange(-3, 3), (digest(at),))
        wholly = window.Selector(rule, mark).accept_all(events)
        each = window.Selector(rule, mark)
        every = all(each.accept(event) for event in events)
        if wholly:
            whole += 1
            assert every, (rule, mark, events)
        elif events and every and mark.ts is None and rule.margin is None:
            raise AssertionError(("a page inside the rule not taken whole", rule, events))
    assert whole > 500


def test_a_read_with_stream_positions_looks_at_each_event() -> None:
    """On a first read after per-stream positions, each event's stream decides: no page is
    taken whole."""
    events = [LogEvent(1000 + i, "m", 1001 + i, "s") for i in range(5)]
    rule = window.Rule(0, None, None, 10_000)
    assert window.Selector(rule, Boundary()).accept_all(events)
    assert not window.Selector(rule, Boundary(), {"other": Boundary(5)}).accept_all(events)
