"""Decoding a log events answer a chunk at a time, never holding its whole text.

A FilterLogEvents or GetLogEvents answer of 10,000 events is one JSON body of a few
megabytes. Read whole, it exists three times at its peak: as the chunks read from the
connection, as the bytes they are joined into, and as the text ``json.loads`` decodes
those into. Here the body comes as the chunks the connection delivers: UTF-8 is decoded
incrementally, the elements of the ``events`` array are decoded (by the caller's object
hook) as soon as their text is in, many at a time by json's own scanner where the text
allows it, and the text consumed is dropped. Only the fields after the array, a few
hundred bytes, are decoded whole.

Only the shape AWS sends is taken this way: an object whose first member is ``events``.
Anything else raises ``Unstreamable`` (with the bytes read so far) before any element is
decoded, for the caller to decode the body the ordinary way; malformed JSON, or a body cut
short, raises ``ValueError`` as ``json.loads`` would.

The endpoint is not trusted to keep to AWS's limits: ``capped`` stops a body at the most a
page can take, and the decoding refuses a page of more than 10,000 events or an event whose
text alone is past the most one event can take, each with ``TooLarge``, as soon as it
shows: a text that size is never decoded. An element whose text is still coming is scanned
again only once that text has doubled, so a large one costs a few scans, not one a chunk.

Where orjson is installed (the ``fast`` extra), ``decode_events_fast`` decodes the same
bodies a window at a time with it, from the bytes (no text is made), with the same limits
and the same answers: what orjson refuses and json takes (a lone surrogate), or a window
it cannot cut, goes to the scanner above.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

_loads: Callable[[bytes | bytearray], Any] | None
try:
    # Not installed by default (the ``fast`` extra): unknown to a type check without it.
    import orjson  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # the pure-Python path alone
    _loads = None
else:
    _loads = orjson.loads

# The chunk size of a body already in memory (a connection's chunks are its own). An element
# larger than a chunk (a message near the 1 MB event limit) simply takes several.
WINDOW_BYTES = 64 * 1024

# What AWS documents of a GetLogEvents or FilterLogEvents page (its API reference, as
# botocore's model carries it): at most 10,000 events and 1 MB of them, an event counted as
# its message's UTF-8 bytes + 26, and no event larger than 1 MB (it was 256 KB).
PAGE_EVENTS = 10_000
MESSAGE_BYTES = 1_048_576
# JSON writes a byte of a message as at most 6: a control character as \u001f, and a 2-, 3-
# or 4-byte character as one or two \uXXXX escapes (6 for 2, 6 for 3, 12 for 4 bytes).
ESCAPED_PER_BYTE = 6
# An event's members other than its message, written at their longest: keys, quotes, colons
# and commas (80 bytes), timestamp and ingestionTime (20 digits each: 40), eventId (AWS's
# have 56 digits; 256 allowed) and logStreamName (512 UTF-16 units, each at most a 6-byte
# \uXXXX: 3,072): 3,448 bytes, rounded up to 4 KiB for a member AWS may add.
EVENT_FIELDS_BYTES = 4 * 1024
# The text of one event: its message escaped at worst, and its other members; 6,295,552.
EVENT_TEXT_BYTES = ESCAPED_PER_BYTE * MESSAGE_BYTES + EVENT_FIELDS_BYTES
# A whole page: all its messages escaped at worst (1 MB of them in all), every event's other
# members, and 64 KiB for the page's own members (its tokens); 47,316,992 bytes (45 MiB).
PAGE_BYTES = ESCAPED_PER_BYTE * MESSAGE_BYTES + PAGE_EVENTS * EVENT_FIELDS_BYTES + 64 * 1024

# JSON's whitespace, as the json module defines it.
_BLANK = " \t\n\r"
_SPACE = re.compile(r"[ \t\n\r]*")
# What follows an element of an array, up to the next element.
_DELIMITER = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")


class Unstreamable(ValueError):
    """The body is not an object that opens with its ``events`` array. ``consumed`` holds
    the bytes read before that showed, for the caller to decode the body another way."""

    def __init__(self, message: str, consumed: bytes = b"") -> None:
        super().__init__(message)
        self.consumed = consumed


class TooLarge(Exception):
    """The answer is larger than any CloudWatch Logs sends (more bytes, more events, or a
    larger event than its limits allow); it is not read further. Not a ValueError: it is
    no malformed answer that another read might get right."""


def capped(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """The chunks of a body, raising ``TooLarge`` at the first that takes it past ``limit``
    bytes, before that chunk is used."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"a body of more than {limit:,} bytes")
        yield chunk


