"""Answers larger than CloudWatch Logs ever sends, from an endpoint of ours that streams
them: the collector refuses each while reading it, in one error line naming the group and
the read's position, without retrying it, in little memory and CPU time.

The endpoint is a local HTTP server in the test, set as ``service_endpoint`` as the other
tests set moto's address. Its first FilterLogEvents page is an ordinary one (two events and
a token); the answer to the request with that token is the hostile one (too large, or
nested too deep; a 200 page or an error answer), generated as it is sent (the 300 MB body
is never held by the test either). The collector is a real process; its peak
RSS and CPU time are its own, from ``wait4``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_FLAGS, Sink, cli_env, service_xml, write_config

ACCOUNT = "123456789012"
GROUP = "app"
STREAM = "web-1"
TOKEN = "page-2-token"
# Chunks the endpoint writes at a time.
PIECE = 64 * 1024
# The collector's start: a fixed day, so the position in the error line is known.
ONLY_AFTER = "2024-03-01"
START_MS = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)

# A run longer than this is killed (and fails its test); one takes about a second.
RUN_SECONDS = 60.0

Body = Callable[[], Iterator[bytes]]


def event(i: int, message: str) -> bytes:
    """One event as AWS writes it (compact JSON)."""
    return json.dumps(
        {
            "logStreamName": STREAM,
            "timestamp": START_MS + i,
            "message": message,
            "ingestionTime": START_MS + i + 5,
            "eventId": f"{i:056d}",
        },
        separators=(",", ":"),
    ).encode()


def first_page() -> Iterator[bytes]:
    """An ordinary page: two events, and a token for the next."""
    events = b",".join(event(i, f"ordinary {i}") for i in range(2))
    yield b'{"events":[' + events + b'],"nextToken":"' + TOKEN.encode() + b'"}'


def first_page_without_token() -> Iterator[bytes]:
    """An ordinary last page: the baseline's."""
    yield b'{"events":[' + event(2, "ordinary 2") + b"]}"


def body_300mb() -> Iterator[bytes]:
    """300 MB of events of 1,000,000-byte messages: each event within AWS's limits, the
    page far beyond them."""
    yield b'{"events":['
    sent = 0
    i = 0
    while sent < 300 * 1024 * 1024:
        piece = (b"," if i else b"") + event(i, "x" * 1_000_000)
        yield piece
        sent += len(piece)
        i += 1
    yield b'],"nextToken":"t"}'


