"""Where things are in a TOML file: the line of each key, and of a syntax error.

``tomllib`` gives values without positions, and a syntax error's position only inside its
message. A settings error must name its file and line as ossec.conf's errors do, so this
scans the text for table headers and ``key =`` lines: enough for the flat files we read
(keys at the start of a line, ``[table]`` and ``[[array]]`` headers, multi-line strings
skipped). A key it cannot place gets its table's line, else none.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE_OR_QUOTED = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"\s*({_DOTTED})\s*=")
_PART = re.compile(_BARE_OR_QUOTED)
_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _parts(dotted: str) -> list[str]:
    parts = []
    for found in _PART.finditer(dotted):
        part = found.group(0)
        if part[:1] in ('"', "'"):
            part = part[1:-1]
        parts.append(part)
    return parts


def key_lines(text: str) -> dict[Path, int]:
    """The line (from 1) of each table and key: ``("lookback",)``, ``("rates",
    "GetLogEvents")``, ``("group", 0)`` for the first ``[[group]]``, ``("group", 0,
    "match")`` for a key in it."""
    lines: dict[Path, int] = {}
    table: Path = ()
    arrays: dict[Path, int] = {}
    closing: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:
            if closing in line:
                closing = None
            continue
        header = _HEADER.match(line)
        if header is not None:
            path: Path = tuple(_parts(header.group(2)))
            if header.group(1) == "[[":
                # The array itself is at its first element: an unknown [[name]] is placed.
                lines.setdefault(path, number)
                index = arrays.get(path, 0)
                arrays[path] = index + 1
                path = (*path, index)
            table = path
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key is None:
            continue
        lines.setdefault((*table, *_parts(key.group(1))), number)
        rest = line[key.end() :]
        for quotes in ('"""', "'''"):
            if rest.count(quotes) % 2 == 1:
                closing = quotes
    return lines


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of ``path``, else of its nearest enclosing table; 0 when unknown."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return 0


def syntax_error(message: str, lines_in_file: int) -> tuple[int, str]:
    """A tomllib syntax error's line and its message without the position."""
    found = _WHERE.search(message)
    if found is not None:
        line, column = int(found.group(1)), int(found.group(2))
        return line, f"{message[: found.start()]} (column {column})"
    found = _AT_END.search(message)
    if found is not None:
        return max(lines_in_file, 1), f"{message[: found.start()]} (at the end of the file)"
    return 0, message
