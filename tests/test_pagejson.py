"""Decoding a log events answer a chunk at a time (pure logic, no server): whatever the
chunking, the result is json.loads's, and anything else is refused, never guessed; so is
anything past AWS's limits, as soon as it shows."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from aws_wodle.aws.pagejson import (
    EVENT_TEXT_BYTES,
    MESSAGE_BYTES,
    PAGE_BYTES,
    PAGE_EVENTS,
    TooLarge,
    Unstreamable,
    capped,
    decode_events,
    decode_events_fast,
    fast,
    in_chunks,
)

CHUNK_SIZES = (1, 2, 3, 5, 7, 64, 4096, 10**9)
# Characters that stress a decoder: multibyte UTF-8 (2, 3 and 4 bytes), escapes, controls,
# JSON's own delimiters inside strings, and what json writes as \u escapes.
ALPHABET = ["a", " ", "é", "€", "😀", '"', "\\", "\n", "\t", "\u2028", "{", "}", "[", "]", ",", ":"]


Decode = Callable[..., tuple[list[Any], dict[str, Any]]]


def deep(hook: Callable[[dict[str, Any]], Any], value: Any) -> Any:
    """``value`` with ``hook`` applied to every object in it, innermost first, as json's
    object_hook is: what the orjson path's elements become, to compare them."""
    if isinstance(value, dict):
        return hook({k: deep(hook, v) for k, v in value.items()})
    if isinstance(value, list):
        return [deep(hook, v) for v in value]
    return value


def decode_fast(
    chunks: Iterable[bytes], hook: Callable[[dict[str, Any]], Any], **limits: int
) -> tuple[list[Any], dict[str, Any]]:
    return decode_events_fast(chunks, lambda values: [deep(hook, v) for v in values], **limits)


@pytest.fixture(params=["json", "orjson"])
def decode(request: pytest.FixtureRequest) -> Decode:
    """Each way a body is decoded: json's scanner, and orjson (where it is installed)."""
    if request.param == "json":
        return decode_events
    if not fast():
        pytest.skip("orjson is not installed")
    return decode_fast


def tagged(obj: dict[str, Any]) -> Any:
    """An object hook that marks what it made, to show each element went through it."""
    return ("hooked", tuple(sorted(obj.items())))


def pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def random_events(rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {
            "logStreamName": f"stream-{rng.randrange(5)}",
            "timestamp": 1_700_000_000_000 + i,
            "message": "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(60))),
            "ingestionTime": 1_700_000_000_500 + i,
            "eventId": str(rng.getrandbits(128)),
        }
        for i in range(count)
    ]


def untagged_rest(body: bytes) -> dict[str, Any]:
    rest = json.loads(body)
    rest.pop("events")
    return dict(rest)


BODIES = [
    {"events": [], "searchedLogStreams": []},
    {"events": [], "nextToken": "t"},
    {"events": [{"message": "only"}]},
    {"events": random_events(random.Random(7), 40), "nextToken": "Bx", "searchedLogStreams": []},
    {"events": random_events(random.Random(8), 9), "nextForwardToken": "f", "nextBackwardToken": 1},
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(BODIES)))
@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("layout", ["compact", "spaced", "indented"])
def test_any_chunking_decodes_what_json_loads_decodes(
    index: int, ascii_only: bool, layout: str, decode: Decode
) -> None:
    """Every chunk size, from one byte (every multibyte character and escape split) up to
    the whole body, gives the same events and other fields as json.loads."""
    dumps: dict[str, dict[str, Any]] = {
        "compact": {"separators": (",", ":")},
        "spaced": {"separators": (" , ", " : ")},
        "indented": {"indent": 3},
    }
    body = json.dumps(BODIES[index], ensure_ascii=ascii_only, **dumps[layout]).encode()
    want_events = json.loads(body, object_hook=tagged)[1]
    want_events = dict(want_events)["events"]
    for size in CHUNK_SIZES:
        events, rest = decode(pieces(body, size), tagged)
        assert events == want_events, size
        assert rest == untagged_rest(body), size


TRICKY = [
    {"message": "ends with },", "timestamp": 1},
    {"message": '},{"message":"forged","timestamp":9}', "timestamp": 2},
    {"message": "}", "timestamp": 3, "nested": {"a": [{"b": 1}, {"c": {"d": 2}}]}},
    {"message": "\\},", "timestamp": 4},
    {"message": "", "timestamp": 5, "list": [1, 2, {"x": "},"}]},
]


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_element_ends_look_alikes_inside_strings_and_nested_values_are_not_cut(
    separators: tuple[str, str], decode: Decode
) -> None:
    """Several elements at a time are decoded up to the last "}," of the text: one inside
    a message, or closing an object nested in an event, must never be taken for the end
    of an event."""
    body = json.dumps({"events": TRICKY * 30, "nextToken": "t"}, separators=separators).encode()
    want = json.loads(body, object_hook=tagged)[1][0][1]
    for size in (*CHUNK_SIZES, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 97, 101):
        events, rest = decode(pieces(body, size), tagged)
        assert events == want, size
        assert rest == {"nextToken": "t"}


