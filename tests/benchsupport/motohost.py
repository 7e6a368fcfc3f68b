"""moto's server in a process of its own, filled directly by the benchmark.

Creating 100,000 streams over HTTP takes minutes; here the benchmark sends this process
what to create (one JSON line on stdin per command, one JSON answer line on stdout) and it
builds moto's own objects in moto's in-memory backend, with the timestamps and ingestion
times asked for, while moto's server (the same WSGI application that ``moto.server`` and
``ThreadedMotoServer`` run) answers HTTP on a loopback port from the same backend.

A WSGI layer of ours in front of moto's application counts, per operation and region, the
CloudWatch Logs requests moto answered and the events its GetLogEvents and FilterLogEvents
answers held: what the collector read, as opposed to what it forwarded.

FilterLogEvents over a whole group, interleaved and without a pattern (the collector's read)
is answered from a time index of ours (``TimeIndex``) instead of moto's scan, which builds
every stored event's answer on every page: the same pages, tokens and order as moto's (a
stable sort by timestamp of the streams' events in stream order), at the cost of the page
rather than of the group. Other FilterLogEvents calls go to moto's own code. ``trim`` drops
events older than any read will ask for again, so that hours of a busy group stay cheap.

Run as ``python -m benchsupport.motohost [--moto-searched-streams]`` (with ``tests/`` on
``PYTHONPATH``); it prints ``{"port": N}`` once it serves.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from moto.logs.models import LogEvent, LogGroup, LogStream, logs_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from benchsupport.flows import ACCOUNT, flow_line

READS = ("GetLogEvents", "FilterLogEvents")
CREDENTIAL = re.compile(r"Credential=[^/]+/\d+/([^/]+)/")


class Counting:
    """WSGI middleware: counts CloudWatch Logs requests, and the events read, by operation
    and region; with ``aws_searched`` it answers FilterLogEvents' ``searchedLogStreams`` as
    AWS has since May 2020, an empty list (moto lists every stream of the group, 100,000
    entries a page for a group of 100,000 streams)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, aws_searched: bool) -> None:
        self.app = app
        self.aws_searched = aws_searched
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target:
            return self.app(environ, start_response)
        operation = target.rsplit(".", 1)[-1]
        found = CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        key = f"{operation} {found.group(1) if found else 'unknown'}"
        if operation not in READS:
            with self.lock:
                self.calls[key] += 1
            return self.app(environ, start_response)
        started: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda _data: None

        answer = self.app(environ, hold)
        body = b"".join(answer)
        close = getattr(answer, "close", None)
        if close is not None:
            close()
        status, headers = started
        if self.aws_searched and b'"searchedLogStreams": [{' in body:
            page = json.loads(body)
            page["searchedLogStreams"] = []
            body = json.dumps(page).encode()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        with self.lock:
            self.calls[key] += 1
            # moto writes one "ingestionTime" key per event, and none elsewhere.
            self.events[key] += body.count(b'"ingestionTime"')
        return [body]


