"""Stage 1 of reading ossec.conf: the manager's own XML dialect, read as the manager reads it.

The manager does not use an XML library: its reader (``os_xml``) is a small hand-written
state machine, and every file it accepts must be accepted here, with the same values:

- several root elements may follow one another, and any text between them is skipped;
- ``<!`` opens a comment, which ends at the first ``-->`` or ``!>`` (so ``<!DOCTYPE ...>`` is
  a comment that is never closed); comments are left out of the text around them;
- ``&`` is an ordinary character and entities are not decoded: ``&amp;`` is five characters;
- a backslash before ``<`` makes it text (an odd run of backslashes; the backslashes stay in
  the text), except before ``<!``, which is a comment all the same;
- an element's text is what follows its last child element (the manager keeps only that);
- attribute values are quoted with ``"`` or ``'``, may not hold ``>``, are followed by a
  space, ``>`` or ``/``; a name and its ``=`` may not be apart, ``=`` and the quote may;
- ``<a/>`` and ``<a />`` are empty elements (after ``<a x="1"/`` the manager does not read
  the ``>``: it is skipped at the top, and becomes text of the parent inside an element);
- the closing tag must match the name exactly (``</a >`` does not close ``<a>``);
- no run of text, name or attribute value may reach ``MAX_RUN`` bytes, no element may be
  nested deeper than ``MAX_DEPTH``, no element may carry more than ``MAX_ATTRIBUTES``;
- a NUL byte ends a name or value (C strings); the file is bytes, not necessarily UTF-8;
- an XML declaration ``<?xml version="1.0"?>`` is refused (it reads as an element whose
  attribute is followed by ``?``);
- ``<var>`` (any case) is a variable, not an element: it is skipped where it stands, and
  the elements inside it become children of the element before it at its level (of the
  root before it, at the top), or are lost when there is none.

Names and values are decoded from UTF-8 with ``surrogateescape``, so that bytes that are
not UTF-8 survive as lone surrogates (``\\udc80``-``\\udcff``) for a later stage to refuse
where they matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

# The manager's XML_MAXSIZE: a text, name or value of this many bytes is refused.
MAX_RUN = 20480
# The manager's recursion limit: the root is at depth 1.
MAX_DEPTH = 1024
# The manager's XML_MAX_ATTR_DEPTH (48) allows this many attributes on one element.
MAX_ATTRIBUTES = 49

_SPACE = frozenset(" \t\n\v\f\r")  # C's isspace() in the C locale, nothing beyond ASCII
_SPECIAL = re.compile(r"[\\<]")
_NAME_END = re.compile(r"[\\<> \t\n\v\f\r]")
_CLOSE_END = re.compile(r"[\\<>]")
_COMMENT_END = re.compile(r"-->|!>")


@dataclass(frozen=True)
class Element:
    """One element: its tag, the line of its ``<``, its attributes in order, its text (what
    follows its last child, comments left out, not stripped) and its child elements."""

    tag: str
    line: int
    attributes: tuple[tuple[str, str], ...] = ()
    text: str = ""
    children: tuple[Element, ...] = ()

    def get(self, name: str) -> str | None:
        """The value of the attribute ``name``, or None."""
        for key, value in self.attributes:
            if key == name:
                return value
        return None


class XmlError(Exception):
    """The manager's reader would refuse the file: ``line`` is where, ``message`` says why."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


def read_elements(data: bytes) -> tuple[Element, ...]:
    """The root elements of ``data``, as the manager reads them; raises XmlError."""
    return read_document(data)[0]


def read_document(data: bytes) -> tuple[tuple[Element, ...], tuple[tuple[int, str], ...]]:
    """The root elements of ``data`` as the manager reads them, and a note (line, text) for
    each ``<var>`` it skips; raises XmlError."""
    return _skip_variables(_Reader(data.decode("latin-1")).read())


def _is_variable(element: Element) -> bool:
    return element.tag.lower() == "var"