def test_padding_around_every_token_is_allowed(decode: Decode) -> None:
    body = (
        b' \r\n{ \t"events"\n:\n[ {"message" : "m" , "timestamp" : 1} \n,\n'
        b'{"message":"n","timestamp":2} ] \n, "nextToken" : null }\n '
    )
    for size in CHUNK_SIZES:
        events, rest = decode(pieces(body, size), tagged)
        assert [dict(e[1])["message"] for e in events] == ["m", "n"]
        assert rest == {"nextToken": None}


def test_numbers_and_literals_are_never_cut_at_a_chunk_edge(decode: Decode) -> None:
    """Elements that are not objects end where the text ends: a number split over two
    chunks must not be read as its first half."""
    body = b'{"events":[123456789,-1.5e10,true,false,null,"s"]}'
    for size in CHUNK_SIZES:
        events, _ = decode(pieces(body, size), tagged)
        assert events == [123456789, -1.5e10, True, False, None, "s"], size


def test_lone_surrogates_pass_as_json_loads_lets_them(decode: Decode) -> None:
    body = b'{"events":[{"message":"\\ud800 and \\udfff","timestamp":1}]}'
    body_raw = (
        b'{"events":[{"message":"x'
        + "\ud800".encode("utf-8", "surrogatepass")
        + b'","timestamp":1}]}'
    )
    for data in (body, body_raw):
        for size in CHUNK_SIZES:
            events, _ = decode(pieces(data, size), tagged)
            assert events == json.loads(data, object_hook=tagged)[1][0][1], size


@pytest.mark.parametrize(
    "body",
    [
        b'{"nextToken":"t","events":[]}',
        b"[]",
        b"{}",
        b'"events"',
        b"",
        b"<html>",
        b'{"event":[]}',
        b'{"events":{}}',
    ],
)
def test_another_shape_is_refused_with_the_bytes_read(body: bytes, decode: Decode) -> None:
    """Only a body opening with its events is decoded this way; the bytes read before that
    showed are handed back, so the caller can decode it whole."""
    for size in CHUNK_SIZES:
        chunks = pieces(body, size)
        with pytest.raises(Unstreamable) as caught:
            decode(chunks, tagged)
        assert caught.value.consumed + b"".join(chunks) == body


def valid_body() -> bytes:
    page = {"events": random_events(random.Random(3), 5), "nextToken": "t"}
    return json.dumps(page, ensure_ascii=False).encode()


def test_a_body_cut_anywhere_is_an_error_never_a_shorter_page(decode: Decode) -> None:
    body = valid_body()
    for cut in range(len(body)):
        with pytest.raises(ValueError, match=r"."):
            decode(pieces(body[:cut], 16), tagged)


@pytest.mark.parametrize(
    "body",
    [
        b'{"events":[{"message":"a"}{"message":"b"}]}',
        b'{"events":[{"message":"a"},]}',
        b'{"events":[,{"message":"a"}]}',
        b'{"events":[{"message":"a"}],}',
        b'{"events":[{"message":"a"}] "nextToken":"t"}',
        b'{"events":[{"message":"a"}]}x',
        b'{"events":[{"message":"a"}]}}',
        b'{"events":[{"message":"a"}],"events":[]}',
        b'{"events":[{"message":"\xff"}]}',
        b'{"events":[{"message":"a\x01"}]}',
    ],
)
def test_malformed_json_is_an_error(body: bytes, decode: Decode) -> None:
    for size in CHUNK_SIZES:
        with pytest.raises(ValueError, match=r"."):
            decode(pieces(body, size), tagged)


def test_a_body_in_memory_goes_in_chunks_of_the_size_asked(decode: Decode) -> None:
    body = valid_body()
    chunks = list(in_chunks(body, 100))
    assert b"".join(chunks) == body
    assert {len(c) for c in chunks[:-1]} == {100}
    assert decode(in_chunks(body, 100), tagged) == decode([body], tagged)


# -- AWS's limits ----------------------------------------------------------------------


class Counted:
    """Chunks of ``size`` bytes from ``parts`` (generated, never joined whole), counting
    the bytes taken: how far a refused body was read."""

    def __init__(self, parts: Iterator[bytes], size: int = 64 * 1024) -> None:
        self.parts = parts
        self.size = size
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        held = b""
        for part in self.parts:
            held += part
            while len(held) >= self.size:
                chunk, held = held[: self.size], held[self.size :]
                self.taken += len(chunk)
                yield chunk
        if held:
            self.taken += len(held)
            yield held


def aws_event(i: int, message: str, *, ensure_ascii: bool = False) -> bytes:
    """An event as AWS writes it, with its longest id."""
    return json.dumps(
        {
            "logStreamName": "s",
            "timestamp": 1_700_000_000_000 + i,
            "message": message,
            "ingestionTime": 1_700_000_000_001 + i,
            "eventId": "9" * 56,
        },
        separators=(",", ":"),
        ensure_ascii=ensure_ascii,
    ).encode()


