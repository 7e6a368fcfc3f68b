"""Sends events to the manager's analysis queue: the only module that touches the socket."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import ForwardError

log = logging.getLogger(__name__)

HEADER = b"1:Wazuh-AWS:"
# The manager reads at most 65,535 bytes from one datagram (OS_MAXSTR less its terminator);
# anything longer would be cut by the manager anyway, so we cut it ourselves and say so.
MAX_DATAGRAM = 65535
# Room for the largest datagram plus kernel bookkeeping, so that none is refused for size.
SEND_BUFFER = 4 * MAX_DATAGRAM
SEND_TIMEOUT = 2.0

_WAIT_ERRNOS = {
    errno.ENOENT: "ENOENT",
    errno.ECONNREFUSED: "ECONNREFUSED",
    errno.ENOBUFS: "ENOBUFS",
    errno.EAGAIN: "EAGAIN",
    errno.ENOTCONN: "ENOTCONN",
    errno.EDESTADDRREQ: "EDESTADDRREQ",
    errno.EPIPE: "EPIPE",
    errno.ECONNRESET: "ECONNRESET",
}


def encode_message(message: str) -> bytes:
    """The UTF-8 bytes of a message; lone surrogates become ``\\udXXX`` escapes, never errors.

    Escaped that way, a JSON message that carried an unpaired surrogate stays valid JSON.
    """
    try:
        return message.encode("utf-8")
    except UnicodeEncodeError:
        return message.encode("utf-8", "backslashreplace")


def frame(message: str) -> tuple[bytes, bool]:
    """The datagram for one event, and whether it had to be truncated to fit the manager."""
    data = HEADER + encode_message(message)
    if len(data) <= MAX_DATAGRAM:
        return data, False
    # Cut before the character that would cross the limit, never inside a UTF-8 sequence.
    end = MAX_DATAGRAM
    while end > len(HEADER) and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end], True


@dataclass
class Backoff:
    """Capped exponential waits: ``first`` doubling up to ``cap`` seconds."""

    first: float = 0.05
    # A manager back from a restart gets its events within this long.
    cap: float = 2.0

    def delays(self) -> Iterable[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.cap)


class QueueForwarder:
    """One connected datagram socket to the manager's queue, kept open and re-opened at need.

    ``send`` blocks while the manager is away (socket missing, refusing or full), waiting with
    capped backoff and logging once per outage, until the datagram is taken or ``stopping()``
    turns true, which raises ``ForwardError``: nothing is ever dropped silently.
    """

    def __init__(
        self,
        path: str,
        *,
        stopping: Callable[[], bool] = lambda: False,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self._stopping = stopping
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.outages = 0

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                # A full queue blocks a send; the timeout turns that into a retry that can
                # notice a stop request.
                sock.settimeout(SEND_TIMEOUT)
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def send_all(self, datagrams: Iterable[bytes]) -> None:
        """Send datagrams in order; returns only once every one was taken by the socket."""
        with self._lock:
            for data in datagrams:
                sock = self._sock
                if sock is not None:
                    try:
                        sock.send(data)
                        continue
                    except OSError:
                        pass  # the slow path below reconnects, waits and reports
                self._send_one(data)

    def _send_one(self, data: bytes) -> None:
        delays = iter(self._backoff.delays())
        outage_started: float | None = None
        while True:
            try:
                self._connect().send(data)
            except OSError as exc:
                reason = _WAIT_ERRNOS.get(exc.errno or 0)
                if isinstance(exc, TimeoutError):
                    reason = "EAGAIN"
                elif reason is None:
                    reason = errno.errorcode.get(exc.errno or 0, "OSError")
                # A restarted manager leaves our socket pointing at a dead inode: reconnect.
                self._drop()
                if outage_started is None:
                    outage_started = time.monotonic()
                    self.outages += 1
                    log.warning(
                        "manager queue %s unavailable (%s: %s); holding events until it is back",
                        self.path,
                        reason,
                        exc.strerror,
                    )
                if self._stopping():
                    raise ForwardError(
                        reason, f"manager queue {self.path} unavailable ({reason}) at shutdown"
                    ) from exc
                self._sleep(next(delays))
                continue
            if outage_started is not None:
                log.warning(
                    "manager queue %s is back after %.1f s; forwarding resumed",
                    self.path,
                    time.monotonic() - outage_started,
                )
            return
