"""Logging to stderr, every line through ``redact``: secrets masked, control characters escaped.

Formats: ``syslog`` starts each line with its syslog priority (``<3>`` error,
``<4>`` warning, ``<6>`` info, ``<7>`` debug), which systemd's journal reads as the line's
level; ``json`` writes one JSON object a line for log shippers; ``plain`` adds a timestamp
for a terminal. Without a choice, a terminal gets ``plain`` and anything else ``syslog``.

A record's message is one line whatever it holds: a newline in a name read from AWS is
written ``#012`` (rsyslog's escape), so no name can start a line, hence forge a record. A
traceback is ours and keeps its lines; only the exception messages in it, which may quote
names, are escaped, and in ``syslog`` each of its lines carries the record's priority.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Iterable
from typing import TextIO

from .. import redact

# These libraries log request and response bodies at DEBUG, and STS answers carry secret
# keys and session tokens: they never log below WARNING, whatever our level.
_QUIET = ("botocore", "boto3", "urllib3", "s3transfer")

_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def add_secrets(values: Iterable[str | None]) -> None:
    """Mask these configured values in every log line (and wherever ``redact`` masks) from
    now on."""
    redact.remember(values)


def priority(level: int) -> int:
    """The syslog priority of a logging level."""
    if level >= logging.ERROR:
        return 3
    if level >= logging.WARNING:
        return 4
    if level >= logging.INFO:
        return 6
    return 7


def message(record: logging.LogRecord) -> str:
    """A record's message, masked, on one line."""
    return redact.clean(record.getMessage())


def _chain(exc: BaseException) -> list[tuple[BaseException, str | None]]:
    """The exceptions Python prints for ``exc``, first printed first, each with the line
    printed after it (how the next one follows from it)."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    joint: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, joint))
        if current.__cause__ is not None:
            current, joint = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, joint = current.__context__, _CONTEXT
        else:
            current = None
    return chain[::-1]


def _exception_lines(exc: BaseException) -> list[str]:
    """One exception as Python prints it, without its chain: the frames' lines (our code)
    as they are; its message, each note and each line about a syntax error as one line."""
    te = traceback.TracebackException.from_exception(exc)
    lines: list[str] = []
    if te.stack:
        lines.append("Traceback (most recent call last):")
        for part in te.stack.format():
            lines.extend(part.rstrip("\n").split("\n"))
    # Python (3.11 on) writes each line of each note after the message: they are taken off
    # and written one note a line, as their own newlines may come from a name.
    raw = getattr(exc, "__notes__", None)
    notes = [str(note) for note in raw] if isinstance(raw, (list, tuple)) else []
    only = list(te.format_exception_only())
    told = sum(len(note.split("\n")) for note in notes)
    lines.extend(part.rstrip("\n") for part in only[: max(1, len(only) - told)])
    lines.extend(notes)
    for n, sub in enumerate(getattr(exc, "exceptions", ()), 1):  # an exception group's
        if isinstance(sub, BaseException):
            lines.append(f"+-- sub-exception {n}:")
            lines.extend("  " + line for line in _exception_lines(sub))
    return lines


def traceback_lines(record: logging.LogRecord) -> list[str]:
    """The record's traceback (none without one), each line masked and escaped: no line
    of it can be started by a name or an answer quoted in an exception's message."""
    if not record.exc_info or record.exc_info[1] is None:
        return []
    lines: list[str] = []
    for exc, joint in _chain(record.exc_info[1]):
        lines.extend(_exception_lines(exc))
        if joint is not None:
            lines.extend(("", joint, ""))
    return [redact.clean(line) for line in lines]


class SyslogFormatter(logging.Formatter):
    """``<6>INFO aws_wodle.poll.collector: message``: the journal keeps the level, of every line
    of a traceback too."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        text = f"{prefix}{record.levelname} {record.name}: {message(record)}"
        for line in traceback_lines(record):
            text += f"\n{prefix}{line}"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, priority, logger, message (and traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "priority": priority(record.levelno),
            "logger": record.name,
            # Masked only: JSON escapes every control character itself.
            "message": redact.mask(record.getMessage()),
        }
        lines = traceback_lines(record)
        if lines:
            doc["traceback"] = "\n".join(lines)
        return json.dumps(doc, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """``2024-05-01 12:00:00,123 INFO aws_wodle.poll.collector: message``, for a person."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{self.formatTime(record)} {record.levelname} {record.name}: {message(record)}"
        return "\n".join((text, *traceback_lines(record)))


def default_format(stream: TextIO) -> str:
    """``plain`` for a person at a terminal, ``syslog`` for the journal and everything else."""
    try:
        return "plain" if stream.isatty() else "syslog"
    except ValueError:  # a closed stream
        return "syslog"


def setup(level: str = "info", fmt: str | None = None) -> str:
    """Send log lines to stderr at ``level`` (debug, info, warning, error) in ``fmt``
    (None: ``default_format`` of stderr); returns the format used."""
    if fmt is None:
        fmt = default_format(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    formatters: dict[str, logging.Formatter] = {
        "syslog": SyslogFormatter(),
        "json": JsonFormatter(),
        "plain": PlainFormatter(),
    }
    handler.setFormatter(formatters[fmt])
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return fmt