def page_of(*events: bytes) -> bytes:
    return b'{"events":[' + b",".join(events) + b'],"nextToken":"t"}'


def test_the_limits_are_awss_with_the_arithmetic_said() -> None:
    """10,000 events and 1 MB of messages a page, 1 MB an event; the text caps follow."""
    assert (PAGE_EVENTS, MESSAGE_BYTES) == (10_000, 1_048_576)
    assert EVENT_TEXT_BYTES == 6_295_552
    assert PAGE_BYTES == 47_316_992


def test_a_body_is_capped_at_the_chunk_that_passes_the_limit() -> None:
    """The chunks up to the limit pass untouched; the one past it is never handed on."""
    body = b"x" * 1000
    assert b"".join(capped(pieces(body, 7), 1000)) == body
    handed: list[bytes] = []
    with pytest.raises(TooLarge, match="more than 999 bytes"):
        handed.extend(capped(pieces(body, 7), 999))
    assert len(b"".join(handed)) == 994  # 142 chunks of 7: the 143rd would pass 999


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_more_events_than_a_page_holds_are_refused(size: int, decode: Decode) -> None:
    """A page of max_events passes; one more is refused, however the body is cut."""
    five = [{"message": str(i), "timestamp": i} for i in range(5)]
    body = json.dumps({"events": five}).encode()
    assert len(decode(pieces(body, size), tagged, max_events=5)[0]) == 5
    body = json.dumps({"events": [*five, {"message": "6", "timestamp": 6}]}).encode()
    with pytest.raises(TooLarge, match="more than 5 events"):
        decode(pieces(body, size), tagged, max_events=5)


def test_10000_events_pass_and_10001_are_refused_before_the_body_ends(decode: Decode) -> None:
    """At AWS's own limit: a full page of tiny events is decoded; the 10,001st event is
    refused as soon as it is decoded, not at the body's end."""
    tiny = [aws_event(i, "e") for i in range(10_000)]
    events, rest = decode(in_chunks(page_of(*tiny)), tagged)
    assert (len(events), rest) == (10_000, {"nextToken": "t"})
    endless = Counted(
        iter([b'{"events":[' + b",".join(tiny), *(b"," + tiny[0] for _ in range(10**6))])
    )
    with pytest.raises(TooLarge, match="more than 10,000 events"):
        decode(endless, tagged)
    assert endless.taken < len(page_of(*tiny)) + 2 * 64 * 1024


@pytest.mark.parametrize("size", [1, 7, 4096, 64 * 1024])
def test_an_event_whose_text_passes_the_cap_is_refused_unread(size: int, decode: Decode) -> None:
    """An event whose text is past the cap is refused once that much of it is in, whatever
    the chunking, and the rest of it is never read; one within the cap passes."""
    head = b'{"events":[{"message":"'
    within = head + b"y" * 900 + b'","timestamp":1}]}'
    assert decode(pieces(within, size), tagged, max_event_bytes=1000)[0]
    endless = Counted(iter([head, *(b"y" * 1000 for _ in range(10**5))]), size)
    with pytest.raises(TooLarge, match="one event of more than 1,000 bytes"):
        decode(endless, tagged, max_event_bytes=1000)
    assert endless.taken <= 2 * 1000 + 2 * size


def test_a_32_mb_message_is_refused_having_read_about_the_cap(decode: Decode) -> None:
    """At the real cap: a 32 MB message is refused after about 6 MB, never decoded."""
    endless = Counted(iter([b'{"events":[{"message":"', *(b"y" * 65536 for _ in range(512))]))
    with pytest.raises(TooLarge, match="one event of more than 6,295,552 bytes"):
        decode(endless, tagged)
    assert EVENT_TEXT_BYTES < endless.taken <= EVENT_TEXT_BYTES + 2 * 65536


@pytest.mark.parametrize(
    ("unit", "ensure_ascii"),
    [("a", False), ("\\", False), ("\x01", True), ("é", True), ("€", True), ("😀", True)],
)
def test_the_largest_event_aws_sends_passes_however_it_is_escaped(
    unit: str, ensure_ascii: bool, decode: Decode
) -> None:
    """A 1 MB message (26 bytes under, as AWS counts an event), written raw or with every
    character escaped, in a page with 10,000 events: never refused."""
    message = unit * ((MESSAGE_BYTES - 26) // len(unit.encode()))
    big = aws_event(0, message, ensure_ascii=ensure_ascii)
    body = page_of(big, *(aws_event(i, "") for i in range(1, PAGE_EVENTS)))
    assert len(body) <= PAGE_BYTES
    events, _ = decode(capped(in_chunks(body), PAGE_BYTES), lambda obj: obj)
    assert len(events) == PAGE_EVENTS
    assert events[0]["message"] == message
