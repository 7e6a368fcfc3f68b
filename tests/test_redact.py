"""Masking and escaping (``redact``), and every log format through them: secrets never shown,
names never able to start a line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from aws_wodle import redact
from aws_wodle.config.values import FORMATS
from aws_wodle.runtime import legacy, logsetup

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+example/token=="
FORGED = "web-1\n<0>EMERG forged"


@pytest.fixture(autouse=True)
def clean_slate() -> Iterator[None]:
    """Each test starts and ends knowing no secret, with logging as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    redact.forget_all()
    yield
    redact.forget_all()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configured_secrets_are_masked_at_any_length() -> None:
    """A secret the operator configured is masked wherever it appears, however short."""
    redact.remember([SECRET, "s3cr3t", None, ""])
    assert redact.mask(f"key {SECRET} and s3cr3t.") == "key *** and ***."
    assert redact.mask("nothing here") == "nothing here"


def test_resolved_credentials_shorter_than_a_real_one_are_not_masked() -> None:
    """A resolved value too short to be an AWS credential (moto's 'testing') is left alone,
    so that ordinary words are not masked; real-sized ones are."""
    redact.remember_resolved(["testing", TOKEN])
    assert redact.mask("testing with " + TOKEN) == "testing with ***"


def test_a_secret_holding_another_is_masked_whole() -> None:
    """The longest secret is masked first: no tail of it is left in clear."""
    redact.remember(["abcdef", "abcdefghijkl"])
    assert redact.mask("x abcdefghijkl y abcdef") == "x *** y ***"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("x-amz-security-token:AbC+/=123", "x-amz-security-token:***"),
        ("X-Amz-Security-Token=AbC%2B123&X-Amz-Date=1", "X-Amz-Security-Token=***&X-Amz-Date=1"),
        ('{"X-Amz-Security-Token": "AbC"}', '{"X-Amz-Security-Token": "***"}'),
        ("aws_session_token = AbC+/=", "aws_session_token = ***"),
        ("AWS_SECRET_ACCESS_KEY=wJalr/K7", "AWS_SECRET_ACCESS_KEY=***"),
        (
            '"SessionToken": "AbC", "SecretAccessKey": "K/7"',
            '"SessionToken": "***", "SecretAccessKey": "***"',
        ),
        ("<SessionToken>AbC</SessionToken>", "<SessionToken>***</SessionToken>"),
        ("Signature=" + "0a" * 32 + ", x", "Signature=***, x"),
        ("the session token is not valid", "the session token is not valid"),
    ],
)
def test_anything_that_looks_like_a_credential_is_masked(text: str, shown: str) -> None:
    """Tokens and keys never registered are masked by their look, in every usual dress."""
    assert redact.mask(text) == shown


def test_the_least_recently_used_resolved_credentials_are_forgotten_beyond_the_bound() -> None:
    """Renewed credentials pile up: past MAX_RESOLVED, the least recently used go, and
    those still in use stay."""
    redact.remember([SECRET])
    redact.remember_resolved([TOKEN])
    for n in range(redact.MAX_RESOLVED + 10):
        redact.remember_resolved([f"renewed-token-{n:06d}", TOKEN])
    known = redact.known()
    assert len(known) == redact.MAX_RESOLVED + 1
    assert {SECRET, TOKEN} <= known
    assert "renewed-token-000000" not in known
    assert f"renewed-token-{redact.MAX_RESOLVED + 9:06d}" in known


def test_control_characters_are_escaped_as_rsyslog_does() -> None:
    """C0 (newline and tab too), DEL and C1 become # and three octal digits; printable
    text, other scripts and '#' itself are unchanged."""
    text = "a\nb\rc\td\x1b[31me\x7ff\x85g\x9bh é 日本 #012"
    assert redact.escape_controls(text) == "a#012b#015c#011d#033[31me#177f#205g#233h é 日本 #012"


def test_clean_masks_before_escaping() -> None:
    """A token at the end of a line is masked whole, not with the escaped newline after it."""
    assert redact.clean("x-amz-security-token:AbC\nnext") == "x-amz-security-token:***#012next"


def failing(secret: str) -> None:
    """Raise an error quoting ``secret`` and a forged line, caused by another quoting both."""
    try:
        raise KeyError(f"inner {secret}\n<0>EMERG forged inner")
    except KeyError as exc:
        error = ValueError(f"outer {secret}\n<0>EMERG forged outer\x1b[2J")
        if sys.version_info >= (3, 11):
            error.add_note(f"note {secret}\n<0>EMERG forged note")
        raise error from exc


def log_failure() -> None:
    try:
        failing(SECRET)
    except ValueError:
        logging.getLogger("aws_wodle.test").exception("stream %s failed", FORGED)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_traceback_shows_no_secret_and_forges_no_line(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """log.exception with a configured secret in the exception, its cause and a note: the
    secret is masked in the traceback too, and no name or message starts a line."""
    logsetup.setup("debug", fmt)
    logsetup.add_secrets([SECRET])
    log_failure()
    err = capsys.readouterr().err
    assert SECRET not in err
    assert "\x1b" not in err
    if fmt == "json":
        (doc,) = [json.loads(line) for line in err.splitlines()]
        assert doc["message"] == f"stream {FORGED} failed"
        shown = doc["traceback"]
    else:
        shown = err
        assert "web-1#012<0>EMERG forged failed" in err
    assert "ValueError: outer ***#012<0>EMERG forged outer#033[2J" in shown
    assert "KeyError: 'inner ***\\n<0>EMERG forged inner'" in shown
    if sys.version_info >= (3, 11):
        assert "note ***#012<0>EMERG forged note" in shown
    assert "The above exception was the direct cause" in shown
    lines = shown.splitlines()
    assert not [line for line in lines if line.startswith("<0>")]
    if fmt == "syslog":
        assert all(line.startswith("<3>") for line in lines), lines


def test_the_old_modules_format_masks_and_prefixes_every_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """legacy's ``ERROR:`` lines: the message on one line, every traceback line prefixed,
    the secret masked."""
    legacy.setup_output(2)
    logsetup.add_secrets([SECRET])
    log_failure()
    out = capsys.readouterr().out
    assert SECRET not in out
    lines = out.splitlines()
    assert lines[0] == "ERROR: stream web-1#012<0>EMERG forged failed"
    assert all(line.startswith("ERROR: ") for line in lines), lines
    assert "ERROR: ValueError: outer ***#012<0>EMERG forged outer#033[2J" in lines


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_resolved_token_in_a_message_is_masked(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token boto3 resolved, quoted bare by an answer, is masked in every format."""
    logsetup.setup("info", fmt)
    redact.remember_resolved([TOKEN])
    logging.getLogger("aws_wodle.test").error("DescribeLogStreams failed: bad token %s", TOKEN)
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert "bad token ***" in err
