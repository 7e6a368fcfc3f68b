"""A page's events made into LogEvents (pure logic, no server): the orjson path's
member-by-member conversion gives what json's object hook gives, element for element,
whatever members an event lacks or adds, and refuses what the hook refuses."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from aws_wodle.aws import streamread
from aws_wodle.aws.pagejson import MESSAGE_BYTES, TooLarge, fast, in_chunks
from aws_wodle.model import Columns, LogEvent
from test_pagejson import random_events

pytestmark = pytest.mark.skipif(not fast(), reason="orjson is not installed")

MEMBERS = ("logStreamName", "timestamp", "message", "ingestionTime", "eventId")


def body_of(events: list[Any]) -> bytes:
    return json.dumps({"events": events, "nextToken": "next"}).encode()


def both_ways(body: bytes, ids: bool) -> tuple[Any, Any]:
    """The page as the orjson path reads it off chunks, and as json's hook reads it whole."""
    with streamread.ids_wanted(ids):
        streamed = streamread._read(in_chunks(body, 1024))
        whole = streamread._whole(body)
    return streamed, whole


@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_events_lacking_or_adding_members_convert_as_the_hook_does(seed: int, ids: bool) -> None:
    rng = random.Random(seed)
    events: list[Any] = random_events(rng, rng.randrange(1, 400))
    for item in rng.sample(events, k=min(len(events), rng.randrange(4))):
        del item[rng.choice(MEMBERS)]
    for item in rng.sample(events, k=min(len(events), rng.randrange(3))):
        item["extra"] = "member AWS may add"
    (got, rest), (expected, expected_rest) = both_ways(body_of(events), ids)
    assert got == expected
    assert all(type(e) is LogEvent for e in got)
    assert rest == expected_rest == {"nextToken": "next"}
    if not ids:
        # Ids are dropped from every event the hook makes (one lacking its message or
        # timestamp is filled in later, with what it has).
        made = [
            e
            for e, item in zip(got, events, strict=True)
            if "message" in item and "timestamp" in item
        ]
        assert {e.event_id for e in made} == {""}


def test_whole_windows_take_the_fast_conversion_and_share_one_name_per_stream() -> None:
    rng = random.Random(1)
    events = random_events(rng, 2_000)
    (got, _), (expected, _) = both_ways(body_of(events), True)
    assert got == expected
    assert [e.event_id for e in got] == [e["eventId"] for e in events]
    first: dict[str, str] = {}
    for e in got:
        assert e.stream is first.setdefault(e.stream, e.stream)


def test_the_conversion_itself_takes_a_window_member_by_member_and_falls_back() -> None:
    """Called directly: the hook is never called for a window of whole events, and is
    called for each object of a window with an event lacking a member."""
    calls: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    hook = streamread._to_event(names, True)

    def counting(obj: dict[str, Any]) -> Any:
        calls.append(obj)
        return hook(obj)

    convert = streamread._converter(names, True, counting)
    rng = random.Random(2)
    whole = random_events(rng, 50)
    assert convert(whole) == [hook(dict(e)) for e in whole]
    assert calls == []
    lacking = random_events(rng, 5)
    del lacking[3]["ingestionTime"]
    converted = convert(lacking)
    assert len(calls) == 5
    assert converted[3].ingestion_time == 0


@pytest.mark.parametrize("element", [7, "text", ["a", "list"], None])
def test_an_element_that_is_not_an_object_is_refused_both_ways(element: Any) -> None:
    rng = random.Random(3)
    events: list[Any] = random_events(rng, 20)
    events.insert(9, element)
    body = body_of(events)
    with streamread.ids_wanted(True):
        with pytest.raises(ValueError, match="not an object") as streamed:
            streamread._read(in_chunks(body, 1024))
        with pytest.raises(ValueError, match="not an object") as whole:
            streamread._whole(body)
    assert str(streamed.value) == str(whole.value)


def read_as_columns(body: bytes, ids: bool = True) -> Any:
    with streamread.ids_wanted(ids), streamread.columns_wanted():
        return streamread._read(in_chunks(body, 1024))


@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_columns_hold_the_events_the_hook_makes(seed: int, ids: bool) -> None:
    """Wanted as columns, a page of whole events comes as Columns whose events are the
    hook's, ids or not; a page with an event lacking a member comes as the hook's
    LogEvents."""
    rng = random.Random(seed)
    events: list[Any] = random_events(rng, rng.randrange(1, 900))
    got, rest = read_as_columns(body_of(events), ids)
    (expected, _), _ = both_ways(body_of(events), ids)
    assert isinstance(got, Columns)
    assert got.events() == expected
    assert rest == {"nextToken": "next"}
    assert (got.event_ids is None) == (not ids)
    # Without ids, an event without its id is whole.
    needed = MEMBERS if ids else tuple(m for m in MEMBERS if m != "eventId")
    del events[rng.randrange(len(events))][rng.choice(needed)]
    got, _ = read_as_columns(body_of(events), ids)
    (expected, _), _ = both_ways(body_of(events), ids)
    assert isinstance(got, list)
    assert got == expected


@pytest.mark.parametrize("element", [7, "text", None])
def test_columns_refuse_an_element_that_is_not_an_object(element: Any) -> None:
    rng = random.Random(4)
    events: list[Any] = random_events(rng, 300)
    events.insert(250, element)
    with pytest.raises(ValueError, match="not an object"):
        read_as_columns(body_of(events))


def test_columns_keep_awss_limits() -> None:
    """As columns too: more than 10,000 events, or a message over 1 MB, is refused."""
    rng = random.Random(5)
    with pytest.raises(TooLarge, match="10,000"):
        read_as_columns(body_of(random_events(rng, 10_001)))
    big = random_events(rng, 1)[0]
    big["message"] = "€" * (MESSAGE_BYTES // 3 + 1)
    with pytest.raises(TooLarge, match="message"):
        read_as_columns(body_of([*random_events(rng, 1), big]))