class TimeIndex:
    """A group's events sorted as moto's interleaved FilterLogEvents sorts them: by
    timestamp, then stream order, then order within the stream (moto's sorts are stable)."""

    def __init__(self) -> None:
        self.shape: list[tuple[str, int]] = []  # (stream, events indexed) in stream order
        self.rows: list[tuple[int, int, int, LogEvent]] = []
        self.times: list[int] = []
        self.position: dict[int, int] = {}  # event id -> index in rows

    def refresh(self, group: LogGroup) -> None:
        shape = [(name, len(stream.events)) for name, stream in group.streams.items()]
        if shape == self.shape:
            return
        grown = len(shape) >= len(self.shape) and all(
            new[0] == old[0] and new[1] >= old[1]
            for new, old in zip(shape, self.shape, strict=False)
        )
        if not grown:
            self.shape, self.rows = [], []
        done = dict(self.shape)
        for order, (name, stream) in enumerate(group.streams.items()):
            start = done.get(name, 0)
            self.rows.extend(
                (event.timestamp, order, start + k, event)
                for k, event in enumerate(stream.events[start:])
            )
        # A sorted run and an appended one, merged; (timestamp, order, position) is unique,
        # so the events themselves are never compared.
        self.rows.sort()
        self.times = [row[0] for row in self.rows]
        self.position = {row[3].event_id: k for k, row in enumerate(self.rows)}
        self.shape = shape

    def page(
        self, group: LogGroup, start: int | None, end: int | None, limit: int, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """moto's page for these arguments (see ``LogGroup.filter_log_events``)."""
        self.refresh(group)
        lo = bisect.bisect_left(self.times, start) if start else 0
        hi = bisect.bisect_right(self.times, end) if end else len(self.rows)
        first = lo
        if token:
            parts = token.split("@")
            known = len(parts) == 3 and parts[2].isdigit()
            where = self.position.get(int(parts[2])) if known else None
            names = [name for name, _ in self.shape]
            if (
                parts[0] != group.name
                or where is None
                or not lo <= where < hi
                or names[self.rows[where][1]] != parts[1]
            ):
                return [], None  # moto: an unknown token answers an empty page
            first = where + 1
        last = min(first + limit, hi)
        names = [name for name, _ in self.shape]
        events = []
        for _, order, _, event in self.rows[first:last]:
            answer = event.to_filter_dict()
            answer["logStreamName"] = names[order]
            events.append(answer)
        following = None
        if events and last < hi:
            following = f"{group.name}@{events[-1]['logStreamName']}@{events[-1]['eventId']}"
        return events, following


INDEXES: dict[int, TimeIndex] = {}
TRIMMED: dict[int, int] = {}  # group -> the time before which its events were dropped
MISSES = Counter[str]()  # reads that asked for dropped times
MOTO_FILTER = LogGroup.filter_log_events


def indexed_filter(  # noqa: PLR0917 - moto's own signature, called positionally
    self: LogGroup,
    log_group_name: str,
    log_stream_names: list[str],
    start_time: int,
    end_time: int,
    limit: int | None,
    next_token: str | None,
    filter_pattern: str,
    interleaved: bool,
) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
    """FilterLogEvents as moto answers it, from the group's ``TimeIndex`` when it can."""
    dropped = TRIMMED.get(id(self))
    if dropped is not None and (not start_time or start_time < dropped):
        MISSES["FilterLogEvents"] += 1
    if log_stream_names or filter_pattern or not interleaved:
        return MOTO_FILTER(
            self, log_group_name, log_stream_names, start_time, end_time, limit, next_token,
            filter_pattern, interleaved,
        )  # fmt: skip
    index = INDEXES.setdefault(id(self), TimeIndex())
    events, token = index.page(self, start_time, end_time, limit or 10000, next_token)
    searched = [
        {"logStreamName": stream.log_stream_name, "searchedCompletely": True}
        for stream in self.streams.values()
    ]
    return events, token, searched


def trim(command: dict[str, Any]) -> int:
    """Drop the group's events stamped before ``before`` (ms); how many were dropped."""
    group = group_of(command["region"], command["group"])
    before = int(command["before"])
    dropped = 0
    for stream in group.streams.values():
        kept = [e for e in stream.events if e.timestamp >= before]
        dropped += len(stream.events) - len(kept)
        stream.events = kept
    INDEXES.pop(id(group), None)
    TRIMMED[id(group)] = max(before, TRIMMED.get(id(group), before))
    return dropped


def to_datetime(ms: int) -> datetime:
    """moto's naive UTC datetime for a time in ms."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).replace(tzinfo=None)


def group_of(region: str, name: str) -> LogGroup:
    backend = logs_backends[ACCOUNT][region]
    group = backend.groups.get(name)
    if group is None:
        group = backend.create_log_group(name, {})
    return group


def stream_of(group: LogGroup, name: str) -> LogStream:
    stream = group.streams.get(name)
    if stream is None:
        stream = LogStream(group, name)
        group.streams[name] = stream
    return stream


def append(stream: LogStream, events: list[LogEvent]) -> None:
    """Add events to a stream as PutLogEvents would, with their own ingestion times."""
    if not events:
        return
    stream.events.extend(events)
    newest = max(e.ingestion_time for e in events)
    last = stream.last_ingestion_time
    if last is None or to_datetime(newest) > last:
        stream.last_ingestion_time = to_datetime(newest)
    stream.stored_bytes += sum(len(e.message) for e in events)
    stream.upload_sequence_token += 1


def fill(command: dict[str, Any]) -> int:
    """Streams ``names`` of a group, each given ``per_stream`` events: stream ``i``, event
    ``j`` is sequence ``seq + i * per_stream + j`` at ``ts + i * ts_stream + j * ts_event``,
    ingested ``ingest_delay`` ms after its timestamp (or at ``ingest``, when given)."""
    group = group_of(command["region"], command["group"])
    per_stream = int(command.get("per_stream", 0))
    seq, ts = int(command.get("seq", 0)), int(command.get("ts", 0))
    ts_stream, ts_event = int(command.get("ts_stream", 0)), int(command.get("ts_event", 1))
    delay, fixed = int(command.get("ingest_delay", 0)), command.get("ingest")
    put = 0
    for i, name in enumerate(command["names"]):
        stream = stream_of(group, name)
        events = []
        for j in range(per_stream):
            n = seq + i * per_stream + j
            when = ts + i * ts_stream + j * ts_event
            ingest = int(fixed) if fixed is not None else when + delay
            events.append(LogEvent(ingest, {"timestamp": when, "message": flow_line(n, when)}))
        append(stream, events)
        put += len(events)
    return put


def put(command: dict[str, Any]) -> int:
    """Explicit events: ``[stream name, seq, timestamp, ingestion time]`` each, in the order
    they were ingested."""
    group = group_of(command["region"], command["group"])
    by_stream: dict[str, list[LogEvent]] = {}
    for name, seq, when, ingest in command["events"]:
        event = LogEvent(int(ingest), {"timestamp": int(when), "message": flow_line(seq, when)})
        by_stream.setdefault(str(name), []).append(event)
    for name, events in by_stream.items():
        append(stream_of(group, name), events)
    return sum(len(e) for e in by_stream.values())


def main() -> None:
    LogGroup.filter_log_events = indexed_filter  # type: ignore[method-assign]
    aws_searched = "--moto-searched-streams" not in sys.argv[1:]
    counting = Counting(DomainDispatcherApplication(create_backend_app), aws_searched=aws_searched)
    server = make_server("127.0.0.1", 0, counting, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = sys.stdout
    out.write(json.dumps({"port": server.server_address[1]}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        kind = command.get("cmd")
        answer: dict[str, Any]
        try:
            if kind == "fill":
                answer = {"put": fill(command)}
            elif kind == "put":
                answer = {"put": put(command)}
            elif kind == "trim":
                answer = {"dropped": trim(command)}
            elif kind == "trim_misses":
                answer = {"misses": sum(MISSES.values())}
            elif kind == "group":
                group_of(command["region"], command["group"])
                answer = {}
            elif kind == "counts":
                with counting.lock:
                    answer = {"calls": dict(counting.calls), "events": dict(counting.events)}
            elif kind == "stop":
                break
            else:
                answer = {"error": f"unknown command {kind!r}"}
        except Exception as exc:  # noqa: BLE001 - reported to the benchmark, which stops
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    server.shutdown()


if __name__ == "__main__":
    main()