class _Text:
    """The body's text from a position on, decoded from its chunks of bytes as needed."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._done = False
        # surrogatepass, as json.loads decodes bytes: a lone surrogate written raw passes.
        self._utf8 = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        # The bytes read while the opening is checked; None once it was.
        self.consumed: list[bytes] | None = []
        self.text = ""
        self.pos = 0

    def more(self, at_least: int = 1) -> bool:
        """Decode more of the body onto the text, at least one chunk and ``at_least`` bytes
        (or to its end), dropping what was consumed; False when the body has no more bytes.
        The text is joined once, however many chunks that takes."""
        if self._done:
            return False
        pieces = [self.text[self.pos :]]
        got = 0
        while True:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                pieces.append(self._utf8.decode(b"", final=True))
                break
            if self.consumed is not None:
                self.consumed.append(chunk)
            pieces.append(self._utf8.decode(chunk))
            got += len(chunk)
            if got >= at_least:
                break
        self.text = "".join(pieces)
        self.pos = 0
        return True

    def skip_space(self) -> str:
        """Move past whitespace and return the next character, "" at the end."""
        while True:
            match = _SPACE.match(self.text, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def take(self, literal: str) -> bool:
        """Move past ``literal`` if the text goes on with it (after whitespace)."""
        self.skip_space()
        while len(self.text) - self.pos < len(literal) and self.more():
            pass
        if not self.text.startswith(literal, self.pos):
            return False
        self.pos += len(literal)
        return True

    def rest(self) -> str:
        """All the text not yet consumed, to the end of the body."""
        while self.more():
            pass
        return self.text[self.pos :]


def _open(text: _Text) -> None:
    """Move past ``{"events": [``, or raise Unstreamable with the bytes read so far."""
    for literal in ("{", '"events"', ":", "["):
        if not text.take(literal):
            consumed = b"".join(text.consumed or [])
            raise Unstreamable("the body does not open with its events array", consumed)
    text.consumed = None


def _bulk(
    text: str, pos: int, scan: Callable[[str, int], tuple[Any, int]], items: list[Any]
) -> int:
    """Decode in one call every element from ``pos`` to the last ``},`` of ``text`` (AWS's
    compact JSON puts one between two events), onto ``items``; returns the position after
    that comma, or ``pos`` when nothing was decoded.

    The elements are decoded as one array: ``[``, the text up to that ``}``, ``]``. That
    parses only if the ``}`` ends an element: one inside a string leaves the string open,
    and one inside an element leaves the element open, which a single ``]`` cannot close.
    """
    cut = text.rfind("},", pos)
    if cut < 0:
        return pos
    piece = "[" + text[pos : cut + 1] + "]"
    try:
        values, end = scan(piece, 0)
    except (StopIteration, json.JSONDecodeError):
        return pos
    if end != len(piece) or not isinstance(values, list):
        return pos
    items.extend(values)
    return cut + 2


def _run(
    text: str, pos: int, scan: Callable[[str, int], tuple[Any, int]], items: list[Any]
) -> tuple[int, bool]:
    """Decode the elements that lie whole in ``text`` from ``pos``, each followed by its
    delimiter, onto ``items``. Returns where decoding stopped, and whether it stopped at
    the array's ``]`` (else at an element the text does not hold whole, or a malformed
    one: only more text tells which)."""
    delimiter = _DELIMITER.match
    append = items.append
    # Whitespace cut by the end of the last text may go on here.
    space = _SPACE.match(text, pos)
    if space is not None:
        pos = space.end()
    last = len(text) - 1
    while True:
        try:
            value, end = scan(text, pos)
        except (StopIteration, json.JSONDecodeError):
            return pos, False
        if end < last and text[end] == "," and text[end + 1] not in _BLANK:
            # A comma, and the next element right after it: AWS's compact JSON.
            append(value)
            pos = end + 1
            continue
        # A number is whole once its delimiter follows ("-1." may be "-1.5").
        after = delimiter(text, end)
        if after is None:
            return pos, False
        append(value)
        if after.group(1) == "]":
            return after.end(), True
        pos = after.end()


def _events(
    text: _Text, decoder: json.JSONDecoder, max_events: int, max_event_bytes: int
) -> list[Any]:
    """The elements of the array whose ``[`` was just consumed, through its ``]``; more
    than ``max_events`` of them, or one whose text is past ``max_event_bytes``, raise
    ``TooLarge``."""
    items: list[Any] = []
    if text.skip_space() == "]":
        text.pos += 1
        return items
    # The C scanner that json.loads itself runs, called once per element.
    scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]
    while True:
        text.pos = _bulk(text.text, text.pos, scan, items)
        text.pos, closed = _run(text.text, text.pos, scan, items)
        if len(items) > max_events:
            raise TooLarge(f"more than {max_events:,} events in one page")
        if closed:
            return items
        # An element starts at text.pos that the text does not hold whole (or a malformed
        # one). Its bytes so far: a part of one element, unless the element is that large.
        held = len(text.text[text.pos :].encode("utf-8", "surrogatepass"))
        if held > max_event_bytes:
            raise TooLarge(f"one event of more than {max_event_bytes:,} bytes")
        # Scanned again once its text has doubled (or reached the cap), not every chunk.
        if not text.more(min(held, max_event_bytes + 1 - held)):
            # The text ends inside an element, or the element is malformed: either way
            # the scanner, given all there is, says where and why.
            decoder.raw_decode(text.text, text.pos)
            raise json.JSONDecodeError("Expecting ',' delimiter or ']'", text.text, len(text.text))


def _members_after(tail: str) -> dict[str, Any]:
    """The object's members after the array: ``tail`` is what follows its ``]``, either
    the object's ``}`` or a comma and more members."""
    stripped = tail.lstrip(" \t\n\r")
    if stripped.startswith(","):
        stripped = stripped[1:].lstrip(" \t\n\r")
        if not stripped.startswith('"'):
            raise json.JSONDecodeError("Expecting property name", tail, 0)
    elif not stripped.startswith("}"):
        raise json.JSONDecodeError("Expecting ',' delimiter", tail, 0)
    rest: dict[str, Any] = json.loads("{" + stripped)
    return rest


