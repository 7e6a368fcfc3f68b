"""Signals that come one on the other: a stop right after a reload never hangs a process."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from aws_wodle.signalevent import SignalEvent

# A process that waits as the daemon does, woken by SIGHUP and stopped by SIGTERM, through
# the Event kind named on its command line; it prints "ready" once its handlers are in.
CHILD = """
import signal, sys, threading
from aws_wodle.signalevent import SignalEvent
kind = SignalEvent if sys.argv[1] == "signal" else threading.Event
wake, stop = kind(), kind()
def on_hup(*_):
    wake.set()
def on_term(*_):
    stop.set()
    wake.set()
signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while not stop.is_set():
    wake.wait(60)
    wake.clear()
"""


def hangs(kind: str, tries: int) -> int:
    """How many of ``tries`` children, sent SIGHUP then SIGTERM at once, failed to exit."""
    hung = 0
    for _ in range(tries):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, kind], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGHUP)
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            hung += 1
            child.kill()
            child.wait()
    return hung


def test_a_stop_right_after_a_reload_always_ends_the_process() -> None:
    """SIGHUP then SIGTERM back to back, 40 times: every process stops (a plain Event's
    lock, taken again by the nested handler, hung some of them)."""
    assert hangs("signal", 40) == 0


def nested_set_finishes(event: threading.Event) -> bool:
    """Whether ``set()`` returns when called while its own thread holds the event's lock,
    as a signal handler that interrupts another handler's ``set()`` does."""

    def nested() -> None:
        with event._cond:
            event.set()

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(timeout=2)
    return not thread.is_alive()


def test_a_set_nested_in_a_set_goes_through() -> None:
    """The case itself, made certain: set() inside the event's own lock returns with a
    SignalEvent, and never returns with a plain threading.Event (the hang)."""
    assert nested_set_finishes(SignalEvent())
    assert not nested_set_finishes(threading.Event())
