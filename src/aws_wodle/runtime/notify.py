"""systemd's notify protocol: READY, STATUS, WATCHDOG, RELOADING and STOPPING messages.

A few lines over the datagram socket named by ``NOTIFY_SOCKET``; outside systemd (no such
variable) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Talks to the service manager, if there is one."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # an abstract socket
        self.address = address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        # Ping at half the watchdog's period, as systemd recommends.
        self.watchdog_interval = int(usec) / 2_000_000 if watched else None
        self._last_ping = 0.0

    def send(self, message: str) -> bool:
        """Send one notification; False when there is no manager or it cannot be reached."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never wait on the service manager: a full socket drops this notification.
                sock.setblocking(False)
                sock.connect(self.address)
                sock.send(message.encode("utf-8", "replace"))
        except OSError as exc:
            log.debug("cannot notify the service manager: %s", exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def reloaded(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def ping(self) -> None:
        """Tell the watchdog we are alive, at most every half period."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.send("WATCHDOG=1")
