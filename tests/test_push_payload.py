"""Kinesis records of a CloudWatch Logs subscription, decoded (push.payload)."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from aws_wodle.model import LogEvent
from aws_wodle.push.payload import (
    MAX_EVENTS,
    MAX_MESSAGE,
    MAX_RECORD,
    MAX_UNPACKED,
    MAX_VALUES,
    Refused,
    Undecodable,
    decode,
)
from pushsupport import control_message


def record(body: object, *, packed: bool = True) -> bytes:
    data = json.dumps(body).encode()
    return gzip.compress(data) if packed else data


DATA = {
    "messageType": "DATA_MESSAGE",
    "owner": "111122223333",
    "logGroup": "/aws/lambda/app",
    "logStream": "2026/12/01/[$LATEST]0f1e",
    "subscriptionFilters": ["to-siem"],
    "logEvents": [
        {"id": "3807", "timestamp": 1796200276614, "message": "first"},
        {"id": "3808", "timestamp": 1796200276615, "message": '{"json": "stays text"}'},
    ],
}


def test_data_message_gives_its_events_with_stream_and_id() -> None:
    """A DATA_MESSAGE gives owner, group and each event with its stream, id and time."""
    message = decode(record(DATA), arrival_ms=1796200277000)
    assert message is not None
    assert (message.owner, message.group, message.stream) == (
        "111122223333",
        "/aws/lambda/app",
        "2026/12/01/[$LATEST]0f1e",
    )
    assert message.filters == ("to-siem",)
    assert message.events == (
        LogEvent(1796200276614, "first", 1796200277000, "2026/12/01/[$LATEST]0f1e", "3807"),
        LogEvent(
            1796200276615,
            '{"json": "stays text"}',
            1796200277000,
            "2026/12/01/[$LATEST]0f1e",
            "3808",
        ),
    )


def test_plain_json_is_accepted() -> None:
    """A record that is JSON without gzip (a producer of one's own) is read as well."""
    message = decode(record(DATA, packed=False))
    assert message is not None
    assert [e.message for e in message.events] == ["first", '{"json": "stays text"}']


def test_control_message_is_skipped() -> None:
    """CONTROL_MESSAGE records (CloudWatch Logs checking the destination) give nothing."""
    control = control_message(1)
    assert decode(record(control)) is None


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        (b"not json at all", "JSON"),
        (gzip.compress(b"[1, 2]", mtime=0), "object"),
        (record({**DATA, "messageType": "OTHER"}), "messageType"),
        (record({k: v for k, v in DATA.items() if k != "logGroup"}), "logGroup"),
        (record({**DATA, "logEvents": "x"}), "logEvents"),
        (record({**DATA, "logEvents": [{"id": "1", "message": "m"}]}), "timestamp"),
        (record({**DATA, "logEvents": [{"id": "1", "timestamp": 1}]}), "message"),
        (json.dumps(DATA).encode("utf-16"), "UTF-8"),
    ],
)
def test_undecodable_records_raise_one_error_type(data: bytes, says: str) -> None:
    """Whatever is wrong with a record, the reader sees one error type naming it."""
    with pytest.raises(Undecodable, match=says):
        decode(data)


# A refused record costs no more than unpacking up to the cap and scanning the bytes: far
# under a second of CPU (a few tens of ms here), where parsing the bomb took 7-9 s.
QUICK_SECONDS = 1.0


def refusal(data: bytes) -> tuple[str, float]:
    """Why ``decode`` refuses ``data``, and the CPU seconds it took to say so."""
    started = time.process_time()
    with pytest.raises(Refused) as caught:
        decode(data)
    return str(caught.value), time.process_time() - started


def padded(size: int) -> bytes:
    """A DATA_MESSAGE of exactly ``size`` bytes of JSON (a field of spaces pads it), gzip'd."""
    head = json.dumps({**DATA, "pad": ""})
    text = head[:-2] + " " * (size - len(head)) + head[-2:]
    assert len(text) == size
    return gzip.compress(text.encode())


def events(count: int, message: str = "m", **extra: object) -> list[dict[str, object]]:
    return [
        {"id": f"{38071234567890 + i:056d}", "timestamp": 1796200276614 + i,
         "message": f"{message} {i}", **extra}
        for i in range(count)
    ]  # fmt: skip


def test_a_gzip_bomb_is_refused_before_it_is_parsed() -> None:
    """The reported attack (2.2 million events, 61 MiB unpacked, from about 150 KiB) is
    refused for its unpacked size, in well under a second of CPU."""
    why, seconds = refusal(bomb())
    assert "unpacks to more than" in why
    assert seconds < QUICK_SECONDS


def test_the_unpacked_cap_is_exact() -> None:
    """JSON of exactly the unpacked cap is read; one byte more is refused."""
    assert decode(padded(MAX_UNPACKED)) is not None
    assert "unpacks to more than" in refusal(padded(MAX_UNPACKED + 1))[0]


