"""Every credential in use, and the one step that masks them in text that leaves the process.

Two kinds of secrets are known: those the operator configured (``secret_key`` in ossec.conf,
the settings file or the command line), kept for the life of the process and masked at any
length; and those boto3 resolved (the secret key and session token of a profile, of the
environment, of an assumed or instance role...), registered on each request that uses them,
so that renewed credentials are known before their first answer comes back.

``mask`` replaces both by ``***``, and, as a net for a token the process never held, any
value that looks like a security token or secret key in a header, a query string, an ini
line, JSON or XML. ``escape_controls`` writes control characters as rsyslog does (``#012``
for a newline), so that names read from AWS are data: they can never start a log line or
move a terminal's cursor. ``clean`` does both, for text meant for a line of its own.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable

MASK = "***"

# Resolved credentials shorter than this are not AWS credentials (a secret access key has 40
# characters, a session token hundreds): they are placeholders such as moto's "testing",
# and masking them would turn every occurrence of an ordinary word into ***.
MIN_RESOLVED = 16
# A role's credentials are renewed about once an hour: a daemon that runs for months would
# know thousands of expired ones, each scanned for in every line. The least recently used
# beyond this many are forgotten; credentials in use are used on every request, so they
# stay (this is far more than the credentials of every account a manager collects).
MAX_RESOLVED = 512

_lock = threading.Lock()
_configured: set[str] = set()
# value -> the monotonic time it was last used.
_resolved: dict[str, float] = {}
# Longest first, so that a secret holding another is masked whole; replaced, never mutated,
# so that ``mask`` reads it without the lock.
_ordered: tuple[str, ...] = ()

_VALUE = r"[^\s\"'&,;<>()\[\]{}]+"
_NET = re.compile(
    "|".join(
        (
            # A header as a canonical request or an echo shows it (x-amz-security-token:V),
            # or a presigned URL's query string (X-Amz-Security-Token=V).
            rf"(?P<h>x-amz-security-token[\"']?\s*[:=]\s*[\"']?){_VALUE}",
            # A credentials or config file's line, or the environment.
            rf"(?P<i>\baws_(?:session_token|security_token|secret_access_key)\s*[:=]\s*[\"']?){_VALUE}",
            # STS's answers, in JSON or XML.
            r"(?P<j>\"(?:SessionToken|SecretAccessKey)\"\s*:\s*\")[^\"]*",
            r"(?P<x><(?:SessionToken|SecretAccessKey)>)[^<]*",
            # A SigV4 signature is valid for minutes: not a credential, but a replayable request.
            r"(?P<s>\bSignature=)[0-9a-fA-F]{64}",
        )
    ),
    re.IGNORECASE,
)
# C0 (with tab, newline and carriage return), DEL and C1: what a terminal or a reader of
# lines acts on.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _rebuild() -> None:
    global _ordered  # noqa: PLW0603 - one snapshot replaced whole, read without the lock
    _ordered = tuple(sorted({*_configured, *_resolved}, key=len, reverse=True))


def remember(values: Iterable[str | None]) -> None:
    """Mask these configured secrets (of any length) from now on, for good."""
    with _lock:
        fresh = {v for v in values if v} - _configured
        if fresh:
            _configured.update(fresh)
            _rebuild()


def remember_resolved(values: Iterable[str | None]) -> None:
    """Mask these credentials boto3 resolved from now on; called on each use, which keeps
    them among the ``MAX_RESOLVED`` most recently used."""
    fresh = [v for v in values if v and len(v) >= MIN_RESOLVED]
    if not fresh:
        return
    now = time.monotonic()
    with _lock:  # held for a microsecond: what it saves is a value touched while evicted
        added = False
        for value in fresh:
            added = added or value not in _resolved
            _resolved[value] = now
        if added:
            while len(_resolved) > MAX_RESOLVED:
                del _resolved[min(_resolved, key=_resolved.__getitem__)]
            _rebuild()


def known() -> frozenset[str]:
    """Every secret masked now."""
    return frozenset(_ordered)


def forget_all() -> None:
    """Know no secret (for tests of this module)."""
    with _lock:
        _configured.clear()
        _resolved.clear()
        _rebuild()


def _net(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None) + MASK


def mask(text: str) -> str:
    """``text`` with every known secret, and anything that looks like one, as ``***``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return _NET.sub(_net, text)


def _escape(match: re.Match[str]) -> str:
    return f"#{ord(match.group()):03o}"


def escape_controls(text: str) -> str:
    """Control characters (C0 including newline and tab, DEL, C1) as ``#`` and three octal
    digits, rsyslog's escape: the text stays on one line and moves no terminal."""
    return _CONTROLS.sub(_escape, text)


def clean(text: str) -> str:
    """``text`` masked, then on one line of plain characters: what a log line, a table
    cell or a status line may show of anything."""
    return escape_controls(mask(text))
