"""One way out for `run` and `legacy`: a stop signal gives each its documented code and line,
whether the cycle ends cleanly or is abandoned in a stuck AWS call."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from conftest import Setup, cli_env, seed
from test_legacy import LEGACY, lines, old_args

INTERRUPTED = "ERROR: interrupted by a signal; every stream resumes after its last event sent"


@pytest.fixture
def black_hole() -> Iterator[socket.socket]:
    """A TCP port that takes connections and never answers: an AWS call to it is stuck
    until botocore's read timeout (60 s), far past the stop's grace."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield listener
    finally:
        listener.close()


def _url(listener: socket.socket) -> str:
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def _stuck(listener: socket.socket, proc: subprocess.Popen[str]) -> socket.socket:
    """Wait until the process has an AWS call open on the black hole; returns that call."""
    listener.settimeout(60)
    call, _ = listener.accept()
    time.sleep(0.5)  # the request is sent; its answer never comes
    assert proc.poll() is None
    return call


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_legacy_stopped_while_the_queue_is_away_exits_2(setup: Setup, sig: signal.Signals) -> None:
    """legacy waiting for the manager's queue: SIGINT or SIGTERM ends it at once with the
    old module's code 2 and its ERROR line; the next run sends every event once."""
    seed(setup.moto.client(), "app", {"s": ["e0", "e1"]})
    setup.sink.unbind()
    proc = subprocess.Popen(
        [sys.executable, "-c", LEGACY, *old_args(setup, "app")],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not os.path.exists(setup.state) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # reading is done; it waits on the queue (10 s at most)
    assert proc.poll() is None
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, out + err
    assert time.monotonic() - started < 5
    assert lines(out, "ERROR: ") == [INTERRUPTED], out
    assert "Traceback" not in err
    setup.sink.bind()
    proc = subprocess.Popen([sys.executable, "-c", LEGACY, *old_args(setup, "app")], env=cli_env())
    assert proc.wait(timeout=60) == 0
    setup.sink.wait_for(2)
    assert setup.sink.messages() == ["e0", "e1"]


def _terminated_when_stuck(
    black_hole: socket.socket, command: list[str]
) -> tuple[int, str, str, float]:
    """Start ``command``, wait until its CloudWatch Logs call is stuck in ``black_hole``,
    send SIGTERM: its exit code, stdout, stderr and the seconds from the signal to exit."""
    proc = subprocess.Popen(
        command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    call = _stuck(black_hole, proc)
    try:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        call.close()
    return proc.returncode, out, err, time.monotonic() - started


def test_legacy_stopped_in_a_stuck_aws_call_exits_2_in_seconds(
    setup: Setup, black_hole: socket.socket
) -> None:
    """legacy stuck in a CloudWatch Logs call: SIGTERM ends it within the stop's grace (the
    stuck worker is not waited for), with code 2, and its lines reach stdout."""
    args = old_args(setup, "app")
    args[args.index("--service_endpoint") + 1] = _url(black_hole)
    code, out, err, took = _terminated_when_stuck(black_hole, [sys.executable, "-c", LEGACY, *args])
    assert code == 2, out + err
    assert took < 10
    assert "WARNING: stopping without waiting for AWS calls still in flight" in out, out
    assert lines(out, "ERROR: ") == [INTERRUPTED], out
    assert out.splitlines()[-1] == INTERRUPTED


def test_run_once_stopped_in_a_stuck_aws_call_exits_143_in_seconds(
    setup: Setup, black_hole: socket.socket
) -> None:
    """run --once stuck in a CloudWatch Logs call: SIGTERM ends it within the stop's grace,
    with 143 (128 + SIGTERM) and, last, the line saying how far it got."""
    conf = setup.config(setup.service("app").replace(setup.moto.url, _url(black_hole)))
    code, out, err, took = _terminated_when_stuck(
        black_hole,
        [sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(conf),
         "--queue", setup.sink.path, "--state", setup.state, "--log-format", "plain"],
    )  # fmt: skip
    assert code == 143, err
    assert took < 10
    assert "stopping without waiting for AWS calls still in flight" in err, err
    assert "interrupted by SIGTERM: 0 events sent" in err.splitlines()[-1], err
    assert out == ""