def test_a_swarm_of_tiny_events_under_the_cap_is_refused_unparsed() -> None:
    """200,000 tiny events (6 MiB unpacked, under the cap) are refused by counting the
    JSON values in the bytes, before any event is parsed, in well under a second."""
    why, seconds = refusal(swarm())
    assert "more JSON values" in why
    assert seconds < QUICK_SECONDS


def test_more_events_than_a_subscription_message_holds_are_refused() -> None:
    """10,001 ordinary events pass the value count but not the event count."""
    why, _ = refusal(record({**DATA, "logEvents": events(MAX_EVENTS + 1)}))
    assert f"{MAX_EVENTS + 1} log events" in why


def counted(value: object) -> int:
    """The values ``payload`` counts in a parsed JSON document: strings (keys among them),
    and a bracket for each list or object and a comma between each two of its items."""
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return 1 + max(len(value) - 1, 0) + sum(1 + counted(v) for v in value.values())
    if isinstance(value, list):
        return 1 + max(len(value) - 1, 0) + sum(counted(v) for v in value)
    return 0


@pytest.mark.parametrize("extra", [0, 1])
def test_the_value_count_is_exact_outside_strings(extra: int) -> None:
    """A message of exactly the most JSON values is read, one more is refused, however
    many commas, brackets, quotes and backslashes its strings hold."""
    note = ',[{"\\' * 50_000  # marks in a string, and escapes to read past
    body = {**DATA, "logEvents": [], "note": note, "pad": []}
    body["pad"] = [0] * (MAX_VALUES + extra - counted(body) + 1)
    assert counted(body) == MAX_VALUES + extra
    if extra:
        assert f"({MAX_VALUES + 1})" in refusal(record(body))[0]
    else:
        assert decode(record(body)) is not None


def test_a_message_longer_than_cloudwatch_logs_takes_is_refused() -> None:
    """A message of the most bytes PutLogEvents takes (counted in UTF-8, here 2 bytes a
    character) is read; one byte more is refused."""
    longest = "é" * (MAX_MESSAGE // 2) + "a" * (MAX_MESSAGE % 2)
    message = decode(record({**DATA, "logEvents": [{"timestamp": 1, "message": longest}]}))
    assert message is not None
    assert len(message.events[0].message.encode()) == MAX_MESSAGE
    over = record({**DATA, "logEvents": [{"timestamp": 1, "message": longest + "a"}]})
    assert f"{MAX_MESSAGE + 1} bytes" in refusal(over)[0]


def test_a_record_larger_than_kinesis_takes_is_refused() -> None:
    """Record data over 1 MiB (here plain JSON) is refused before anything else."""
    data = json.dumps(DATA).encode()
    data += b" " * (MAX_RECORD + 1 - len(data))
    why, _ = refusal(data)
    assert f"{MAX_RECORD + 1} bytes" in why


def test_a_full_subscription_message_is_read() -> None:
    """10,000 events with extracted fields (14, as VPC flow logs' pattern names) and JSON
    messages full of commas, brackets, quotes and backslashes are all read, quickly."""
    text = json.dumps({"level": "info", "path": 'C:\\temp\\"x"', "items": [1, [2, 3], {}]})
    fields = {f"field{i}": f"value,{i}" for i in range(14)}
    data = record({**DATA, "logEvents": events(MAX_EVENTS, text, extractedFields=fields)})
    started = time.process_time()
    message = decode(data)
    seconds = time.process_time() - started
    assert message is not None
    assert len(message.events) == MAX_EVENTS
    assert message.events[-1].message == f"{text} {MAX_EVENTS - 1}"
    assert seconds < QUICK_SECONDS


def test_a_megabyte_of_control_characters_fits_the_unpacked_cap() -> None:
    """CloudWatch Logs' largest batch at its worst JSON escaping (a control byte becomes
    six characters) is read: the cap leaves room for it."""
    chunk = "\x01" * (MAX_MESSAGE // 8)
    data = record({**DATA, "logEvents": [{"timestamp": 1, "message": chunk}] * 8})
    assert len(gzip.decompress(data)) > 6_000_000
    message = decode(data)
    assert message is not None
    assert [e.message for e in message.events] == [chunk] * 8


def bomb() -> bytes:
    """The attack as reported: gzip'd JSON of 2.2 million tiny events, about 61 MiB
    unpacked (under the old 64 MiB cap) from a record of about 150 KiB."""
    head = json.dumps({**DATA, "logEvents": []})[:-2].encode()
    events = b'{"timestamp":1,"message":""},' * 2_200_000
    return gzip.compress(head + events[:-1] + b"]}", compresslevel=9)


def swarm(count: int = 200_000) -> bytes:
    """A record of ``count`` tiny events: far more than a subscription message holds, yet
    small enough unpacked (about 6 MiB) to pass an unpacked-size cap."""
    return record({**DATA, "logEvents": [{"timestamp": 1, "message": ""}] * count})
