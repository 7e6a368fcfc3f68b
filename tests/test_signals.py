"""Signals acted on outside their handler: a stop right after a reload never hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from aws_wodle.runtime import signals

# A process that waits as the daemon does, woken by SIGHUP and stopped by SIGTERM through
# signals.install; it prints "ready" once its handlers are in.
CHILD = """
import signal, threading
from aws_wodle.runtime import signals
wake, stop = threading.Event(), threading.Event()
def on_hup(_sig):
    wake.set()
def on_term(_sig):
    stop.set()
    wake.set()
signals.install({signal.SIGHUP: on_hup, signal.SIGTERM: on_term})
print("ready", flush=True)
while not stop.is_set():
    wake.wait(60)
    wake.clear()
"""


def test_a_stop_right_after_a_reload_always_ends_the_process() -> None:
    """SIGHUP then SIGTERM back to back, 40 times: every process ends, with exit 0, within
    seconds (a deadlock or a lost wake-up would keep one for 60 s)."""
    for _ in range(40):
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGHUP)
        child.send_signal(signal.SIGTERM)
        try:
            code = child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise AssertionError("a process sent SIGHUP then SIGTERM did not end") from None
        assert code == 0


def test_the_action_waits_for_a_lock_the_interrupted_code_holds() -> None:
    """A signal that lands while this thread holds the event's lock: the handler returns at
    once (a handler taking that lock itself would wait for ever), and the action sets the
    event as soon as the lock is free."""
    event = threading.Event()
    restore = signals.install({signal.SIGUSR1: lambda _sig: event.set()})
    try:
        with event._cond:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.2)  # the handler runs here, in this thread, and must return
            assert not event.is_set()
        assert event.wait(5)
    finally:
        restore()


def test_restore_puts_the_previous_handler_back() -> None:
    """After restore(), the signal goes to the handler that was there before."""
    seen: list[int] = []
    before = signal.signal(signal.SIGUSR2, lambda sig, _frame: seen.append(sig))
    try:
        restore = signals.install({signal.SIGUSR2: lambda _sig: None})
        restore()
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.05)
        assert seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, before)
