"""A collecting process's signals and its way out, written once for ``run`` and ``legacy``.

SIGTERM and SIGINT ask for a stop after the page in hand: the first of them is remembered,
the stop event is set, and the command's own wake-up runs (the daemon's wait between cycles
ends). SIGHUP reloads only when the command gives a reload (the daemon, whose ``--once``
takes the request and never acts on it); ``legacy`` leaves SIGHUP as the old module did.
The actions run in the "signals" thread, never inside a handler (see ``signals``).

The way out: the command's code, unless a signal asked for the stop, in which case the
command's line saying how far the run got is logged last and gives the code (``run --once``
128 plus the signal's number, ``legacy`` the old module's 2). A cycle abandoned in an AWS
call still in flight ends the process at once with ``os._exit``: the collector's worker
threads are those of a ``ThreadPoolExecutor``, which the interpreter joins at exit, so a
normal exit would wait for their retries; nothing they hold is uncommitted state (positions
on disk never pass what was forwarded). The log lines and stdout are flushed first.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from . import signals


class Lifecycle:
    """The stop event a command's parts share, the signal that set it, and the exit."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        # The signal that asked for the stop (SIGTERM, SIGINT), if one did.
        self.signalled: int | None = None
        self._restore: Callable[[], None] | None = None

    def install_signals(
        self,
        *,
        wake: Callable[[], None] | None = None,
        reload: Callable[[], None] | None = None,
    ) -> None:
        """SIGTERM and SIGINT stop after the page in hand (``stop`` set, then ``wake``);
        with ``reload``, SIGHUP runs it (between cycles, the daemon re-reads the
        configuration); without, SIGHUP keeps its previous handler."""

        def on_stop(sig: int) -> None:
            if self.signalled is None:
                self.signalled = sig
            self.stop.set()
            if wake is not None:
                wake()

        actions: dict[int, Callable[[int], None]] = {
            signal.SIGTERM: on_stop,
            signal.SIGINT: on_stop,
        }
        if reload is not None:
            actions[signal.SIGHUP] = lambda _sig: reload()
        self._restore = signals.install(actions)

    def restore_signals(self) -> None:
        """Put the previous handlers back (``legacy``, which a caller may run again in the
        same process; the daemon keeps its handlers to the end, so that a second SIGTERM
        during the last commit cannot cut it)."""
        if self._restore is not None:
            self._restore()
            self._restore = None

    def exit(
        self,
        code: int,
        *,
        abandoned: bool,
        interrupted: Callable[[int], int] | None = None,
    ) -> int:
        """The process's exit code: ``code``, or, when a signal asked for the stop and the
        command says how far it got, what ``interrupted`` (given the signal) logs and
        returns. With ``abandoned``, the process ends here (see the module's docstring)."""
        if interrupted is not None and self.signalled is not None:
            code = interrupted(self.signalled)
        if abandoned:
            logging.shutdown()
            if sys.stdout is not None:
                sys.stdout.flush()
            os._exit(code)
        return code
