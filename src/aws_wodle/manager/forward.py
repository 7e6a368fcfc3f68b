"""Sends events to the manager's analysis queue: the only module that touches the socket."""

from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import select
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import ForwardError

log = logging.getLogger(__name__)

HEADER = b"1:Wazuh-AWS:"
# The manager reads at most 65,535 bytes from one datagram (OS_MAXSTR less its terminator);
# anything longer would be cut by the manager anyway, so we cut it ourselves and say so.
MAX_DATAGRAM = 65535
# Room for the largest datagram plus kernel bookkeeping, so that none is refused for size.
SEND_BUFFER = 4 * MAX_DATAGRAM
# How long one send waits for room in a full queue before the wait becomes an outage (EAGAIN),
# with its backoff, its log line and its chance to notice a stop request.
SEND_TIMEOUT = 2.0
# How long `run --once` waits for a manager that is away (a restart takes seconds) before it
# gives up with exit 1: a run that cannot deliver must fail, not claim success.
QUEUE_WAIT_SECONDS = 60.0

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
# Waiting does not cure these: the socket's permissions, or a security policy, refuse us.
_REFUSED_ERRNOS = {errno.EACCES: "EACCES", errno.EPERM: "EPERM"}


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


def _name_of_user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _name_of_group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def refusal_message(path: str, reason: str) -> str:
    """The one line for a queue socket that refuses us, naming the path and the fix."""
    me = _name_of_user(os.geteuid())
    try:
        info = os.stat(path)
    except OSError:
        where = f"a directory on the way to it is not searchable by {me}"
        fix = "run aws-wodle as the manager's user (sudo -u wazuh aws-wodle ...)"
    else:
        owner, group = _name_of_user(info.st_uid), _name_of_group(info.st_gid)
        where = f"it is {owner}:{group} mode {info.st_mode & 0o7777:04o}, aws-wodle runs as {me}"
        if info.st_uid == os.geteuid():
            fix = f"its mode refuses its owner: chmod u+w {path}"
        else:
            fix = (
                f"run aws-wodle as {owner} (sudo -u {owner} aws-wodle ...), as the systemd "
                f"unit does, or add {me} to the group {group}"
            )
    return f"manager queue {path} refuses us ({reason}: permission denied): {where}; {fix}"


# What connecting to a directory, a file or a stream socket answers (besides an outage's).
_KIND_ERRNOS = {errno.ECONNREFUSED, errno.EPROTOTYPE, errno.ENOTSOCK}
# Reason of a queue path that is no datagram socket: waiting does not cure it either.
WRONG_KIND = "ENOTSOCK"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a socket"


def queue_problem(path: str) -> str | None:
    """The one line saying why ``path`` can never be the manager's queue (it exists but is
    no datagram socket: a directory, a file, a stream socket), else None. A missing path, or
    a datagram socket nobody reads, is an outage the forwarder waits out, not a problem."""
    try:
        info = os.stat(path)
    except OSError:
        return None  # missing, or unreachable: the send says which, and waits or refuses
    if not stat.S_ISSOCK(info.st_mode):
        what = _kind(info.st_mode)
    else:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(path)
            except OSError as exc:
                if exc.errno != errno.EPROTOTYPE:
                    return None  # refused or gone: an outage
                what = "a stream socket"
            else:
                return None
    return (
        f"manager queue {path} is {what}, not a datagram socket: --queue must name the "
        "manager's queue socket (<home>/queue/sockets/queue)"
    )


def _send(
    sock: socket.socket,
    data: bytes,
    poller: select.poll,
    timeout: float = SEND_TIMEOUT,
    *,
    full: bool = False,
) -> None:
    """Send one datagram on a non-blocking socket, waiting up to ``timeout`` seconds for
    room while the queue is full (``poller`` watches the socket for room); ``full``: a send
    just found it full, so the wait comes first. ``TimeoutError`` (an EAGAIN outage) when no
    room came."""
    deadline: float | None = None
    while True:
        if not full:
            try:
                sock.send(data)
                return
            except BlockingIOError:
                pass
        full = False
        now = time.monotonic()
        if deadline is None:
            deadline = now + timeout
        left = deadline - now
        if left <= 0:
            raise TimeoutError(errno.EAGAIN, "the manager's queue stayed full")
        poller.poll(left * 1000)


