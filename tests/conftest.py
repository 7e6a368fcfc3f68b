"""Shared fixtures: a real moto server, a real datagram socket, and the aws-wodle command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


# moto makes an event readable the moment it accepts it: no settle margin is needed against
# it (tests of AWS's eventual consistency go through the AWS-like double, with the default).
TEST_FLAGS = ("--settle", "0s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """A moto server in its own process on a free loopback port."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, **BASE_ENV, **(extra_env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)

    def post(self, path: str, body: bytes = b"", content_type: str = "text/plain") -> None:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        urllib.request.urlopen(request, timeout=10).read()

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def client(self, service: str = "logs", region: str = "us-east-1", **kw: Any) -> Any:
        kw.setdefault("aws_access_key_id", "testing")
        kw.setdefault("aws_secret_access_key", "testing")
        return boto3.client(service, region_name=region, endpoint_url=self.url, **kw)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, emptied for this test."""
    moto_server.reset()
    return moto_server


@dataclass
class Sink:
    """A bound Unix datagram socket standing in for the manager's queue."""

    path: str
    sock: socket.socket | None = None
    received: list[bytes] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)

    def bind(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(self.path)
        sock.settimeout(0.1)
        self.sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        assert self.sock is not None
        while not self._stop.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            try:
                self.received.append(self.sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def unbind(self) -> None:
        """Take the socket away, as a stopping manager does, without losing what it holds:
        the name goes first, then reading is shut (later sends fail with EPIPE), and what is
        queued is drained before the socket closes."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RD)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.sock is not None:
            self.sock.setblocking(False)
            while True:
                try:
                    self.received.append(self.sock.recv(65536))
                except OSError:
                    break
            self.sock.close()
            self.sock = None

    def messages(self) -> list[str]:
        """Received payloads without the header, decoded."""
        header = b"1:Wazuh-AWS:"
        out = []
        for data in self.received:
            assert data.startswith(header), data[:40]
            out.append(data[len(header) :].decode("utf-8"))
        return out

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def lost_and_repeated(self, expected: set[str]) -> tuple[int, int]:
        """Events of ``expected`` (all distinct) never received, and receptions beyond one."""
        got = self.messages()
        return len(expected - set(got)), len(got) - len(set(got))


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A bound queue socket in a short private directory (socket paths max 107 bytes)."""
    folder = tempfile.mkdtemp(prefix="awq")
    s = Sink(os.path.join(folder, "queue"))
    s.bind()
    yield s
    s.unbind()
    shutil.rmtree(folder, ignore_errors=True)


def now_ms() -> int:
    return int(time.time() * 1000)


def seed(logs: Any, group: str, streams: dict[str, list[str]], *, start: int | None = None) -> int:
    """Create a group (if needed) and streams holding these messages, 1 ms apart.

    Returns the timestamp of the first event.
    """
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    first = start if start is not None else now_ms() - 60_000
    for name, messages in streams.items():
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, messages, first)
    return first


def put(
    logs: Any, group: str, stream: str, messages: list[str], first: int, *, step: int = 1
) -> None:
    """Put messages into a stream, timestamps from ``first`` ``step`` ms apart."""
    for i in range(0, len(messages), 10_000):
        chunk = messages[i : i + 10_000]
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[
                {"timestamp": first + (i + j) * step, "message": m} for j, m in enumerate(chunk)
            ],
        )


def service_xml(endpoint: str, groups: str, regions: str = "us-east-1", **options: str) -> str:
    body = [f"<aws_log_groups>{groups}</aws_log_groups>"]
    if regions:
        body.append(f"<regions>{regions}</regions>")
    body.append(f"<service_endpoint>{endpoint}</service_endpoint>")
    body.append(f"<sts_endpoint>{endpoint}</sts_endpoint>")
    for key, value in options.items():
        body.append(f"<{key}>{value}</{key}>")
    inner = "\n    ".join(body)
    return f'  <service type="cloudwatchlogs">\n    {inner}\n  </service>\n'


