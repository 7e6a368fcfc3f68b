"""Beside the manager: no credential in any output, and no name from AWS that forges a line.

An endpoint of ours refuses every request with an error quoting the request's
``x-amz-security-token`` and ``Authorization`` headers, as some endpoints and proxies do; the
collector runs against it with a profile's session token, the environment's, and a
``credential_process`` that hands out new credentials on every request. Every output is then
searched: stderr in each log format, the state file's bytes, ``status`` in text and JSON, and
the metrics. Names come from moto: groups holding terminal escapes and newlines, a stream
named to forge an emergency line, with an event over the manager's limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from conftest import Lines, MotoServer, Sink, cli_env, free_port, put, run_cli, service_xml
from conftest import seed as seed_groups

ACCOUNT = "123456789012"
PROFILE_SECRET = "pRoFiLe/SeCrEt/K7MDENG/bPxRfiCYzEXAMPLEKEY"
PROFILE_TOKEN = "IQoJb3JpZ2luX2VjEPROFILE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+pr0f1le=="
ENV_SECRET = "eNvIrOn/SeCrEt/K7MDENG/bPxRfiCYzEXAMPLEKEY"
ENV_TOKEN = "IQoJb3JpZ2luX2VjEENVIRON//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+env1ron=="
# A credential_process that hands out new credentials on each call, expiring within
# botocore's mandatory refresh window, so that every request renews them. It keeps a list of
# what it handed out, for the test to search for.
RENEWING = """\
import datetime, json, os, sys
issued = sys.argv[1]
n = sum(1 for _ in open(issued)) if os.path.exists(issued) else 0
secret = f"rEnEwEd/SeCrEt/{n:04d}/bPxRfiCYzEXAMPLEKEY"
token = f"IQoJb3JpZ2luX2VjERENEWED{n:04d}//////////wEaCXVzLWVhc3QtMSJHMEUC+renewed=="
with open(issued, "a") as out:
    out.write(secret + " " + token + "\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
print(json.dumps({"Version": 1, "AccessKeyId": f"ASIARENEWED{n:04d}", "SecretAccessKey": secret,
                  "SessionToken": token, "Expiration": expiry.isoformat()}))
"""
FORGED_STREAM = "web-1\n<0>EMERG forged by a stream name"
ESCAPED_GROUP = "app\x1b[2J\x1b[31mred\x1b[0m"
NEWLINE_GROUP = "app\n<0>EMERG forged by a group name"
# Over the manager's 64 KB limit: the event is truncated, and a warning names its stream.
BIG_EVENT = "x" * 70_000


class EchoEndpoint:
    """Refuses every request (STS's XML or CloudWatch Logs' JSON) with a message quoting its
    security token and Authorization headers; remembers each token it saw."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                return

            def do_POST(self) -> None:
                outer.answer(self)

            def do_GET(self) -> None:
                outer.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        token = handler.headers.get("X-Amz-Security-Token", "")
        self.tokens.append(token)
        message = (
            f"The security token included in the request is invalid: {token}; as received: "
            f"x-amz-security-token:{token} Authorization: {handler.headers.get('Authorization')}"
        )
        if handler.headers.get("X-Amz-Target"):
            kind = "application/x-amz-json-1.1"
            body = json.dumps({"__type": "ValidationException", "message": message}).encode()
        else:
            kind = "text/xml"
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>"
                f"<Message>{escape(message)}</Message></Error>"
                "<RequestId>echo</RequestId></ErrorResponse>"
            ).encode()
        handler.send_response(400)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[EchoEndpoint]:
    endpoint = EchoEndpoint()
    yield endpoint
    endpoint.stop()


@dataclass
class Source:
    """Where the collector's credentials come from, and every secret it may have used."""

    env: dict[str, str]
    options: dict[str, str]
    issued: Path | None = None
    fixed: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        found = list(self.fixed)
        if self.issued is not None and self.issued.exists():
            found += self.issued.read_text().split()
        return found