def _watching(sock: socket.socket) -> select.poll:
    """A poller that waits for room in ``sock``'s queue."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return poller


class QueueForwarder:
    """One connected datagram socket to the manager's queue, kept open and re-opened at need.

    ``send_all`` blocks while the manager is away (socket missing, refusing or full), waiting
    with capped backoff and logging once per outage, until the datagram is taken; nothing is
    ever dropped silently. It raises ``ForwardError`` instead:

    - when ``stopping()`` turns true during a wait (``unsent`` is then set);
    - at once when the socket's permissions refuse us (EACCES, EPERM), or the path is no
      datagram socket (reason ENOTSOCK): waiting would not help;
    - when one outage has lasted ``max_wait`` seconds (None: wait as long as it takes).

    The last two are final: ``failure`` keeps the error, ``on_failure()`` is called once (to
    stop the other readers), and every later send raises it again without waiting.
    """

    def __init__(
        self,
        path: str,
        *,
        stopping: Callable[[], bool] = lambda: False,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self.path = path
        self._stopping = stopping
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._max_wait = max_wait
        self._clock = clock
        self._on_failure = on_failure
        self._sock: socket.socket | None = None
        # Watches _sock for room; made with it, used only when a send found the queue full.
        self._poller: select.poll | None = None
        self._lock = threading.Lock()
        self.outages = 0
        self.failure: ForwardError | None = None
        self.unsent = False
        # The errno name of the latest outage (ENOENT, ECONNREFUSED...), None before any.
        self.reason: str | None = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._poller = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                sock.connect(self.path)
                # Non-blocking: a send that has room (nearly all) is one system call. A
                # socket with a timeout would poll before every send; here only a send
                # that found the queue full waits for room (``_send``).
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self._poller = _watching(sock)
        return self._sock

    def send_all(self, datagrams: Iterable[bytes]) -> None:
        """Send datagrams in order; returns only once every one was taken by the socket."""
        with self._lock:
            self._raise_failure()
            sock = self._sock
            send = None if sock is None else sock.send
            for data in datagrams:
                error: OSError | None = None
                if send is not None:
                    try:
                        send(data)
                        continue
                    except BlockingIOError:
                        # The queue is full: wait for room (one poll, no second send first).
                        assert sock is not None
                        assert self._poller is not None
                        try:
                            _send(sock, data, self._poller, full=True)
                            continue
                        except OSError as exc:
                            error = exc  # still full after SEND_TIMEOUT: an outage
                    except OSError:
                        # The queue gone: the slow path below reconnects, waits out an
                        # outage and reports.
                        pass
                self._send_one(data, error)
                sock = self._sock  # connected again by the slow path
                send = None if sock is None else sock.send

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise ForwardError(self.failure.reason, str(self.failure))

    def _give_up(self, error: ForwardError) -> ForwardError:
        self.failure = error
        self._on_failure()
        return error

    def _send_one(self, data: bytes, error: OSError | None = None) -> None:
        """Send ``data`` however long the queue is away; ``error``: what the first send
        already met (the wait for room timed out), the outage's start."""
        delays = iter(self._backoff.delays())
        outage_started: float | None = None
        while True:
            try:
                if error is not None:
                    raise error
                sock = self._connect()
                assert self._poller is not None
                _send(sock, data, self._poller)
            except OSError as exc:
                error = None
                # A restarted manager leaves our socket pointing at a dead inode: reconnect.
                self._drop()
                refused = _REFUSED_ERRNOS.get(exc.errno or 0)
                if refused is not None:
                    raise self._give_up(
                        ForwardError(refused, refusal_message(self.path, refused))
                    ) from None
                wrong = queue_problem(self.path) if exc.errno in _KIND_ERRNOS else None
                if wrong is not None:
                    raise self._give_up(ForwardError(WRONG_KIND, wrong)) from None
                reason = _WAIT_ERRNOS.get(exc.errno or 0)
                if isinstance(exc, TimeoutError):
                    reason = "EAGAIN"
                elif reason is None:
                    reason = errno.errorcode.get(exc.errno or 0, "OSError")
                self.reason = reason
                now = self._clock()
                if outage_started is None:
                    outage_started = now
                    self.outages += 1
                    log.warning(
                        "manager queue %s unavailable (%s: %s); holding events until it is back",
                        self.path,
                        reason,
                        exc.strerror,
                    )
                if self._stopping():
                    self.unsent = True
                    raise ForwardError(
                        reason, f"manager queue {self.path} unavailable ({reason}) at shutdown"
                    ) from exc
                waited = now - outage_started
                if self._max_wait is not None and waited >= self._max_wait:
                    self.unsent = True
                    raise self._give_up(
                        ForwardError(
                            reason,
                            f"manager queue {self.path} still unavailable ({reason}) after "
                            f"{waited:.0f} s (--queue-wait {self._max_wait:g}s): is the manager "
                            "running? The events not sent are sent by the next run",
                        )
                    ) from None
                delay = next(delays)
                if self._max_wait is not None:
                    delay = max(0.0, min(delay, self._max_wait - waited))
                self._sleep(delay)
                continue
            if outage_started is not None:
                log.warning(
                    "manager queue %s is back after %.1f s; forwarding resumed",
                    self.path,
                    self._clock() - outage_started,
                )
            return