def decode_events(
    chunks: Iterable[bytes],
    object_hook: Callable[[dict[str, Any]], Any],
    *,
    max_events: int = PAGE_EVENTS,
    max_event_bytes: int = EVENT_TEXT_BYTES,
) -> tuple[list[Any], dict[str, Any]]:
    """The ``events`` array of the body that ``chunks`` deliver, each element decoded with
    ``object_hook``, and the object's other members. Raises ``Unstreamable`` unless the
    body opens with that array, ``ValueError`` if its JSON is malformed or cut short, and
    ``TooLarge`` past ``max_events`` elements or an element's text past ``max_event_bytes``
    (the body's own size is for the caller to bound, with ``capped``)."""
    text = _Text(chunks)
    _open(text)
    decoder = json.JSONDecoder(object_hook=object_hook)
    events = _events(text, decoder, max_events, max_event_bytes)
    rest = _members_after(text.rest())
    if "events" in rest:
        raise ValueError("the body names its events twice")
    return events, rest


def in_chunks(body: bytes, size: int = WINDOW_BYTES) -> Iterator[bytes]:
    """A body already in memory, a chunk of ``size`` bytes at a time."""
    view = memoryview(body)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


# The bytes that open a body of the shape taken, and how many are read to see them: AWS's
# and moto's open with ``{"events":[`` at once; padding beyond this goes the whole way.
_OPENING = re.compile(rb"[ \t\n\r]*\{[ \t\n\r]*\"events\"[ \t\n\r]*:[ \t\n\r]*\[")
_OPENING_BYTES = 64
# The bytes orjson decodes at a time: it takes some 14 times a text's size while decoding
# it (880 KB for 64 KiB of events), so a window is an eighth of a read's chunk (some 115 KB
# while it is decoded), as little as the text scanner holds; an element longer than this
# is decoded alone.
_ORJSON_WINDOW = 8 * 1024
# The key the array is decoded under at the end: no answer has it, so a second ``events``
# member shows.
_TAIL_KEY = "\u0000aws-wodle events"
_TAIL_OPEN = b'{"\\u0000aws-wodle events":['


def fast() -> bool:
    """Whether orjson is there for ``decode_events_fast``."""
    return _loads is not None