def write_config(
    folder: Path, services: str, *, interval: str = "5m", extra: str = "", name: str = "ossec.conf"
) -> Path:
    text = (
        "<ossec_config>\n"
        '<wodle name="aws-s3">\n'
        "  <disabled>no</disabled>\n"
        f"  <interval>{interval}</interval>\n"
        "  <run_on_start>yes</run_on_start>\n"
        f"{extra}"
        f"{services}"
        "</wodle>\n"
        "</ossec_config>\n"
    )
    path = folder / name
    path.write_text(text)
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **BASE_ENV)
    env.pop("AWS_DEFAULT_REGION", None)
    env.pop("AWS_PROFILE", None)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run ``aws-wodle ARGS`` as a real process; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "aws_wodle", *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Setup:
    """A test's working files: config, state, queue."""

    folder: Path
    sink: Sink
    moto: MotoServer

    @property
    def state(self) -> str:
        return str(self.folder / "state.db")

    def config(self, services: str, **kw: Any) -> Path:
        return write_config(self.folder, services, **kw)

    def service(self, groups: str, regions: str = "us-east-1", **options: str) -> str:
        return service_xml(self.moto.url, groups, regions, **options)

    def once(self, config: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
        return run_cli(
            "run",
            "--once",
            "--config",
            str(config),
            "--queue",
            self.sink.path,
            "--state",
            self.state,
            *TEST_FLAGS,
            *extra,
            env=env,
        )


def start_daemon(
    setup: Setup,
    config: Path,
    stderr: Any = subprocess.PIPE,
    *extra: str,
    env: dict[str, str] | None = None,
) -> Any:
    """Start ``aws-wodle run`` (the long-running daemon) as a real process."""
    return subprocess.Popen(
        [sys.executable, "-m", "aws_wodle", "run", "--config", str(config),
         "--queue", setup.sink.path, "--state", setup.state, *TEST_FLAGS, *extra],
        env=env or cli_env(), stderr=stderr, text=True,
    )  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path, sink: Sink, moto: MotoServer) -> Setup:
    return Setup(tmp_path, sink, moto)


# "What it survives": each fault test records what it measured; when every one of them ran
# and passed in a session, the table in README.md is rewritten from these measurements.
SURVIVAL_ROWS = (
    "kill -9",
    "manager away at start",
    "manager restarts mid-run",
    "manager queue full",
    "throttling and failures",
    "token refused",
    "token past 24 h",
    "SIGTERM mid-run",
    "bad input",
    "bad state file",
)
SURVIVAL_ENV = "AWS_WODLE_SURVIVAL_DIR"


def pytest_configure(config: pytest.Config) -> None:
    """The controlling process (not an xdist worker) names a folder for the measurements;
    workers inherit it through the environment."""
    if not hasattr(config, "workerinput"):
        os.environ[SURVIVAL_ENV] = tempfile.mkdtemp(prefix="aws-wodle-survival-")


def record_survival(fault: str, how: str, measured: str, lost: int, repeated: int) -> None:
    """Keep one row of the README's "What it survives" table."""
    assert fault in SURVIVAL_ROWS, fault
    row = {"fault": fault, "how": how, "measured": measured, "lost": lost, "repeated": repeated}
    name = "".join(c if c.isalnum() else "-" for c in fault) + ".json"
    (Path(os.environ[SURVIVAL_ENV]) / name).write_text(json.dumps(row))


def survival_table(rows: dict[str, dict[str, object]]) -> str:
    lines = [
        "| fault | how the test injects it | what it measured | events lost | events repeated |",
        "|---|---|---|---|---|",
    ]
    for fault in SURVIVAL_ROWS:
        r = rows[fault]
        lines.append(f"| {fault} | {r['how']} | {r['measured']} | {r['lost']} | {r['repeated']} |")
    return "\n".join(lines)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput") or exitstatus != 0:
        return
    folder = Path(os.environ.get(SURVIVAL_ENV, "/nonexistent"))
    rows = {}
    for path in folder.glob("*.json"):
        row = json.loads(path.read_text())
        rows[row["fault"]] = row
    shutil.rmtree(folder, ignore_errors=True)
    if set(rows) != set(SURVIVAL_ROWS):
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    begin, end = "<!-- survival:begin -->", "<!-- survival:end -->"
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{survival_table(rows)}\n{end}{tail}")