def body_32mb_message() -> Iterator[bytes]:
    """One event whose message is 32 MB, written a piece at a time."""
    head, tail = event(0, "\0").split(b"\\u0000")
    yield b'{"events":[' + head
    for _ in range(32 * 1024 * 1024 // PIECE):
        yield b"y" * PIECE
    yield tail + b"]}"


def body_2mb_message() -> Iterator[bytes]:
    """One event whose message is 2 MB: its text within what one event's may take (were
    it escaped), the message itself twice AWS's limit."""
    yield b'{"events":[' + event(0, "z" * 2_000_000) + b"]}"


def body_nested() -> Iterator[bytes]:
    """An event nested 100,000 levels deep (AWS's nest two): deeper than Python decodes."""
    yield b'{"events":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}"


def body_10001_events() -> Iterator[bytes]:
    """10,001 tiny events: one more than a page holds."""
    yield b'{"events":[' + b",".join(event(i, "e") for i in range(10_001)) + b"]}"


def denied() -> Iterator[bytes]:
    """AWS's answer to a call the policy does not allow."""
    yield b'{"__type":"AccessDeniedException","message":"not allowed: logs:FilterLogEvents"}'


def streams() -> Iterator[bytes]:
    """The group's one stream, with events in the collector's range."""
    stream = {
        "logStreamName": STREAM,
        "creationTime": START_MS,
        "firstEventTimestamp": START_MS,
        "lastEventTimestamp": START_MS + 10_000,
        "lastIngestionTime": START_MS + 10_005,
    }
    yield json.dumps({"logStreams": [stream]}).encode()


def no_streams() -> Iterator[bytes]:
    """A group without streams."""
    yield b'{"logStreams":[]}'


def empty() -> Iterator[bytes]:
    """The answer of any other call."""
    yield b"{}"


class Endpoint:
    """A CloudWatch Logs endpoint of ours: FilterLogEvents answers ``first_page``, then
    ``hostile`` (with ``status``) for the request with its token; every other call an empty
    answer. With ``deny_filter``, FilterLogEvents is denied, DescribeLogStreams lists one
    stream and GetLogEvents answers ``hostile``. It keeps each request for events."""

    def __init__(self, hostile: Body, status: int = 200, *, deny_filter: bool = False) -> None:
        self.filters: list[dict[str, Any]] = []
        self.gets: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: each answer ends when the connection closes, so none needs a length.
            protocol_version = "HTTP/1.0"

            def log_message(self, *_args: object) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                code = 200
                if operation == "FilterLogEvents" and deny_filter:
                    body, code = denied, 400
                elif operation == "GetLogEvents":
                    endpoint.gets.append(request)
                    body = hostile
                elif operation == "FilterLogEvents":
                    endpoint.filters.append(request)
                    if request.get("nextToken") == TOKEN:
                        body, code = hostile, status
                    else:
                        body = first_page
                elif operation == "DescribeLogStreams":
                    body = streams if deny_filter else no_streams
                else:
                    body = empty
                self.send_response(code)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.end_headers()
                try:
                    for piece in body():
                        self.wfile.write(piece)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the collector stopped reading, as it should

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Run:
    """One ``run --once`` of the collector: its exit code, stderr, peak RSS and CPU."""

    code: int
    stderr: str
    peak_mb: float
    cpu_s: float


def collect(folder: Path, sink: Sink, url: str) -> Run:
    """Run the collector once against ``url``; its own peak RSS and CPU time from wait4."""
    service = service_xml(
        url, GROUP, "us-east-1", aws_account_id=ACCOUNT, only_logs_after=ONLY_AFTER
    )
    config = write_config(folder, service)
    err_path = folder / "stderr.txt"
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aws_wodle", "run", "--once", "--config", str(config),
             "--queue", sink.path, "--state", str(folder / "state.db"), *TEST_FLAGS],
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        # A collector that takes the whole answer would read 300 MB for minutes: it fails.
        deadline = threading.Timer(RUN_SECONDS, proc.kill)
        deadline.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            deadline.cancel()
            proc.returncode = 0  # reaped here: Popen must not wait for it again
    return Run(
        code=os.waitstatus_to_exitcode(status),
        stderr=err_path.read_text(),
        peak_mb=usage.ru_maxrss / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The collector reading two ordinary pages: its peak RSS and CPU time for reference."""
    folder = tmp_path_factory.mktemp("baseline")
    endpoint = Endpoint(first_page_without_token)
    sink = Sink(str(folder / "q"))
    sink.bind()
    try:
        run = collect(folder, sink, endpoint.url)
    finally:
        sink.unbind()
        endpoint.stop()
    assert run.code == 0, run.stderr
    return run


CASES = {
    "300 MB body": (body_300mb, 200, "a body of more than 47,316,992 bytes"),
    "32 MB message": (body_32mb_message, 200, "one event of more than 6,295,552 bytes"),
    "2 MB message": (body_2mb_message, 200, "message is more than 1,048,576 bytes"),
    "10,001 events": (body_10001_events, 200, "more than 10,000 events"),
    "nested JSON": (body_nested, 200, "nested deeper"),
    # An error answer is bounded too (botocore would read it whole, then retry it).
    "300 MB error answer": (body_300mb, 500, "a body of more than 4,194,304 bytes"),
    "nested error answer": (body_nested, 400, "nested deeper"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_oversized_page_is_refused_in_one_line_in_little_memory_and_cpu(
    case: str, tmp_path: Path, sink: Sink, baseline: Run
) -> None:
    """The page is refused while it is read: one error line names the region, the group
    and the position (time range and token); the page is not asked again this cycle; the
    events before it are sent; memory and CPU stay near an ordinary run's."""
    hostile, status, reason = CASES[case]
    endpoint = Endpoint(hostile, status)
    try:
        run = collect(tmp_path, sink, endpoint.url)
    finally:
        endpoint.stop()
    print(f"{case}: peak RSS {run.peak_mb:.0f} MB, CPU {run.cpu_s:.2f} s; baseline "
          f"{baseline.peak_mb:.0f} MB, {baseline.cpu_s:.2f} s")  # fmt: skip
    assert run.code == 1, run.stderr
    refused = [line for line in run.stderr.splitlines() if "refused" in line]
    assert len(refused) == 1, run.stderr
    line = refused[0]
    assert "us-east-1" in line
    assert f"log group {GROUP}" in line
    assert reason in line
    assert "2024-03-01T00:00:00.000" in line
    assert TOKEN in line
    assert "Traceback" not in run.stderr
    # Asked once: a refused page is not retried as a transient error.
    assert [f.get("nextToken") for f in endpoint.filters] == [None, TOKEN]
    sink.wait_for(2, timeout=5)
    assert sink.messages() == ["ordinary 0", "ordinary 1"]
    assert run.peak_mb < baseline.peak_mb + 80
    assert run.cpu_s < baseline.cpu_s + 2.0


def test_the_next_cycle_reads_from_before_the_refused_page(tmp_path: Path, sink: Sink) -> None:
    """Nothing is committed past a refused page: the next run reads again from the last
    event sent (and fails the same way while the endpoint sends the same page); the events
    before it are sent once."""
    endpoint = Endpoint(body_10001_events)
    try:
        first = collect(tmp_path, sink, endpoint.url)
        runs = len(endpoint.filters)
        second = collect(tmp_path, sink, endpoint.url)
    finally:
        endpoint.stop()
    assert (first.code, second.code) == (1, 1), second.stderr
    assert second.stderr.count("10,000 events") == 1, second.stderr
    again = endpoint.filters[runs:]
    # The first page ended with the event at START_MS + 1, the last one sent.
    assert again[0]["startTime"] <= START_MS + 1, again
    assert [f.get("nextToken") for f in again] == [None, TOKEN]
    sink.wait_for(2, timeout=5)
    assert sorted(sink.messages()) == ["ordinary 0", "ordinary 1"]


def test_a_stream_read_names_the_stream(tmp_path: Path, sink: Sink) -> None:
    """Where FilterLogEvents is denied and each stream is read with GetLogEvents, the line
    of a refused page names the stream too, and the page is asked once."""
    endpoint = Endpoint(body_10001_events, deny_filter=True)
    try:
        run = collect(tmp_path, sink, endpoint.url)
    finally:
        endpoint.stop()
    assert run.code == 1, run.stderr
    refused = [line for line in run.stderr.splitlines() if "refused" in line]
    assert len(refused) == 1, run.stderr
    assert f"log group {GROUP}" in refused[0]
    assert "GetLogEvents answer refused: more than 10,000 events" in refused[0]
    assert f"stream {STREAM}, events from 2024-03-01T00:00:00.000" in refused[0]
    assert len(endpoint.gets) == 1, endpoint.gets
