"""Framing a page for the manager: the page-at-a-time path answers exactly as the event
loop does, for pages of one, a few and many streams, and leaves to the loop what it must."""

from __future__ import annotations

import random

import pytest

from aws_wodle.manager.forward import HEADER, MAX_DATAGRAM
from aws_wodle.model import LogEvent
from aws_wodle.poll.outgoing import Outgoing, _frame_each, _frame_whole, frame_page


def figures(out: Outgoing) -> tuple[object, ...]:
    tally = out.tally
    return (
        out.wire, out.sent, tally.events, tally.bytes, tally.truncated, dict(tally.lateness),
        out.newest_ts, out.newest_ingestion, out.latest,
    )  # fmt: skip


# Lateness (ms) to choose from: past every bound of the histogram, or within one bucket.
MIXED = (0, 1, 999, 5_000, 61_000, 3_600_000, 90_000_000, -20)
LATENESS = {
    "mixed": MIXED,
    "prompt": (0, 1, 999, 1_000, -20),
    "a bound and past it": (1_000, 1_001, 9_999),
    "a minute": (60_001, 299_999),
}


def page(
    rng: random.Random, streams: int, size: int, lateness: tuple[int, ...] = MIXED
) -> list[LogEvent]:
    names = [f"stream-{rng.randrange(10**6)}" for _ in range(streams)]
    events = []
    for _ in range(size):
        ts = rng.randrange(1_700_000_000_000, 1_700_000_100_000)
        # Late by nothing to past a day, or (clock skew) ingested before its timestamp.
        ingested = ts + rng.choice(lateness)
        message = "".join(rng.choice('ab é€😀{}"\\') for _ in range(rng.randrange(0, 40)))
        events.append(LogEvent(ts, message, ingested, rng.choice(names), ""))
    return events


@pytest.mark.parametrize("lateness", sorted(LATENESS))
@pytest.mark.parametrize("streams", [1, 2, 5, 60])
def test_a_page_at_a_time_is_the_event_loop(streams: int, lateness: str) -> None:
    """Whole-page framing gives the same datagrams, per-stream figures, tally (its
    lateness histogram too, whether a page's events fall in one bucket or many) and newest
    times as the event loop, whatever the number of streams."""
    rng = random.Random(streams)
    for _ in range(40):
        events = page(rng, streams, rng.randrange(1, 400), LATENESS[lateness])
        whole = _frame_whole(events)
        assert whole is not None
        assert figures(whole) == figures(_frame_each(events, None, "g", None))
        assert list(whole.sent) == list(dict.fromkeys(e.stream for e in events))


def test_what_needs_a_look_goes_to_the_event_loop() -> None:
    """A message that is not plain UTF-8 (a lone surrogate) or a datagram over the manager's
    limit is not framed a page at a time; the page still goes out as the loop frames it."""
    ok = LogEvent(1, "fine", 2, "s", "")
    surrogate = LogEvent(2, "bad \ud800", 3, "s", "")
    huge = LogEvent(3, "x" * (MAX_DATAGRAM - len(HEADER) + 1), 4, "s", "")
    for odd in (surrogate, huge):
        events = [ok, odd]
        assert _frame_whole(events) is None
        assert figures(frame_page(events, None, "g")) == figures(
            _frame_each(events, None, "g", None)
        )
    assert frame_page([ok, huge], None, "g").tally.truncated == 1
    assert frame_page([ok], None, "g").wire == [HEADER + b"fine"]
