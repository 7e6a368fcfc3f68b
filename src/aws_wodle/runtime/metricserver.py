"""The metrics' HTTP server: GET only, a few connections at a time, none allowed to linger."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable

from ..config.values import family

log = logging.getLogger(__name__)

# Connections served at once, each by a thread of its own. Prometheus scrapes one at a time
# and a person with curl adds one or two; 8 leaves room for those while bounding what a
# local user opening connections can take from the daemon: 8 threads and 8 descriptors.
# Connections past it are answered 503 and closed at once, without a thread.
MAX_CONNECTIONS = 8
# The whole request (a few hundred bytes from Prometheus) must arrive within this long from
# the accept, however it trickles in, or the connection is dropped: a client that opens a
# connection and stalls holds a slot this long at most.
REQUEST_SECONDS = 5.0
# The response must be taken within this long (a table of thousands of groups' lags to a
# slow reader); then the connection is dropped.
RESPONSE_SECONDS = 10.0
# A request's head longer than this is refused: a scraper's GET is a few hundred bytes.
MAX_REQUEST_BYTES = 8192
# Connections the kernel holds until accepted; accepts are quick (a refusal is one send and
# a close), so this only absorbs bursts.
BACKLOG = 64
# How often the accept loop looks at its stop flag when no connection arrives.
POLL_SECONDS = 0.5
# After accept() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS), wait
# this long before the next try: the listening socket stays readable, and trying again at
# once would spin.
ACCEPT_BACKOFF_SECONDS = 0.5

BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\n"
    b"Connection: close\r\n\r\n"
)
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
PATHS = ("/metrics", "/")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def show(address: tuple[str, int]) -> str:
    """``HOST:PORT``, an IPv6 host in brackets (``[::1]:9101``)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MetricServer:
    """Answers GET /metrics with ``render()``, on a thread of its own (see ``start``)."""

    def __init__(self, address: tuple[str, int], render: Callable[[], str]) -> None:
        self.render = render
        self.socket = socket.socket(family(address[0]), socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.socket.family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.socket.bind(address)
            self.socket.listen(BACKLOG)
            self.socket.setblocking(False)
            # Made here, not in the thread: out of descriptors, serve() fails, not the thread.
            self._selector = selectors.DefaultSelector()
        except OSError:
            self.socket.close()
            raise
        self._selector.register(self.socket, selectors.EVENT_READ)
        host, port = self.socket.getsockname()[:2]
        self.server_address: tuple[str, int] = (str(host), int(port))
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        """Stop accepting and close the listening socket (connections in hand finish alone)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._selector.close()
        self.socket.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            if self._selector.select(POLL_SECONDS):
                self._accept()

    def _accept(self) -> None:
        try:
            conn, _peer = self.socket.accept()
        except (BlockingIOError, InterruptedError, ConnectionError):
            return  # the client went away before the accept
        except OSError as exc:
            log.debug("metrics: cannot accept a connection now: %s", exc)
            self._stop.wait(ACCEPT_BACKOFF_SECONDS)
            return
        if not self._slots.acquire(blocking=False):
            log.debug("metrics: %d connections open already; one refused", MAX_CONNECTIONS)
            _refuse(conn)
            return
        try:
            threading.Thread(
                target=self._serve, args=(conn,), name="metrics-client", daemon=True
            ).start()
        except RuntimeError as exc:  # no thread can be started now
            log.debug("metrics: cannot start a thread: %s", exc)
            self._slots.release()
            _refuse(conn)

    def _serve(self, conn: socket.socket) -> None:
        """Read one request, answer it, close; a client that fails does so quietly."""
        try:
            with conn:
                head = _read_head(conn, time.monotonic() + REQUEST_SECONDS)
                if head is None:
                    return
                response = self._answer(head)
                conn.settimeout(RESPONSE_SECONDS)
                conn.sendall(response)
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)
        except OSError as exc:  # timeouts, resets, broken pipes: the client's doing
            log.debug("metrics: client dropped: %s", exc)
        finally:
            self._slots.release()

    def _answer(self, head: bytes) -> bytes:
        if len(head) > MAX_REQUEST_BYTES:
            return _response(431)
        words = head.split(b"\n", 1)[0].split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/"):
            return _response(400)
        method, target = words[0], words[1].decode("latin-1")
        if method not in (b"GET", b"HEAD"):
            return _response(405, extra="Allow: GET, HEAD\r\n")
        if target.split("?")[0] not in PATHS:
            return _response(404)
        try:
            body = self.render().encode()
        except Exception as exc:  # noqa: BLE001 - the scrape fails, never the daemon
            log.warning("metrics: cannot render the metrics: %s", exc)
            return _response(500)
        return _response(200, body, head_only=method == b"HEAD")


def _read_head(conn: socket.socket, deadline: float) -> bytes | None:
    """The request up to its blank line (or past MAX_REQUEST_BYTES); None when the client
    closed first; TimeoutError when it is not all there by ``deadline``."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) <= MAX_REQUEST_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        conn.settimeout(remaining)
        chunk = conn.recv(MAX_REQUEST_BYTES + 1)
        if not chunk:
            return None
        data += chunk
    return data


def _response(status: int, body: bytes = b"", *, head_only: bool = False, extra: str = "") -> bytes:
    kind = CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8"
    if status != 200:
        body = f"{status} {REASONS[status]}\n".encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode() + (b"" if head_only else body)


def _refuse(conn: socket.socket) -> None:
    """Answer 503 if the socket takes it at once, and close."""
    with conn:
        conn.setblocking(False)
        with contextlib.suppress(OSError):
            conn.send(BUSY)