def _skip_variables(
    roots: tuple[Element, ...],
) -> tuple[tuple[Element, ...], tuple[tuple[int, str], ...]]:
    """Regroup the elements as the manager's node lists see them when ``<var>`` is about.

    The manager keeps every element in document order with its depth, and the children of
    an element are the elements one level deeper that follow it, up to the next element
    (not a variable) at its level or above. So a variable is skipped, and the elements in
    it go to the element before it at its level.
    """
    entries: list[tuple[int, Element, int | None]] = []  # level, element, entry of its var
    pending: list[tuple[int, Element, int | None]] = [(0, root, None) for root in reversed(roots)]
    while pending:
        level, element, in_var = pending.pop()
        index = len(entries)
        entries.append((level, element, in_var))
        inner = index if _is_variable(element) else None
        pending.extend((level + 1, child, inner) for child in reversed(element.children))
    if not any(_is_variable(element) for _, element, _ in entries):
        return roots, ()
    parents: list[int | None] = [None] * len(entries)
    kept_roots: list[int] = []
    collectors: list[int | None] = []  # per level, the element that takes children now
    for index, (level, element, _) in enumerate(entries):
        if _is_variable(element):
            continue
        del collectors[level:]
        collectors.extend([None] * (level - len(collectors)))
        if level == 0:
            kept_roots.append(index)
        else:
            parents[index] = collectors[level - 1]
        collectors.append(index)
    children: dict[int, list[int]] = {}
    for index, parent in enumerate(parents):
        if parent is not None:
            children.setdefault(parent, []).append(index)
    built: dict[int, Element] = {}
    for index in range(len(entries) - 1, -1, -1):
        element = entries[index][1]
        if not _is_variable(element):
            kids = tuple(built[child] for child in children.get(index, ()))
            built[index] = replace(element, children=kids)
    notes: list[tuple[int, str]] = []
    for index, (_, element, _) in enumerate(entries):
        if not _is_variable(element):
            continue
        moved = [i for i, entry in enumerate(entries) if entry[2] == index]
        moved = [i for i in moved if not _is_variable(entries[i][1])]
        text = "<var> is a variable to the manager's XML reader, not an option: it is skipped"
        if moved:
            lines = ", ".join(str(entries[i][1].line) for i in moved)
            adopters = {parents[i] for i in moved}
            if adopters == {None}:
                text += f", and the elements in it (lines {lines}) are dropped"
            else:
                adopter = entries[next(p for p in adopters if p is not None)][1]
                text += (
                    f", and the elements in it (lines {lines}) are read as children of "
                    f"<{_show(adopter.tag)}> (line {adopter.line}), as the manager reads them"
                )
        notes.append((element.line, text))
    return tuple(built[index] for index in kept_roots), tuple(notes)


def _text(raw: str) -> str:
    """A name or value as C sees it (cut at a NUL), decoded from its UTF-8 bytes."""
    return raw.split("\0", 1)[0].encode("latin-1").decode("utf-8", "surrogateescape")


def _show(raw: str) -> str:
    value = _text(raw)
    return value if len(value) <= 60 else value[:57] + "..."


@dataclass
class _Open:
    """An element being read: its text since the last child, or its closing name."""

    tag: str
    line: int
    attributes: tuple[tuple[str, str], ...]
    run: list[str] = field(default_factory=list)
    size: int = 0
    children: list[Element] = field(default_factory=list)
    text: str | None = None  # set at ``</``: then ``run`` holds the closing name


