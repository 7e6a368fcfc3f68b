"""One Kinesis record of a CloudWatch Logs subscription, decoded; pure.

CloudWatch Logs delivers a subscription's events as gzip'd JSON::

    {"messageType": "DATA_MESSAGE", "owner": "123456789012",
     "logGroup": "/aws/lambda/app", "logStream": "2026/12/01/[$LATEST]0f1e",
     "subscriptionFilters": ["to-siem"],
     "logEvents": [{"id": "3807...", "timestamp": 1796200276614, "message": "..."}]}

``CONTROL_MESSAGE`` records (sent when a subscription is created, to check the
destination) carry no events. A record that is neither is ``Undecodable``: the reader
logs it and moves on, so one bad record never stalls its shard.

Anyone allowed kinesis:PutRecord on the stream can write a record, so what one record may
cost is bounded by what CloudWatch Logs writes: a record over Kinesis' size, unpacking past
the cap, or holding more JSON values than 10,000 events can (counted with byte scans) is
``Refused`` (an ``Undecodable``) before it is parsed; one parsed (its cost bounded by then)
with more than 10,000 events or a message over CloudWatch Logs' limit is refused too.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from itertools import islice

from ..model import LogEvent

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"
# A Kinesis record's data is at most 1 MiB (the default, and all CloudWatch Logs writes; a
# stream can be raised to 10 MiB, but not by a subscription's records).
MAX_RECORD = 1024 * 1024
# A subscription message holds the events of one PutLogEvents call: at most 10,000 events,
# their messages at most 1,048,576 bytes together, counted with 26 bytes for each event.
MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1024 * 1024
EVENT_OVERHEAD = 26
# An event's message is at most 1 MB since April 2025 (256 KiB before): at most the whole
# batch less its own overhead.
MAX_MESSAGE = MAX_BATCH_BYTES - EVENT_OVERHEAD
# The unpacked JSON: 1 MiB of messages, each byte at most 6 characters in JSON (a control
# byte becomes \u00XX), plus about 128 bytes of JSON around each of 10,000 events (keys, a
# 56-digit id, a 13-digit timestamp) and the group, stream and owner names: 7.3 MiB at
# worst, rounded up. The cap is on what one record can make us unpack.
MAX_UNPACKED = 8 * 1024 * 1024
# JSON values a message may hold, counted before it is parsed (strings, and the commas and
# opening brackets outside strings: every value but a number or a literal is one of these,
# and every number or literal but the first of its list or object follows a comma). An
# event counts 9: 5 strings (3 keys, the id and the message), its object, 3 commas; with
# ``extractedFields`` (a filter pattern naming fields) 3 more and 3 a field. 64 an event
# leaves room for 17 fields (VPC flow logs have 14). Parsed, that many values took 24 MiB
# as lists, objects or strings, 52 MiB as one object of 320,000 keys, where 8 MiB of "[],"
# alone would take 200 MiB.
MAX_VALUES = 64 * MAX_EVENTS + 1024
# Every byte but a quote and the counted marks, deleted to set strings apart.
_NOT_COUNTED = bytes(set(range(256)) - set(b'",[{'))
_SLICE = 64 * 1024


class Undecodable(ValueError):
    """A record that is not a CloudWatch Logs subscription message."""


class Refused(Undecodable):
    """A record past a bound of what CloudWatch Logs writes: refused before it is parsed."""


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
    if len(data) > MAX_RECORD:
        raise Refused(f"its data is {len(data)} bytes, more than a Kinesis record's {MAX_RECORD}")
    if data[:2] != b"\x1f\x8b":
        return data  # plain JSON, as a producer of our own might write it
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        text = inflater.decompress(data, MAX_UNPACKED + 1)
    except zlib.error as exc:
        raise Undecodable(f"not valid gzip: {exc}") from None
    if len(text) > MAX_UNPACKED:
        raise Refused(
            f"it unpacks to more than {MAX_UNPACKED} bytes, more than a subscription "
            "message's JSON can be"
        )
    if not inflater.eof:
        raise Undecodable("not valid gzip: the data ends before the gzip stream does")
    return text


def _values(text: bytes) -> int:
    """How many JSON values ``text`` holds at most (exactly, for the counted kinds, when it
    is valid JSON): strings, and commas and opening brackets outside them. Byte scans; the
    strings' insides are set apart only when the whole text holds too many marks."""
    # In valid JSON a backslash is only ever inside a string, each starting a two-character
    # escape; read from the left, "\\\\" pairs are whole escapes, then every \" left is one.
    bare = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    strings = bare.count(b'"') // 2
    if strings > MAX_VALUES:
        return strings
    marks = bare.count(b",") + bare.count(b"[") + bare.count(b"{")
    if strings + marks <= MAX_VALUES:
        return strings + marks
    # Messages full of commas or brackets: count the marks outside strings only. Of the
    # quotes and marks alone, every other piece between quotes is outside; split a slice at
    # a time, so that the pieces held stay few.
    residue = bare.translate(None, _NOT_COUNTED)
    outside, inside = 0, False
    for start in range(0, len(residue), _SLICE):
        pieces = residue[start : start + _SLICE].split(b'"')
        outside += sum(map(len, islice(pieces, 1 if inside else 0, None, 2)))
        inside ^= len(pieces) % 2 == 0  # an odd number of quotes in this slice
    return strings + outside


