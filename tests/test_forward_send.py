"""The queue socket's sends: one system call each while the queue has room, a wait only when
it is full, on real Unix datagram sockets (and strace, to count the waits)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import aws_wodle
from aws_wodle.errors import ForwardError
from aws_wodle.manager.forward import SEND_TIMEOUT, QueueForwarder

# Fewer than a queue holds (its 10-datagram default backlog is per receiver; these go out
# while the receiver sleeps, so they must fit): the sender never has to wait.
ROOMY = 8

SENDER = """
import socket, sys, time
from aws_wodle.manager.forward import QueueForwarder
path, count = sys.argv[1], int(sys.argv[2])
forwarder = QueueForwarder(path)
forwarder.send_all([b"1:Wazuh-AWS:%d" % i for i in range(count)])
forwarder.close()
"""


def receiver(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


WAITS = {"poll", "ppoll", "select", "pselect6"}


def syscalls_of(path: Path, count: int, trace: Path) -> dict[str, tuple[int, int]]:
    """The send and wait system calls of a real process that sends ``count`` datagrams to
    ``path``: name -> (calls, errors)."""
    subprocess.run(
        ["strace", "-f", "-c", "-e", "trace=poll,ppoll,select,pselect6,sendto,send",
         "-o", str(trace), sys.executable, "-c", SENDER, str(path), str(count)],
        check=True, timeout=60, env={"PYTHONPATH": str(Path(aws_wodle.__file__).parent.parent)},
    )  # fmt: skip
    out = {}
    for line in trace.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] in {*WAITS, "sendto", "send"}:
            errors = int(fields[4]) if len(fields) == 6 else 0
            out[fields[-1]] = (int(fields[3]), errors)
    return out


def polls_of(path: Path, count: int, trace: Path) -> int:
    """The poll system calls of a real process that sends ``count`` datagrams to ``path``."""
    calls = syscalls_of(path, count, trace)
    return sum(calls[name][0] for name in WAITS if name in calls)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_send_with_room_is_no_wait(tmp_path: Path) -> None:
    """Sends that find room in the queue wait for nothing: no poll before each one."""
    path = tmp_path / "queue"
    with receiver(path) as sink:
        assert polls_of(path, ROOMY, tmp_path / "trace") == 0
        sink.setblocking(False)
        got = [sink.recv(100) for _ in range(ROOMY)]
    assert got == [b"1:Wazuh-AWS:%d" % i for i in range(ROOMY)]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_full_queue_costs_one_refused_send_per_wait(tmp_path: Path) -> None:
    """A send that finds the queue full is followed by one wait for room and then the send
    that succeeds: never a second refused send before the wait."""
    path = tmp_path / "queue"
    count = 400
    with receiver(path) as sink:
        got: list[bytes] = []

        def read_slowly() -> None:
            sink.settimeout(30)
            while len(got) < count:
                got.append(sink.recv(100))
                time.sleep(0.001)  # slower than the sender: the queue keeps filling

        reader = threading.Thread(target=read_slowly)
        reader.start()
        calls = syscalls_of(path, count, tmp_path / "trace")
        reader.join(timeout=30)
    assert got == [b"1:Wazuh-AWS:%d" % i for i in range(count)]
    sends, refused = calls.get("sendto", calls.get("send", (0, 0)))
    waits = sum(calls[name][0] for name in WAITS if name in calls)
    assert refused > 0  # the queue was full, or this holds nothing
    assert sends == count + refused
    assert refused == waits


def test_a_full_queue_is_waited_for_then_everything_goes_in_order(tmp_path: Path) -> None:
    """A queue full for less than the send timeout: the sends wait for room, none is lost
    or reordered, and no outage is counted."""
    path = tmp_path / "queue"
    count = 2_000
    with receiver(path) as sink:
        forwarder = QueueForwarder(str(path))
        got: list[bytes] = []

        def read_late() -> None:
            time.sleep(SEND_TIMEOUT / 4)  # the queue fills meanwhile
            while len(got) < count:
                got.append(sink.recv(100))

        reader = threading.Thread(target=read_late)
        reader.start()
        started = time.monotonic()
        forwarder.send_all([b"1:Wazuh-AWS:%d" % i for i in range(count)])
        waited = time.monotonic() - started
        reader.join(timeout=30)
        forwarder.close()
    assert got == [b"1:Wazuh-AWS:%d" % i for i in range(count)]
    assert waited >= SEND_TIMEOUT / 4 - 0.05
    assert forwarder.outages == 0


def test_a_queue_full_past_the_timeout_is_an_eagain_outage(tmp_path: Path) -> None:
    """A queue nobody reads: the send waits its timeout, then the outage is EAGAIN, and a
    stop request ends it with the events kept as unsent."""
    path = tmp_path / "queue"
    with receiver(path):
        forwarder = QueueForwarder(str(path), stopping=lambda: True)
        started = time.monotonic()
        with pytest.raises(ForwardError, match=r"unavailable \(EAGAIN\) at shutdown") as caught:
            forwarder.send_all([b"1:Wazuh-AWS:%d" % i for i in range(100)])
        waited = time.monotonic() - started
        forwarder.close()
    assert caught.value.reason == "EAGAIN"
    assert forwarder.outages == 1
    assert forwarder.unsent
    assert SEND_TIMEOUT - 0.05 <= waited < SEND_TIMEOUT + 2.0
