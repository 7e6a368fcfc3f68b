"""Decoding a log events answer a chunk at a time, never holding its whole text.

A FilterLogEvents or GetLogEvents answer of 10,000 events is one JSON body of a few
megabytes. Read whole, it exists three times at its peak: as the chunks read from the
connection, as the bytes they are joined into, and as the text ``json.loads`` decodes
those into. Here the body comes as the chunks the connection delivers: UTF-8 is decoded
incrementally, each element of the ``events`` array is decoded on its own (by the caller's
object hook) as soon as its text is in, and the text consumed is dropped. Only the fields
after the array, a few hundred bytes, are decoded whole.

Only the shape AWS sends is taken this way: an object whose first member is ``events``.
Anything else raises ``Unstreamable`` (with the bytes read so far) before any element is
decoded, for the caller to decode the body the ordinary way; malformed JSON, or a body cut
short, raises ``ValueError`` as ``json.loads`` would.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# The chunk size of a body already in memory (a connection's chunks are its own). An element
# larger than a chunk (a message near the 256 KiB event limit) simply takes several.
WINDOW_BYTES = 64 * 1024

# JSON's whitespace, as the json module defines it.
_SPACE = re.compile(r"[ \t\n\r]*")
# What may end an element of an array.
_ENDED = re.compile(r"[ \t\n\r,\]]")


class Unstreamable(ValueError):
    """The body is not an object that opens with its ``events`` array. ``consumed`` holds
    the bytes read before that showed, for the caller to decode the body another way."""

    def __init__(self, message: str, consumed: bytes = b"") -> None:
        super().__init__(message)
        self.consumed = consumed


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

    def more(self) -> bool:
        """Decode one more chunk onto the text, dropping what was consumed; False when
        the body has no more bytes."""
        if self._done:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            decoded = self._utf8.decode(b"", final=True)
        else:
            if self.consumed is not None:
                self.consumed.append(chunk)
            decoded = self._utf8.decode(chunk)
        self.text = self.text[self.pos :] + decoded
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


def _element(text: _Text, decoder: json.JSONDecoder) -> Any:
    """Decode the array element at the text's position, decoding more text while the
    element runs past what is decoded so far."""
    while True:
        try:
            value, end = decoder.raw_decode(text.text, text.pos)
        except json.JSONDecodeError:
            # An element cut by the chunk's end fails like a malformed one: tell them
            # apart by whether more text remains.
            if text.more():
                continue
            raise
        # A number may go on in the next chunk ("-1." may be "-1.5"): it is whole once a
        # delimiter follows it, or the body ends.
        cut = not isinstance(value, (dict, list, str)) and not _ENDED.search(text.text, end)
        if cut and text.more():
            continue
        text.pos = end
        return value


def _events(text: _Text, decoder: json.JSONDecoder) -> list[Any]:
    """The elements of the array whose ``[`` was just consumed, through its ``]``."""
    items: list[Any] = []
    if text.skip_space() == "]":
        text.pos += 1
        return items
    while True:
        if text.skip_space() == "":
            raise json.JSONDecodeError("Unterminated events array", text.text, text.pos)
        items.append(_element(text, decoder))
        following = text.skip_space()
        text.pos += 1
        if following == "]":
            return items
        if following != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text.text, text.pos - 1)


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
    chunks: Iterable[bytes], object_hook: Callable[[dict[str, Any]], Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The ``events`` array of the body that ``chunks`` deliver, each element decoded with
    ``object_hook``, and the object's other members. Raises ``Unstreamable`` unless the
    body opens with that array, and ``ValueError`` if its JSON is malformed or cut short."""
    text = _Text(chunks)
    _open(text)
    decoder = json.JSONDecoder(object_hook=object_hook)
    events = _events(text, decoder)
    rest = _members_after(text.rest())
    if "events" in rest:
        raise ValueError("the body names its events twice")
    return events, rest


def in_chunks(body: bytes, size: int = WINDOW_BYTES) -> Iterator[bytes]:
    """A body already in memory, a chunk of ``size`` bytes at a time."""
    view = memoryview(body)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])
