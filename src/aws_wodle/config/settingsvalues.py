"""aws-wodle.toml's single values, and the problems they give, each with its line.

``Problems`` collects every problem of one file (a file's errors are reported all at once,
as ossec.conf's are); ``value`` runs one of the ``as_*`` checks of this module or of
``settingsrules`` and ``settingskinesis`` over a value and names the key in its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import ConfigProblem
from .tomllines import Path, line_of

_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """A duration: a whole number with an optional unit s, m, h, d or w (seconds)."""
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(
            f"invalid duration '{text}': a number with an optional suffix s, m, h, d or w"
        )
    return float(int(found.group(1)) * _UNITS[found.group(2)])


def show_duration(seconds: float) -> str:
    """A duration as the file writes it (``15m``, ``90s``)."""
    whole = int(seconds)
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{suffix}"
    return f"{whole}s"


def as_duration(value: object) -> float:
    """A duration as TOML gives it: text for ``parse_duration``, or whole seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'expected a duration such as "15m" or a number of seconds, got {value!r}')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return float(value)
    return parse_duration(value)


def as_flag(value: object) -> bool:
    """A TOML boolean, and nothing else (not 0, 1 or "yes")."""
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


class Problems:
    """The errors and warnings of one settings file, each with the line of the key (or of
    its table) it is about: ``lines`` from ``tomllines.key_lines``."""

    def __init__(self, path: str, lines: dict[Path, int]) -> None:
        self.path = path
        self.lines = lines
        self.errors: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def line(self, *where: str | int) -> int:
        return line_of(self.lines, where)

    def error(self, message: str, *where: str | int) -> None:
        self.errors.append(ConfigProblem(self.path, self.line(*where), message))

    def value(self, key: str, value: object, parse: Callable[[object], Any], *at: str | int) -> Any:
        """``parse(value)``, or None with an error naming ``key`` (in its ``[[group]]``,
        ``[[kinesis]]`` or table ``at``) when it raises ValueError."""
        try:
            return parse(value)
        except ValueError as error:
            if at[:1] in (("group",), ("kinesis",)):
                label = f"[[{at[0]}]] {key}"
            else:
                label = ".".join(map(str, (*at, key)))
            self.error(f"{label}: {error}", *at, key)
            return None
