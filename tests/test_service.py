"""The daemon as systemd runs it: notifications, log priorities and formats."""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_wodle.poll.progress import Progress
from conftest import ROOT, TEST_FLAGS, Setup, cli_env, free_port, seed, start_daemon


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    """A bound datagram socket standing in for systemd's NOTIFY_SOCKET."""
    folder = tempfile.mkdtemp(prefix="awn")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(folder, "notify"))
    sock.settimeout(0.2)
    yield sock
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def drain(sock: socket.socket, seconds: float, *, after: str = "") -> list[str]:
    """The messages of ``seconds``, counted from the first that starts with ``after`` (a
    busy machine may take a while to start the daemon)."""
    got: list[str] = []
    deadline = time.monotonic() + (60 if after else seconds)
    while time.monotonic() < deadline:
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        got.append(message)
        if after and message.startswith(after):
            after = ""
            deadline = time.monotonic() + seconds
    return got


def test_ready_status_watchdog_reload_and_stop(setup: Setup, notify_socket: socket.socket) -> None:
    """READY after the config is loaded, STATUS with the cycle's figures, WATCHDOG pings,
    RELOADING on SIGHUP, STOPPING on SIGTERM."""
    seed(setup.moto.client(), "app", {"s": ["a", "b"]})
    conf = setup.config(setup.service("app"), interval="1h")
    env = cli_env(NOTIFY_SOCKET=notify_socket.getsockname(), WATCHDOG_USEC="400000")
    proc = start_daemon(setup, conf, subprocess.DEVNULL, env=env)
    try:
        first = drain(notify_socket, 3.0, after="READY=1")
        proc.send_signal(signal.SIGHUP)
        reload = drain(notify_socket, 1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    last = drain(notify_socket, 0.5)
    assert first[0].startswith("READY=1\nSTATUS=")
    statuses = [m for m in first if m.startswith("STATUS=last cycle")]
    assert statuses
    assert "2 events" in statuses[0]
    assert sum(m == "WATCHDOG=1" for m in first) >= 4
    assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in reload)
    assert any(m.startswith("READY=1\nSTATUS=configuration reloaded") for m in reload)
    assert "STOPPING=1" in last
    assert proc.returncode == 0


def test_log_lines_carry_syslog_priorities(setup: Setup) -> None:
    """Each stderr line starts with <3>, <4>, <6> or <7> after its level."""
    seed(setup.moto.client(), "good", {"s": ["x"]})
    conf = setup.config(setup.service("good,missing"))
    result = setup.once(conf, "--log-level", "debug")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines
    assert all(line[:3] in {"<3>", "<4>", "<6>", "<7>"} for line in lines), lines
    assert any(line.startswith("<3>ERROR") and "missing" in line for line in lines)
    assert any(line.startswith("<6>INFO") and "1 events" in line for line in lines)


def test_json_log_format(setup: Setup) -> None:
    """--log-format json writes one JSON object a line, with level and priority."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    result = setup.once(setup.config(setup.service("app")), "--log-format", "json")
    assert result.returncode == 0
    docs = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    summary = next(d for d in docs if "1 events" in d["message"])
    assert summary["level"] == "info"
    assert summary["priority"] == 6
    assert summary["logger"] == "aws_wodle.poll.collector"


UNITS = ("aws-wodle.service", "aws-wodle@.service")
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure_is_2_or_lower(unit: str) -> None:
    """systemd-analyze security rates each unit's exposure at 2.0 or lower."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(ROOT / "systemd" / unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next(x for x in result.stdout.splitlines() if "Overall exposure level" in x)
    exposure = float(line.split(":")[1].split()[0])
    assert exposure <= 2.0, line


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies_clean(tmp_path: Path, unit: str) -> None:
    """systemd-analyze verify finds nothing to say, with the manager's unit beside ours
    and ExecStart pointing at the installed command."""
    assert ANALYZE is not None
    installed = Path(sys.executable).parent / "aws-wodle"
    text = (ROOT / "systemd" / unit).read_text().replace("/usr/bin/aws-wodle", str(installed))
    name = unit.replace("@.", "@prod.")
    (tmp_path / unit).write_text(text)
    (tmp_path / name).write_text(text)
    (tmp_path / "wazuh-manager.service").write_text(
        "[Unit]\nDescription=stand-in for the manager\n[Service]\nExecStart=/bin/true\n"
    )
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{tmp_path}:/lib/systemd/system")
    result = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(tmp_path / name)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_metrics_on_loopback(setup: Setup) -> None:
    """--metrics serves events, bytes, calls by operation, lag by group, failures and the
    lateness of the events sent."""
    seed(setup.moto.client(), "app", {"s": ["a", "b"]})
    conf = setup.config(setup.service("app,missing"), interval="1h")
    port = free_port()
    proc = start_daemon(setup, conf, subprocess.DEVNULL, "--metrics", f"127.0.0.1:{port}")
    try:
        setup.sink.wait_for(2)
        deadline = time.monotonic() + 20
        text = ""
        while "aws_wodle_cycles_total 1" not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                continue
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert 'aws_wodle_events_forwarded_total{source="poll"} 2' in text
    assert 'operation="FilterLogEvents"} 1' in text
    assert 'aws_wodle_failures_total{reason="GroupNotFound"} 1' in text
    lag = 'aws_wodle_lag_seconds{account="123456789012",region="us-east-1",group="app"} '
    (line,) = [x for x in text.splitlines() if x.startswith(lag)]
    assert 0 <= float(line[len(lag) :]) < 30
    assert 'aws_wodle_event_lateness_seconds_bucket{le="+Inf"} 2' in text
    assert "aws_wodle_event_lateness_seconds_count 2" in text


def test_metrics_refuse_a_non_loopback_address(setup: Setup) -> None:
    """Metrics are never exposed beyond the host: another address is a usage error."""
    conf = setup.config(setup.service("app"))
    result = setup.once(conf, "--metrics", "0.0.0.0:9109")
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


def test_run_once_on_a_terminal_draws_a_progress_bar(setup: Setup) -> None:
    """run --once with a terminal on stderr draws a progress bar, ending at 100%."""
    seed(setup.moto.client(), "app", {"s": [f"e{i}" for i in range(3_000)]})
    conf = setup.config(setup.service("app"))
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(conf),
         "--queue", setup.sink.path, "--state", setup.state, *TEST_FLAGS],
        env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    assert proc.wait(timeout=30) == 0
    text = screen.decode()
    assert "\r[" in text
    assert "100% 3000 events" in text


def test_progress_line_and_bar_figures() -> None:
    """Progress counts events and the log time left from the oldest stream being read."""
    now = [1_000_000.0]
    progress = Progress(clock=lambda: now[0])
    progress.begin()
    hour = 3_600_000
    start = int(now[0] * 1000) - 10 * hour
    progress.moved("a", start, 100)
    progress.moved("a", start + 5 * hour, 900)
    progress.moved("b", start + 8 * hour, 50)
    snap = progress.snapshot()
    assert snap.events == 1050
    assert snap.left_ms == 5 * hour
    assert snap.fraction == 0.5
    assert progress.line() == "collecting: 1050 events so far, 5h 0m of log time left (50%)"
    assert progress.bar(10) == "[#####.....]  50% 1050 events, 5h 0m of log time left"
    progress.finished("a")
    assert progress.snapshot().left_ms == 2 * hour