def decode_events_fast(
    chunks: Iterable[bytes],
    convert: Callable[[list[Any]], list[Any]],
    *,
    max_events: int = PAGE_EVENTS,
    max_event_bytes: int = EVENT_TEXT_BYTES,
) -> tuple[list[Any], dict[str, Any]]:
    """``decode_events`` with orjson: the ``events`` array of the body that ``chunks``
    deliver, and its other members, with the same refusals. ``convert`` takes the elements
    of each window as plain JSON values (never an object hook) and returns what to keep.

    A window is decoded as one array: ``[``, the bytes from an element's start up to the
    last ``},``'s ``}``, ``]``, which parses only if that ``}`` ends an element (the reason
    ``_bulk`` gives). A window that does not parse is tried again once its bytes have
    doubled; past ``max_event_bytes`` of them, the rest goes to the text scanner, which
    says exactly what is wrong."""
    loads = _loads
    if loads is None:
        raise RuntimeError("orjson is not installed")
    source = iter(chunks)
    # The bytes not yet decoded (a bytes, not a bytearray: one that drops its front keeps
    # its memory, and would grow to the whole body).
    buf = b""
    while len(buf) < _OPENING_BYTES:
        chunk = next(source, None)
        if chunk is None:
            break
        buf += chunk
    opening = _OPENING.match(buf)
    if opening is None:
        raise Unstreamable("the body does not open with its events array", buf)
    buf = buf[opening.end() :]
    items: list[Any] = []
    after_comma = False  # buf starts after a comma: an element must follow
    retry_at = 0  # held bytes before windows that did not parse are tried again
    ended = False
    while True:
        if len(buf) >= retry_at:
            rest, failed = _windows(buf, loads, convert, items, max_events)
            after_comma = after_comma or len(rest) < len(buf)
            buf = rest
            retry_at = 2 * len(buf) if failed else 0
        if ended:
            break
        if len(buf) > max_event_bytes:
            return _scan_rest(
                buf, source, convert, items, after_comma=after_comma, max_events=max_events,
                max_event_bytes=max_event_bytes,
            )  # fmt: skip
        chunk = next(source, None)
        if chunk is None:
            ended = True
            retry_at = 1 << 62  # the whole rest is decoded below
        else:
            buf += chunk
    if after_comma and buf.lstrip(b" \t\n\r").startswith(b"]"):
        raise json.JSONDecodeError("Expecting value", buf.decode("utf-8", "replace"), 0)
    try:
        whole = loads(_TAIL_OPEN + buf)
    except json.JSONDecodeError:  # orjson's is one
        # What json takes and orjson does not (a lone surrogate), or malformed JSON.
        whole = json.loads(_TAIL_OPEN + buf)
    if not isinstance(whole, dict):
        raise ValueError("the answer is not a JSON object")
    items.extend(convert(whole.pop(_TAIL_KEY)))
    if len(items) > max_events:
        raise TooLarge(f"more than {max_events:,} events in one page")
    if "events" in whole:
        raise ValueError("the body names its events twice")
    return items, whole


def _windows(
    buf: bytes,
    loads: Callable[[bytes], Any],
    convert: Callable[[list[Any]], list[Any]],
    items: list[Any],
    max_events: int,
) -> tuple[bytes, bool]:
    """Decode ``buf``, which starts at an element, a window at a time onto ``items``;
    returns the bytes left (an element not whole yet) and whether a window did not parse."""
    pos = 0
    while True:
        cut = buf.rfind(b"},", pos, pos + _ORJSON_WINDOW)
        if cut < 0:  # an element longer than a window: up to its end, if it is in
            cut = buf.find(b"},", pos + _ORJSON_WINDOW - 1)
            if cut < 0:
                return buf[pos:], False
        try:
            values = loads(b"[" + buf[pos : cut + 1] + b"]")
        except json.JSONDecodeError:  # orjson's is one
            return buf[pos:], True
        items.extend(convert(values))
        if len(items) > max_events:
            raise TooLarge(f"more than {max_events:,} events in one page")
        pos = cut + 2


def _scan_rest(
    held: bytes,
    source: Iterator[bytes],
    convert: Callable[[list[Any]], list[Any]],
    items: list[Any],
    *,
    after_comma: bool,
    max_events: int,
    max_event_bytes: int,
) -> tuple[list[Any], dict[str, Any]]:
    """The rest of ``decode_events_fast``'s body, from an element's start, by the text
    scanner: an element past ``max_event_bytes`` is refused, anything malformed named."""
    text = _Text(chain([held], source))
    text.consumed = None
    if after_comma and text.skip_space() == "]":
        raise json.JSONDecodeError("Expecting value", text.text, text.pos)
    rest_events = _events(text, json.JSONDecoder(), max_events - len(items), max_event_bytes)
    items.extend(convert(rest_events))
    rest = _members_after(text.rest())
    if "events" in rest:
        raise ValueError("the body names its events twice")
    return items, rest
