"""A threading.Event that a signal handler may set: the only kind our handlers touch.

Python runs a signal handler in the main thread, between two bytecodes of whatever it was
doing. ``threading.Event`` guards its flag with a plain lock: a SIGTERM handler that calls
``set()`` while the SIGHUP handler before it is inside ``set()`` waits for a lock its own
thread holds, for ever (a reload followed at once by a stop hung the daemon). Built on a
re-entrant lock, the nested ``set()`` goes through.
"""

from __future__ import annotations

import threading


class SignalEvent(threading.Event):
    """``threading.Event`` whose lock its own thread may take again (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition(threading.RLock())