class _Reader:
    """The manager's state machine over the file's bytes (held as latin-1 text, one
    character per byte, so that sizes count bytes as the manager does)."""

    def __init__(self, source: str) -> None:
        self.s = source
        self.pos = 0
        self.line = 1
        self.escaped = False  # an odd run of backslashes was just read
        self.stack: list[_Open] = []
        self.roots: list[Element] = []

    # reading -------------------------------------------------------------------------

    def _take(self, end: int) -> str:
        """Consume the characters up to ``end`` and count their newlines."""
        chunk = self.s[self.pos : end]
        self.line += chunk.count("\n")
        self.pos = end
        return chunk

    def _getc(self) -> str:
        """The next character ('' at the end), consumed."""
        if self.pos >= len(self.s):
            return ""
        char = self.s[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def _peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def _plain(self, chunk: str) -> None:
        """Note characters that are neither a backslash nor ``<``: they end an escape."""
        if chunk:
            self.escaped = False

    def _backslash(self) -> None:
        self.escaped = not self.escaped

    # the main loop -------------------------------------------------------------------

    def read(self) -> tuple[Element, ...]:
        while True:
            if not self.stack:
                if not self._outside():
                    return tuple(self.roots)
            else:
                top = self.stack[-1]
                if top.text is None:
                    self._content(top)
                else:
                    self._closing(top)

    def _comment(self) -> bool:
        """At a ``<`` just read: skip a comment if one starts here; True when skipped."""
        if self._peek() != "!":
            return False
        start = self.line
        self.pos += 1
        end = _COMMENT_END.search(self.s, self.pos)
        if end is None:
            self._take(len(self.s))
            raise XmlError(self.line, f"comment opened on line {start} is not closed")
        self._take(end.end())
        return True

    def _outside(self) -> bool:
        """Between root elements: skip to the next element; False at the end of the file."""
        while True:
            found = _SPECIAL.search(self.s, self.pos)
            if found is None:
                self._take(len(self.s))
                return False
            self._plain(self._take(found.start()))
            char = self._getc()
            if char == "\\":
                self._backslash()
                continue
            if self._comment():
                continue
            if self.escaped:
                self.escaped = False
                continue
            line = self.line
            if self._peek() == "/":
                raise XmlError(line, "a closing tag </...> where no element is open")
            self._start(line)
            return True

    def _start(self, line: int) -> None:
        """Just after the ``<`` of an element: read its name and attributes."""
        if len(self.stack) + 1 > MAX_DEPTH:
            raise XmlError(line, f"elements nested more than {MAX_DEPTH} deep")
        name: list[str] = []
        size = 0
        while True:
            found = _NAME_END.search(self.s, self.pos)
            end = len(self.s) if found is None else found.start()
            chunk = self.s[self.pos : end]
            if size + len(chunk) >= MAX_RUN and (found is not None or len(chunk) > 0):
                self._overflow(size, "an element name")
            self._plain(self._take(end))
            name.append(chunk)
            size += len(chunk)
            char = self._getc()
            if char == "":
                raise XmlError(self.line, f"the file ends inside the tag <{_show(''.join(name))}")
            if char == "\\":
                self._backslash()
                name.append(char)
                size += 1
                continue
            if char == "<":
                if self._comment():
                    continue
                self.escaped = False
                name.append(char)
                size += 1
                continue
            self.escaped = False
            break
        tag = "".join(name)
        closed = tag.endswith("/")
        if closed:
            tag = tag[:-1]
        attributes: tuple[tuple[str, str], ...] = ()
        if char != ">":
            attributes, slash = self._attributes(tag)
            closed = closed or slash
        if closed:
            self._finish(Element(_text(tag), line, attributes))
        else:
            self.stack.append(_Open(tag, line, attributes))

    def _overflow(self, size: int, what: str) -> None:
        """Raise the manager's overflow error, on the line of the byte that reaches it."""
        self._take(min(len(self.s), self.pos + MAX_RUN - size))
        raise XmlError(self.line, f"{what} of {MAX_RUN} bytes or more (the manager's limit)")

    def _attributes(self, tag: str) -> tuple[tuple[tuple[str, str], ...], bool]:
        """The attributes after an element name; True when the tag ended with ``/``."""
        found: list[tuple[str, str]] = []
        keys: list[str] = []
        while True:
            if len(found) >= MAX_ATTRIBUTES:
                raise XmlError(
                    self.line, f"<{_show(tag)}> has more than {MAX_ATTRIBUTES} attributes"
                )
            name: list[str] = []
            while True:
                char = self._getc()
                if char == "":
                    raise XmlError(self.line, f"the file ends inside the tag <{_show(tag)}>")
                if len(name) >= MAX_RUN:
                    raise XmlError(self.line, f"an attribute name of {MAX_RUN} bytes or more")
                if char in (">", "/"):
                    if name:
                        raise XmlError(
                            self.line, f"attribute '{_show(''.join(name))}' has no value"
                        )
                    return tuple(found), char == "/"
                if char == "=":
                    break
                if char in _SPACE:
                    if name:
                        raise XmlError(
                            self.line,
                            f"attribute '{_show(''.join(name))}' has no value "
                            "(nothing may come between a name and its =)",
                        )
                    continue
                name.append(char)
            key = "".join(name)
            if key in keys:
                raise XmlError(self.line, f"attribute '{_show(key)}' is set twice")
            quote = self._getc()
            while quote in _SPACE and quote != "":
                quote = self._getc()
            if quote not in ('"', "'") or quote == "":
                raise XmlError(self.line, f"the value of attribute '{_show(key)}' is not quoted")
            value: list[str] = []
            while True:
                char = self._getc()
                if char == "":
                    raise XmlError(self.line, f"the file ends inside the tag <{_show(tag)}>")
                if len(value) >= MAX_RUN:
                    raise XmlError(self.line, f"an attribute value of {MAX_RUN} bytes or more")
                if char == ">":
                    raise XmlError(
                        self.line,
                        f"the value of attribute '{_show(key)}' is not closed "
                        "(a > may not appear inside it)",
                    )
                if char == quote:
                    break
                value.append(char)
            keys.append(key)
            found.append((_text(key), _text("".join(value))))
            after = self._getc()
            if after in _SPACE and after != "":
                continue
            if after in (">", "/") and after != "":
                return tuple(found), after == "/"
            raise XmlError(
                self.line,
                f"unexpected {after or 'end of file'!r} after {_show(key)}="
                f"{quote}{_show(''.join(value))}{quote} (expected a space, > or />)",
            )

    def _content(self, top: _Open) -> None:
        """Inside an element: read its text up to a child element or its closing tag."""
        while True:
            found = _SPECIAL.search(self.s, self.pos)
            end = len(self.s) if found is None else found.start()
            chunk = self.s[self.pos : end]
            if top.size + len(chunk) >= MAX_RUN and (found is not None or chunk):
                self._overflow(top.size, f"the text of <{_show(top.tag)}>")
            self._plain(self._take(end))
            top.run.append(chunk)
            top.size += len(chunk)
            char = self._getc()
            if char == "":
                self._unclosed()
            if char == "\\":
                self._backslash()
                top.run.append(char)
                top.size += 1
                continue
            if self._comment():
                continue
            if self.escaped:
                self.escaped = False
                top.run.append(char)
                top.size += 1
                continue
            line = self.line
            if self._peek() == "/":
                self.pos += 1
                top.text = "".join(top.run)
                top.run, top.size = [], 0
                return
            top.run, top.size = [], 0  # the manager keeps only the text after the last child
            self._start(line)
            return

    def _closing(self, top: _Open) -> None:
        """After ``</``: read the closing name up to ``>`` and close the element."""
        line = self.line
        while True:
            found = _CLOSE_END.search(self.s, self.pos)
            end = len(self.s) if found is None else found.start()
            chunk = self.s[self.pos : end]
            if top.size + len(chunk) >= MAX_RUN and (found is not None or chunk):
                self._overflow(top.size, "a closing tag")
            self._plain(self._take(end))
            top.run.append(chunk)
            top.size += len(chunk)
            char = self._getc()
            if char == "":
                self._unclosed()
            if char == ">":
                self.escaped = False
                break
            if char == "\\":
                self._backslash()
            elif char == "<":
                if self._comment():
                    continue
                self.escaped = False
            top.run.append(char)
            top.size += 1
        closing = "".join(top.run)
        if closing.split("\0", 1)[0] != top.tag.split("\0", 1)[0]:
            raise XmlError(
                self.line,
                f"mismatched closing tag </{_show(closing)}> for <{_show(top.tag)}> "
                f"opened on line {top.line}"
                + ("" if line == self.line else f" (closing tag from line {line})"),
            )
        self.stack.pop()
        assert top.text is not None
        self._finish(
            Element(_text(top.tag), top.line, top.attributes, _text(top.text), tuple(top.children))
        )

    def _finish(self, element: Element) -> None:
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.roots.append(element)

    def _unclosed(self) -> None:
        top = self.stack[-1]
        raise XmlError(
            self.line,
            f"<{_show(top.tag)}> opened on line {top.line} is not closed "
            "before the end of the file",
        )