def credentials(kind: str, folder: Path) -> Source:
    """A profile with a session token, the environment's keys and token, or a profile whose
    credential_process renews them on every request."""
    if kind == "profile":
        path = folder / "credentials"
        path.write_text(
            "[collector]\naws_access_key_id = ASIAPROFILEEXAMPLE01\n"
            f"aws_secret_access_key = {PROFILE_SECRET}\naws_session_token = {PROFILE_TOKEN}\n"
        )
        env = cli_env(AWS_SHARED_CREDENTIALS_FILE=str(path))
        return Source(env, {"aws_profile": "collector"}, fixed=[PROFILE_SECRET, PROFILE_TOKEN])
    if kind == "env":
        env = cli_env(
            AWS_ACCESS_KEY_ID="ASIAENVIRONEXAMPLE01",
            AWS_SECRET_ACCESS_KEY=ENV_SECRET,
            AWS_SESSION_TOKEN=ENV_TOKEN,
        )
        return Source(env, {}, fixed=[ENV_SECRET, ENV_TOKEN])
    script = folder / "renewing.py"
    script.write_text(RENEWING)
    issued = folder / "issued.txt"
    config = folder / "config"
    config.write_text(
        f"[profile renewing]\ncredential_process = {sys.executable} {script} {issued}\n"
    )
    return Source(cli_env(AWS_CONFIG_FILE=str(config)), {"aws_profile": "renewing"}, issued)


def refused_services(url: str, options: dict[str, str]) -> str:
    """Two services against the endpoint: one asks STS who it is (refused), the other has
    its account and asks CloudWatch Logs (refused)."""
    return service_xml(url, "app", **options) + service_xml(
        url, "web", aws_account_id=ACCOUNT, **options
    )


def write_config(folder: Path, services: str, interval: str = "5m") -> Path:
    path = folder / "ossec.conf"
    path.write_text(
        '<ossec_config>\n<wodle name="aws-s3">\n  <disabled>no</disabled>\n'
        f"  <interval>{interval}</interval>\n  <run_on_start>yes</run_on_start>\n"
        f"{services}</wodle>\n</ossec_config>\n"
    )
    return path


def once(config: Path, state: Path, sink: Sink, fmt: str, env: dict[str, str]) -> str:
    """``run --once`` at debug level in ``fmt``; its stdout and stderr."""
    result = run_cli(
        "run", "--once", "--config", str(config), "--queue", sink.path, "--state", str(state),
        "--settle", "0s", "--log-level", "debug", "--log-format", fmt, env=env,
    )  # fmt: skip
    return str(result.stdout) + str(result.stderr)


def state_bytes(state: Path) -> bytes:
    """The state file and its journal files, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(state.parent.glob(state.name + "*")))


@pytest.mark.parametrize("kind", ["profile", "env", "process"])
def test_no_output_shows_a_session_token_or_secret_key_an_endpoint_echoes(
    kind: str, tmp_path: Path, sink: Sink, echo: EchoEndpoint
) -> None:
    """Errors quoting the request's token reach stderr (every format), the state file and
    ``status`` with the token masked, whatever source the credentials came from."""
    source = credentials(kind, tmp_path)
    config = write_config(tmp_path, refused_services(echo.url, source.options))
    state = tmp_path / "state.db"
    outputs = {
        fmt: once(config, state, sink, fmt, source.env) for fmt in ("syslog", "json", "plain")
    }
    outputs["state file"] = state_bytes(state).decode("utf-8", "replace")
    outputs["status"] = run_cli("status", "--state", str(state)).stdout
    outputs["status --json"] = run_cli("status", "--json", "--state", str(state)).stdout
    secrets = source.secrets()
    assert len([t for t in echo.tokens if t]) >= 6, echo.tokens  # each run asked STS and Logs
    assert set(echo.tokens) <= set(secrets), "the endpoint saw a token we do not know"
    if kind == "process":
        assert len(set(echo.tokens)) == len(echo.tokens), "renewed on every request"
    for where, text in outputs.items():
        assert "x-amz-security-token:***" in text, (where, text)
        for secret in secrets:
            assert secret not in text, (where, secret)
            assert secret[:24] not in text, (where, secret)


def test_the_daemons_metrics_and_log_show_no_token(
    tmp_path: Path, sink: Sink, echo: EchoEndpoint
) -> None:
    """The daemon, cycle after cycle against the echoing endpoint: its stderr and its
    metrics never show the session token."""
    source = credentials("env", tmp_path)
    config = write_config(tmp_path, refused_services(echo.url, source.options), interval="1s")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aws_wodle", "run", "--config", str(config), "--queue", sink.path,
         "--state", str(tmp_path / "state.db"), "--metrics", f"127.0.0.1:{port}",
         "--log-format", "syslog"],
        env=source.env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = Lines(proc)
    try:
        assert lines.wait("x-amz-security-token:***", count=4, timeout=60), lines.lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert "aws_wodle_failures_total" in metrics
    for text in (lines.text(), metrics):
        for secret in source.secrets():
            assert secret not in text


def seed_names(moto: MotoServer) -> None:
    """Groups named with terminal escapes and a newline, and a stream named to forge an
    emergency line holding an event over the manager's limit."""
    logs = moto.client()
    first = seed_groups(logs, ESCAPED_GROUP, {"s": ["e0"]})
    seed_groups(logs, NEWLINE_GROUP, {"s": ["n0"]}, start=first)
    seed_groups(logs, "web", {"ok": ["w0"]}, start=first)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName="web", logStreamName=FORGED_STREAM)
    put(logs, "web", FORGED_STREAM, [BIG_EVENT], first + 1)


