"""aws-wodle.toml read from its bytes: a TOML document, and the line of each of its keys.

The first stage of the settings file, as ``xmlreader`` is ossec.conf's: what stops the file
from being read at all (too large, not UTF-8, a TOML syntax error) is its one problem, with
the line where ``tomllib`` found it (``tomllines`` takes it out of the message and finds the
line of every key, which ``tomllib`` does not give).
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ConfigError, ConfigProblem
from .tomllines import Path, key_lines, syntax_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport, a dependency on Python 3.10 only
    import tomli as tomllib

# A settings file is a few hundred bytes; anything this large is a mistake.
MAX_FILE_BYTES = 1024 * 1024


def read_toml(data: bytes, path: str) -> tuple[dict[str, Any], dict[Path, int]]:
    """The document in ``data`` (read from ``path``) and the line of each key
    (``tomllines.key_lines``); raises ConfigError with the one problem that stops it."""
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([ConfigProblem(path, 0, "file too large: more than 1 MiB")])
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(path, line, "not UTF-8: save it as UTF-8")]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, message = syntax_error(str(error), text.count("\n") + 1)
        problem = ConfigProblem(path, line, f"TOML syntax error: {message}")
        raise ConfigError([problem]) from None
    return document, key_lines(text)
