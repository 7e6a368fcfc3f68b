"""The opt-in envelope: an event sent as a JSON object that says where it came from.

The manager's aws module sends its other services' events as
``{"integration": "aws", "aws": {...}}``: its JSON decoder turns every key into a field
(``aws.log_info.log_group``...), and its stock rule 80200 (``integration`` is ``aws``) is
the parent of every AWS rule. An enveloped CloudWatch Logs event follows that shape::

    {"integration": "aws",
     "aws": {"source": "cloudwatchlogs",
             "log_info": {"log_group": "...", "log_stream": "...",
                          "aws_account_id": "...", "aws_region": "...",
                          "event_id": "...",           # FilterLogEvents reads only
                          "timestamp": "2024-01-31T12:00:00.123Z",
                          "ingestion_time": "2024-01-31T12:00:01.456Z"},
             "message": "the raw message, as a JSON string"}}

A datagram must fit the manager's 65,535 bytes: a message too long for that is cut inside
the JSON string (at a character), and ``log_info`` says so with ``"truncated": true`` and
the message's full size in ``message_bytes``; the datagram stays valid JSON.
"""

from __future__ import annotations

import json
import time

from ..model import LogEvent
from .forward import HEADER, MAX_DATAGRAM

_OPEN = '{"integration":"aws","aws":{"source":"cloudwatchlogs","log_info":{"log_group":'
_MESSAGE = ',"message":'
_CLOSE = b"}}"
# One encoder for every event: json.dumps with options builds a new one per call.
_quote = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def iso_ms(ms: int) -> str:
    """A time in ms since the epoch as ISO 8601 UTC with milliseconds."""
    seconds, rest = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:03d}Z"


def _utf8(text: str) -> bytes:
    # An unpaired surrogate (possible through the JSON API) becomes a \udXXX escape, which
    # is valid inside a JSON string, instead of an error.
    return text.encode("utf-8", "backslashreplace")


def _quoted(message: str) -> bytes:
    return _utf8(_quote(message))


class Envelope:
    """Frames the events of one group (of one account and region) in the envelope."""

    __slots__ = ("_account", "_group", "_second", "_stamp")

    def __init__(self, account: str, region: str, group: str) -> None:
        self._group = _OPEN + _quote(group) + ',"log_stream":'
        self._account = f',"aws_account_id":{_quote(account)},"aws_region":{_quote(region)}'
        # Events come in time order: the text of the last second is reused.
        self._second = -1
        self._stamp = ""

    def _iso(self, ms: int) -> str:
        seconds, rest = divmod(ms, 1000)
        if seconds != self._second:
            self._second = seconds
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{self._stamp}.{rest:03d}Z"

    def _head(self, event: LogEvent, extra: str = "") -> bytes:
        """The datagram up to the message: the header, and ``log_info`` with ``extra``."""
        parts = [self._group, _quote(event.stream), self._account]
        if event.event_id:
            parts.append(f',"event_id":{_quote(event.event_id)}')
        parts.append(f',"timestamp":"{self._iso(event.timestamp)}"')
        parts.append(f',"ingestion_time":"{iso_ms(event.ingestion_time)}"')
        parts.append(extra)
        parts.append("}" + _MESSAGE)
        return HEADER + _utf8("".join(parts))

    def frame(self, event: LogEvent) -> tuple[bytes, bool]:
        """The datagram of one event, and whether its message had to be cut to fit."""
        head = self._head(event)
        message = _quoted(event.message)
        if len(head) + len(message) + len(_CLOSE) <= MAX_DATAGRAM:
            return head + message + _CLOSE, False
        size = len(_utf8(event.message))
        head = self._head(event, f',"truncated":true,"message_bytes":{size}')
        room = MAX_DATAGRAM - len(head) - len(_CLOSE)
        cut = _longest_fitting(event.message, room)
        return head + _quoted(event.message[:cut]) + _CLOSE, True


def _longest_fitting(message: str, room: int) -> int:
    """The most characters of ``message`` whose JSON string fits in ``room`` bytes.

    Every character takes at least one byte, so the answer is at most ``room``; the size
    of the quoted prefix only grows with its length, so a binary search finds it."""
    lo, hi = 0, min(len(message), max(room, 0))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(_quoted(message[:mid])) <= room:
            lo = mid
        else:
            hi = mid - 1
    return lo
