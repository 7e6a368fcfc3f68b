"""An HTTP proxy in front of moto that counts calls and injects what moto cannot do.

It forwards every request to moto unchanged, counts calls by operation, and for chosen calls
answers instead: ThrottlingException, a 5xx, a refused GetLogEvents token, a delay or a reset
connection. It can also enforce per-operation request rates, answering ThrottlingException
beyond them, as CloudWatch Logs' quotas do.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) forwarding one call."""

    kind: str  # "throttle", "5xx", "reset", "reject-token", "delay"
    seconds: float = 0.0


Policy = Callable[[str, dict[str, object]], Fault | None]


def operation_of(headers: dict[str, str], body: bytes) -> str:
    """The API operation of a request: X-Amz-Target for JSON APIs, Action for query APIs."""
    target = headers.get("x-amz-target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    try:
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    except ValueError:
        return "unknown"
    return params.get("Action", ["unknown"])[0]


class Bucket:
    """A token bucket: ``rate`` requests per second, bursts up to ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


@dataclass
class Stats:
    """Calls seen, by operation, and faults injected, by kind."""

    calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, operation: str, fault: Fault | None) -> None:
        with self.lock:
            self.calls[operation] += 1
            if fault is not None:
                self.faults[fault.kind] += 1


def random_faults(
    seed: int,
    *,
    throttle: float = 0.0,
    server_error: float = 0.0,
    reset: float = 0.0,
    delay: float = 0.0,
    delay_seconds: float = 0.5,
    operations: frozenset[str] | None = None,
) -> Policy:
    """A policy injecting each fault with its probability, reproducibly from ``seed``."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def decide(operation: str, _request: dict[str, object]) -> Fault | None:
        if operations is not None and operation not in operations:
            return None
        with lock:
            roll = rng.random()
        for kind, chance in (("throttle", throttle), ("5xx", server_error), ("reset", reset)):
            if roll < chance:
                return Fault(kind)
            roll -= chance
        if roll < delay:
            return Fault("delay", delay_seconds)
        return None

    return decide


class AwsProxy:
    """The proxy server, on a free loopback port, in a background thread."""

    def __init__(
        self,
        upstream: str,
        policy: Policy | None = None,
        quotas: dict[str, float] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.policy = policy
        self.buckets = {op: Bucket(rate) for op, rate in (quotas or {}).items()}
        self.stats = Stats()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                return

            def do_POST(self) -> None:
                proxy.handle(self)

            def do_GET(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
            self._local.conn = conn
        return conn

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        operation = operation_of(headers, body)
        request = _json(body)
        fault = self.policy(operation, request) if self.policy else None
        if fault is not None and fault.kind == "reject-token" and "nextToken" not in request:
            fault = None
        bucket = self.buckets.get(operation)
        if fault is None and bucket is not None and not bucket.take():
            fault = Fault("throttle")
        self.stats.count(operation, fault)
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            else:
                _answer_fault(handler, fault)
                return
        self._forward(handler, body)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
        for attempt in range(2):
            conn = self._upstream()
            try:
                conn.request(handler.command, handler.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in {
                "connection",
                "transfer-encoding",
                "content-length",
                "server",
                "date",
            }:
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _json(body: bytes) -> dict[str, object]:
    try:
        value = json.loads(body) if body.startswith(b"{") else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _answer_fault(handler: BaseHTTPRequestHandler, fault: Fault) -> None:
    if fault.kind == "throttle":
        status, body = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
    elif fault.kind == "reject-token":
        status = 400
        body = {
            "__type": "InvalidParameterException",
            "message": "The specified nextToken is invalid.",
        }
    else:
        status, body = (
            503,
            {"__type": "ServiceUnavailableException", "message": "Service unavailable"},
        )
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/x-amz-json-1.1")
    handler.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
