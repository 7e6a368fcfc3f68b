"""One Kinesis record of a CloudWatch Logs subscription, decoded; pure.

CloudWatch Logs delivers a subscription's events as gzip'd JSON::

    {"messageType": "DATA_MESSAGE", "owner": "123456789012",
     "logGroup": "/aws/lambda/app", "logStream": "2026/12/01/[$LATEST]0f1e",
     "subscriptionFilters": ["to-siem"],
     "logEvents": [{"id": "3807...", "timestamp": 1796200276614, "message": "..."}]}

``CONTROL_MESSAGE`` records (sent when a subscription is created, to check the
destination) carry no events. A record that is neither is ``Undecodable``: the reader
logs it and moves on, so one bad record never stalls its shard.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from ..model import LogEvent

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"
# A Kinesis record holds at most 1 MiB; its gzip'd JSON is never larger unpacked than this
# many times (a bound against a record built to exhaust memory).
MAX_UNPACKED = 64 * 1024 * 1024


class Undecodable(ValueError):
    """A record that is not a CloudWatch Logs subscription message."""


@dataclass(frozen=True)
class Subscription:
    """A decoded DATA_MESSAGE: where its events come from, and the events, each with its
    stream and event id (``ingestion_time`` is the record's arrival in the stream, the
    nearest time the payload gives to when CloudWatch Logs took the event)."""

    owner: str
    group: str
    stream: str
    events: tuple[LogEvent, ...]
    filters: tuple[str, ...] = ()


def _unpack(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data  # plain JSON, as a producer of our own might write it
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        text = inflater.decompress(data, MAX_UNPACKED)
    except zlib.error as exc:
        raise Undecodable(f"not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise Undecodable(f"unpacks to more than {MAX_UNPACKED} bytes")
    if not inflater.eof:
        raise Undecodable("not valid gzip: the data ends before the gzip stream does")
    return text


def _text(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise Undecodable(f"{key} is missing or not a string")
    return value


def decode(data: bytes, arrival_ms: int = 0) -> Subscription | None:
    """The subscription message in a record's data; None for a CONTROL_MESSAGE. Raises
    ``Undecodable`` for anything else."""
    try:
        body = json.loads(_unpack(data))
    except (ValueError, RecursionError) as exc:
        raise Undecodable(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Undecodable("not a JSON object")
    kind = body.get("messageType")
    if kind == CONTROL_MESSAGE:
        return None
    if kind != DATA_MESSAGE:
        raise Undecodable(f"unknown messageType {kind!r}")
    group, stream, owner = _text(body, "logGroup"), _text(body, "logStream"), _text(body, "owner")
    raw = body.get("logEvents")
    if not isinstance(raw, list):
        raise Undecodable("logEvents is missing or not a list")
    events = []
    for item in raw:
        if not isinstance(item, dict):
            raise Undecodable("a log event is not a JSON object")
        timestamp, message = item.get("timestamp"), item.get("message")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise Undecodable("a log event has no integer timestamp")
        if not isinstance(message, str):
            raise Undecodable("a log event has no message string")
        event_id = item.get("id", "")
        events.append(LogEvent(timestamp, message, arrival_ms or timestamp, stream, str(event_id)))
    filters = body.get("subscriptionFilters")
    names = tuple(str(f) for f in filters) if isinstance(filters, list) else ()
    return Subscription(owner, group, stream, tuple(events), names)