def forged(text: str) -> list[str]:
    """Lines that start as another record would, or carry a raw terminal escape."""
    return [
        line
        for line in text.splitlines()
        if line.startswith(("<0>", "<1>", "<2>")) or "\x1b" in line
    ]


@pytest.mark.parametrize("fmt", ["syslog", "plain", "json"])
def test_names_from_aws_never_forge_a_line(
    fmt: str, tmp_path: Path, sink: Sink, moto: MotoServer
) -> None:
    """A stream named 'web-1\\n<0>EMERG ...' with a truncated event, groups with escapes and
    newlines: each log record is one line (syslog: each starts with its own priority), no
    raw escape; the names are shown escaped as rsyslog does."""
    seed_names(moto)
    config = write_config(tmp_path, service_xml(moto.url, "app*,web"))
    state = tmp_path / "state.db"
    err = once(config, state, sink, fmt, cli_env())
    assert not forged(err), err
    lines = err.splitlines()
    if fmt == "syslog":
        assert all(line[:3] in {"<3>", "<4>", "<6>", "<7>"} for line in lines), lines
        (warning,) = [line for line in lines if "truncated" in line]
        assert warning.startswith("<4>WARNING ")
        assert "web-1#012<0>EMERG forged by a stream name" in warning
        assert any("app#033[2J#033[31mred#033[0m" in line for line in lines)
    elif fmt == "json":
        docs = [json.loads(line) for line in lines]
        assert any(FORGED_STREAM in doc["message"] for doc in docs)
    setup_sent = {len(m) for m in sink.messages()}
    assert max(setup_sent) < len(BIG_EVENT)  # the big event went out truncated


def test_status_shows_names_escaped_and_json_keeps_them(
    tmp_path: Path, sink: Sink, moto: MotoServer
) -> None:
    """``status`` prints each group and stream on its own line, with no raw escape; ``status
    --json`` gives the names back exactly."""
    seed_names(moto)
    config = write_config(tmp_path, service_xml(moto.url, "app*,web"))
    state = tmp_path / "state.db"
    once(config, state, sink, "syslog", cli_env())
    text = run_cli("status", "--streams", "--state", str(state))
    assert text.returncode == 0, text.stderr
    assert not forged(text.stdout), text.stdout
    assert "app#033[2J#033[31mred#033[0m" in text.stdout
    assert "app#012<0>EMERG forged by a group name" in text.stdout
    assert "web-1#012<0>EMERG forged by a stream name" in text.stdout
    shown = run_cli("status", "--json", "--streams", "--state", str(state))
    doc = json.loads(shown.stdout)
    assert {ESCAPED_GROUP, NEWLINE_GROUP, "web"} <= {row["group"] for row in doc["groups"]}
    assert FORGED_STREAM in {row["stream"] for row in doc["streams"]}


def test_the_old_modules_output_is_never_forged(
    tmp_path: Path, sink: Sink, moto: MotoServer
) -> None:
    """``legacy`` prints the stream named to forge a line on one prefixed line."""
    seed_names(moto)
    day = time.strftime("%Y-%b-%d", time.gmtime(time.time() - 86400)).upper()
    result = run_cli(
        "legacy", "--service", "cloudwatchlogs", "--aws_log_groups", "web",
        "--regions", "us-east-1", "--only_logs_after", day, "--service_endpoint", moto.url,
        "--sts_endpoint", moto.url, "--queue", sink.path, "--state", str(tmp_path / "s.db"),
        "--settle=0", "--debug", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert all(line.startswith(("DEBUG: ", "WARNING: ", "ERROR: ")) for line in out), out
    assert any("web-1#012<0>EMERG forged by a stream name" in line for line in out), out
    assert os.path.exists(tmp_path / "s.db")
