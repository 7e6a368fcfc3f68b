"""A proxy in front of moto that serves other accounts' log groups by ARN, as CloudWatch
Logs serves them to a cross-account observability monitoring account.

moto 5.2 does not: FilterLogEvents ignores ``logGroupIdentifier``, and DescribeLogStreams
and GetLogEvents look an ARN up among the caller's own account's groups only (and, when
none matches, answer with the last group it holds instead of an error). This proxy
translates each CloudWatch Logs call that names a group by ARN into the same call by name,
sent to moto in the ARN's account (moto's ``x-moto-account-id`` header). As AWS does, it
refuses an ARN of a region other than the one the request is signed for, and an ARN
carrying the ``:*`` suffix that ``logGroupIdentifier``'s pattern does not allow. It
records, for each call, its operation and how it named the group, for the tests.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ARN = re.compile(r"arn:aws[a-z-]*:logs:([a-z0-9-]+):([0-9]{12}):log-group:([^:*]+)")
_SIGNED_REGION = re.compile(r"Credential=[^/]+/\d+/([^/]+)/")


def _error(code: str, message: str) -> tuple[int, bytes]:
    return 400, json.dumps({"__type": code, "message": message}).encode()


class CrossAccountProxy:
    """The proxy, on a free loopback port, in a background thread."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.calls: list[tuple[str, str, str]] = []  # operation, "arn" or "name", the group
        self._lock = threading.Lock()
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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def named(self, group: str) -> list[tuple[str, str]]:
        """(operation, how) of every call that named ``group`` (by name or in an ARN)."""
        with self._lock:
            return [(op, how) for op, how, name in self.calls if name == group]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "content-length"}
        target = handler.headers.get("X-Amz-Target", "")
        if target.startswith("Logs_"):
            translated = self._translate(target.rsplit(".", 1)[-1], headers, body)
            if isinstance(translated, tuple):
                status, data = translated
                self._reply(handler, status, [("Content-Type", "application/x-amz-json-1.1")], data)
                return
            body = translated
        status, answer_headers, data = self._forward(handler.command, handler.path, headers, body)
        self._reply(handler, status, answer_headers, data)

    def _translate(
        self, operation: str, headers: dict[str, str], body: bytes
    ) -> bytes | tuple[int, bytes]:
        """The body to send moto, or an answer of our own (AWS's refusal)."""
        try:
            request: dict[str, Any] = json.loads(body) if body else {}
        except ValueError:
            return body
        ident = request.get("logGroupIdentifier")
        if not isinstance(ident, str) or not ident.startswith("arn:"):
            name = request.get("logGroupName") or ident
            if isinstance(name, str):
                with self._lock:
                    self.calls.append((operation, "name", name))
            return body
        found = _ARN.fullmatch(ident)
        if found is None:
            return _error(
                "InvalidParameterException",
                "1 validation error detected: Value at 'logGroupIdentifier' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [\\w#+=/:,.@-]*",
            )
        region, account, name = found.groups()
        signed = _SIGNED_REGION.search(headers.get("Authorization", ""))
        if signed is None or signed.group(1) != region:
            return _error(
                "InvalidParameterException",
                f"log group {ident} is in {region}; the request was sent to "
                f"{signed.group(1) if signed else 'no region'}",
            )
        with self._lock:
            self.calls.append((operation, "arn", name))
        del request["logGroupIdentifier"]
        request["logGroupName"] = name
        headers["x-moto-account-id"] = account
        return json.dumps(request).encode()

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], data: bytes
    ) -> None:
        handler.send_response(status)
        for key, value in headers:
            if key.lower() not in {"content-length", "transfer-encoding", "connection", "date",
                                   "server"}:  # fmt: skip
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
