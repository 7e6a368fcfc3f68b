"""The one rule for events already sent at a boundary, used by every reader.

Reads resume from a timestamp, and CloudWatch Logs returns events sorted by timestamp: a
resumed read sees again the events sent at that very millisecond. A ``Boundary`` keeps a
digest of each of them, so the resumed read skips exactly those (twins included, one digest
each) and sends the others.
"""

from __future__ import annotations

import hashlib
import operator
from collections import Counter
from itertools import compress

from ..model import Boundary, LogEvent

_TIMESTAMP = operator.itemgetter(0)  # a LogEvent's timestamp, at C speed


def digest(event: LogEvent) -> str:
    """A short fingerprint of an event, to recognise it when it is read again: its stream,
    timestamp and message (without a stream, as per-stream positions were kept before)."""
    if event.stream:
        raw = f"{event.stream}\x00{event.timestamp}\x00{event.message}"
    else:
        raw = f"{event.timestamp}\x00{event.message}"
    return hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def stream_digest(event: LogEvent) -> str:
    """The fingerprint without the stream: how per-stream positions keep their boundary."""
    return digest(event._replace(stream=""))


class Seen:
    """Answers, event by event in timestamp order, whether an event was already sent
    according to a boundary; each digest stands for one event."""

    __slots__ = ("_all", "_key", "_left", "_ts")

    def __init__(self, boundary: Boundary, *, by_stream: bool = True) -> None:
        self._ts = boundary.ts
        self._all = Boundary.ALL in boundary.digests
        self._left = Counter(d for d in boundary.digests if d != Boundary.ALL)
        self._key = digest if by_stream else stream_digest

    def none_from(self, ts: int) -> bool:
        """Whether the boundary says no event at ``ts`` or newer was sent."""
        return self._ts is None or ts > self._ts

    def sent(self, event: LogEvent) -> bool:
        """Whether ``event`` is among those the boundary says were sent (or older)."""
        if self._ts is None or event.timestamp > self._ts:
            return False
        if event.timestamp < self._ts or self._all:
            return True
        if not self._left:
            return False
        mark = self._key(event)
        if self._left[mark] > 0:
            self._left[mark] -= 1
            return True
        return False


def advance(boundary: Boundary, sent: list[LogEvent]) -> Boundary:
    """The boundary after ``sent`` (none older than the boundary) went out: the newest
    timestamp and the digests of every event sent at it."""
    if not sent:
        return boundary
    stamps = list(map(_TIMESTAMP, sent))
    newest = max(stamps)
    if boundary.ts is not None and newest < boundary.ts:
        return boundary
    at = tuple(map(digest, compress(sent, map(newest.__eq__, stamps))))
    if newest == boundary.ts:
        return Boundary(newest, boundary.digests + at)
    return Boundary(newest, at)
