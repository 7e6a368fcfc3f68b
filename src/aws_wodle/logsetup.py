"""Logging to stderr, with every configured secret masked at every level.

Formats: ``syslog`` starts each line with its syslog priority (``<3>`` error,
``<4>`` warning, ``<6>`` info, ``<7>`` debug), which systemd's journal reads as the line's
level; ``json`` writes one JSON object a line for log shippers; ``plain`` adds a timestamp
for a terminal. Without a choice, a terminal gets ``plain`` and anything else ``syslog``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

# These libraries log request and response bodies at DEBUG, and STS answers carry secret
# keys and session tokens: they never log below WARNING, whatever our level.
_QUIET = ("botocore", "boto3", "urllib3", "s3transfer")


class SecretFilter(logging.Filter):
    """Replaces known secrets by '***' in every record, whatever logger produced it."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for secret in self.secrets:
                if secret and secret in text:
                    text = text.replace(secret, "***")
            record.msg = text
            record.args = None
        return True


SECRETS = SecretFilter()


def add_secrets(values: Iterable[str | None]) -> None:
    """Mask these values in every log line from now on."""
    SECRETS.secrets.update(v for v in values if v)


FORMATS = ("syslog", "json", "plain")


def priority(level: int) -> int:
    """The syslog priority of a logging level."""
    if level >= logging.ERROR:
        return 3
    if level >= logging.WARNING:
        return 4
    if level >= logging.INFO:
        return 6
    return 7


class SyslogFormatter(logging.Formatter):
    """``<6>INFO aws_wodle.collector: message``: the journal keeps the level."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"<{priority(record.levelno)}>{record.levelname} {record.name}: "
        text += record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, priority, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "priority": priority(record.levelno),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(doc, ensure_ascii=False)


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
        "plain": logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"),
    }
    handler.setFormatter(formatters[fmt])
    handler.addFilter(SECRETS)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return fmt
