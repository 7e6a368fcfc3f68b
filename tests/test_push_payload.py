"""Kinesis records of a CloudWatch Logs subscription, decoded (push.payload)."""

from __future__ import annotations

import gzip
import json

import pytest

from aws_wodle.model import LogEvent
from aws_wodle.push.payload import Undecodable, decode
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
        (gzip.compress(b"[1, 2]"), "object"),
        (record({**DATA, "messageType": "OTHER"}), "messageType"),
        (record({k: v for k, v in DATA.items() if k != "logGroup"}), "logGroup"),
        (record({**DATA, "logEvents": "x"}), "logEvents"),
        (record({**DATA, "logEvents": [{"id": "1", "message": "m"}]}), "timestamp"),
        (record({**DATA, "logEvents": [{"id": "1", "timestamp": 1}]}), "message"),
    ],
)
def test_undecodable_records_raise_one_error_type(data: bytes, says: str) -> None:
    """Whatever is wrong with a record, the reader sees one error type naming it."""
    with pytest.raises(Undecodable, match=says):
        decode(data)


def test_a_gzip_bomb_is_refused() -> None:
    """A record that unpacks beyond 64 MiB is refused, not unpacked."""
    bomb = gzip.compress(b" " * (65 * 1024 * 1024))
    with pytest.raises(Undecodable, match="more than"):
        decode(bomb)
