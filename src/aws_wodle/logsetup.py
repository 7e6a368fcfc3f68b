"""Logging to stderr, with every configured secret masked at every level."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

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


def setup(level: str = "info") -> None:
    """Send log lines to stderr at ``level`` (debug, info, warning, error)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SECRETS)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