def _text(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise Undecodable(f"{key} is missing or not a string")
    return value


def _overlong(message: str) -> int:
    """The message's size in UTF-8 when it is over ``MAX_MESSAGE``, else 0."""
    if len(message) <= MAX_MESSAGE // 4:
        return 0  # at most 4 bytes a character: surely within the bound
    size = len(message.encode("utf-8", "surrogatepass"))
    return size if size > MAX_MESSAGE else 0


def _parse(data: bytes) -> object:
    text = _unpack(data)
    encoding = json.detect_encoding(text)
    if encoding not in ("utf-8", "utf-8-sig"):
        raise Undecodable(f"not JSON in UTF-8 (in {encoding})")
    values = _values(text)
    if values > MAX_VALUES:
        raise Refused(
            f"it holds more JSON values ({values}) than {MAX_EVENTS} log events can, the "
            "most a subscription message holds"
        )
    try:
        # Decoded here, not by json.loads: the bytes are let go before parsing begins.
        whole = text.decode(encoding, "surrogatepass")
        del text
        return json.loads(whole)
    except (ValueError, RecursionError) as exc:
        raise Undecodable(f"not JSON: {exc}") from None


def decode(data: bytes, arrival_ms: int = 0) -> Subscription | None:
    """The subscription message in a record's data; None for a CONTROL_MESSAGE. Raises
    ``Refused`` for a record past a bound of what CloudWatch Logs writes, ``Undecodable``
    for anything else."""
    body = _parse(data)
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
    if len(raw) > MAX_EVENTS:
        raise Refused(
            f"it holds {len(raw)} log events, more than the {MAX_EVENTS} a subscription "
            "message holds"
        )
    events = []
    for item in raw:
        if not isinstance(item, dict):
            raise Undecodable("a log event is not a JSON object")
        timestamp, message = item.get("timestamp"), item.get("message")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise Undecodable("a log event has no integer timestamp")
        if not isinstance(message, str):
            raise Undecodable("a log event has no message string")
        size = _overlong(message)
        if size:
            raise Refused(
                f"a log event's message is {size} bytes, more than CloudWatch Logs' {MAX_MESSAGE}"
            )
        event_id = item.get("id", "")
        events.append(LogEvent(timestamp, message, arrival_ms or timestamp, stream, str(event_id)))
    filters = body.get("subscriptionFilters")
    names = tuple(str(f) for f in filters) if isinstance(filters, list) else ()
    return Subscription(owner, group, stream, tuple(events), names)
