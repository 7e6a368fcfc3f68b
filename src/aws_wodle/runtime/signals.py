"""Signals acted on by a thread of their own, never inside a handler.

Python runs a signal handler in the main thread, between two bytecodes of whatever it was
doing, and only once the main thread runs bytecode again. Two traps follow. A handler that
takes a lock (``threading.Event.set`` does) can interrupt code of its own thread holding
that lock: with a plain lock it waits for ever (a SIGTERM landing in the SIGHUP handler's
``set()`` hung the daemon). And a signal that the kernel hands to another thread leaves a
main thread blocked in ``Event.wait`` asleep until its timeout. So the signals' numbers go
through ``signal.set_wakeup_fd``, which the interpreter writes from whichever thread took
the signal, and the "signals" thread reads them and runs the actions, as any thread would;
the Python handler itself does nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType


def _nothing(_sig: int, _frame: FrameType | None) -> None:
    """The handler: the work is done by the "signals" thread."""


def install(actions: Mapping[int, Callable[[int], None]]) -> Callable[[], None]:
    """Run each signal's action (given the signal's number) in the "signals" thread when
    it comes; returns what puts the previous handlers back. Call it from the main thread,
    once at a time (a process has one wake-up descriptor)."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = {sig: signal.signal(sig, _nothing) for sig in actions}
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def relay() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while data := pipe.read(64):
                for sig in data:
                    action = actions.get(sig)
                    if action is not None:
                        action(sig)

    threading.Thread(target=relay, name="signals", daemon=True).start()

    def restore() -> None:
        signal.set_wakeup_fd(previous_fd)
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)
        os.close(write_end)  # the relay reads to the end and stops

    return restore
