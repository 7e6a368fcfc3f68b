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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from awsproxy import AwsLike, AwsProxy
from support.ownerdir import service_dir  # noqa: F401 - a fixture, for the tests that use it
from survival import SURVIVAL_ROWS
from survival import json_path as survival_json
from survival import write as write_survival

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
# Every read covers the lookback (--late-every 0): these suites put events stamped minutes
# back (``seed`` stamps a minute back) and expect the very next run to send them, which with
# the default split only a sweep does. The split, the default, is tested by test_split.py,
# the fault tests (``Via.flags``), the live tests and the systemd container test.
TEST_FLAGS = ("--settle", "0s", "--late-every", "0")


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


@pytest.fixture(scope="session")
def push_server() -> Iterator[Any]:
    """A moto server for the push path (Kinesis, DynamoDB, CloudWatch Logs), answering one
    request at a time as AWS's conditional writes are atomic; see ``pushsupport``."""
    from pushsupport import push_moto

    with push_moto() as running:
        yield running


@pytest.fixture
def push(push_server: Any) -> Any:
    """The session's push moto server, emptied for this test."""
    push_server.reset()
    return push_server


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


class Lines:
    """The stderr lines of a running process, read as they come (its stderr a pipe)."""

    def __init__(self, proc: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def wait(self, text: str, count: int = 1, timeout: float = 60) -> bool:
        """Wait until ``count`` lines hold ``text``; whether they came in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in list(self.lines)) >= count:
                return True
            time.sleep(0.05)
        return False

    def text(self) -> str:
        self._thread.join(timeout=15)
        return "".join(self.lines)


@pytest.fixture
def setup(tmp_path: Path, sink: Sink, moto: MotoServer) -> Setup:
    return Setup(tmp_path, sink, moto)


# The AWS-like double (tests/awsproxy.py): moto behind a proxy of ours that gives it AWS's
# read-after-write delay, stale stream fields, 1 MB and short pages, and exclusive endTime.


@pytest.fixture
def double(moto: MotoServer) -> Iterator[Callable[..., AwsProxy]]:
    """A factory of AWS-like proxies in front of this test's (emptied) moto server:
    ``double(AwsLike(...))``, or ``double()`` for every behaviour on; each stops at the
    end of the test."""
    made: list[AwsProxy] = []

    def make(like: AwsLike | None = None, **kw: Any) -> AwsProxy:
        proxy = AwsProxy(moto.url, like=like if like is not None else AwsLike.all_on(), **kw)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


@dataclass
class Via:
    """Where writers and the collector reach CloudWatch Logs: moto itself, or the AWS-like
    double in front of it with every behaviour on (then the collector runs with a settle
    margin above the double's visibility delay, and a test waits that margin out before the
    collection that must see everything)."""

    moto: MotoServer
    proxy: AwsProxy | None = None

    @property
    def url(self) -> str:
        return self.moto.url if self.proxy is None else self.proxy.url

    @property
    def settle(self) -> float:
        """The collector's settle margin: 0 against moto (read-after-write consistent), one
        second above the double's longest visibility delay through it."""
        return 0.0 if self.proxy is None else self.proxy.like.max_visibility + 1.0

    def flags(self) -> tuple[str, ...]:
        """The fault tests' flags: the settle margin, and reads split by lateness as by
        default (after ``TEST_FLAGS``, they override its ``--late-every 0``)."""
        return ("--settle", f"{self.settle:g}s", "--late-every", "5m")

    def client(self, service: str = "logs", region: str = "us-east-1", **kw: Any) -> Any:
        kw.setdefault("aws_access_key_id", "testing")
        kw.setdefault("aws_secret_access_key", "testing")
        return boto3.client(service, region_name=region, endpoint_url=self.url, **kw)

    def service(self, groups: str, regions: str = "us-east-1", **options: str) -> str:
        return service_xml(self.url, groups, regions, **options)

    def settled(self) -> None:
        """Return once everything put so far is readable and older than the settle margin
        by AWS's clock, so that the collector's next read forwards all of it."""
        if self.proxy is not None:
            self.proxy.wait_settled(self.settle)


@pytest.fixture(params=["moto", "awslike"])
def via(request: pytest.FixtureRequest, moto: MotoServer) -> Iterator[Via]:
    """Each test using it runs twice: straight against moto, and through the AWS-like
    double with every behaviour on (seeded from the test's name)."""
    if request.param == "moto":
        yield Via(moto)
        return
    seed_value = zlib.crc32(request.node.nodeid.encode())
    proxy = AwsProxy(moto.url, like=AwsLike.all_on(seed_value))
    yield Via(moto, proxy)
    proxy.stop()


# "What it survives": each fault test records what it measured through the AWS-like double;
# when every one of them ran and passed in a session, the rows go to a JSON file (see
# tests/survival.py, which puts them in README.md: the test session leaves the tree clean).
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    folder = Path(os.environ.get(SURVIVAL_ENV, "/nonexistent"))
    rows = {}
    for path in folder.glob("*.json"):
        row = json.loads(path.read_text())
        rows[row["fault"]] = row
    shutil.rmtree(folder, ignore_errors=True)
    if exitstatus == 0 and set(rows) == set(SURVIVAL_ROWS):
        write_survival(survival_json(), rows)
