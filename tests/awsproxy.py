"""An HTTP proxy in front of moto that counts calls, injects faults, and behaves like AWS.

It forwards every request to moto, counts calls by operation, and for chosen calls answers
instead: ThrottlingException, a 5xx, a refused GetLogEvents token, a delay or a reset
connection (or, for Kinesis, ProvisionedThroughputExceededException). It can also enforce
per-operation request rates, answering ThrottlingException beyond them, as CloudWatch Logs'
quotas do.

With an ``AwsLike`` it also gives moto the CloudWatch Logs behaviours that AWS documents and
moto lacks, each switched on alone: a read-after-write (visibility) delay with ingestion
times stamped at acceptance, stale DescribeLogStreams time fields, 1 MB pages, short and
empty FilterLogEvents pages, an exclusive ``endTime`` and interleaved FilterLogEvents.
Every answer carries an HTTP ``Date`` header from this host's clock (AWS's clock, as the
collector sees it).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import heapq
import http.client
import json
import random
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) forwarding one call."""

    # "throttle", "5xx", "reset", "reject-token", "delay", "shard-throughput" (Kinesis'
    # ProvisionedThroughputExceededException, as a shard past its read limit answers),
    # "cut" (the real answer's status, headers and Content-Length, then half its body and a
    # closed connection) or "garbled" (the real answer's status and headers, a body that is
    # not JSON)
    kind: str
    seconds: float = 0.0


Policy = Callable[[str, dict[str, object]], Fault | None]

# CloudWatch Logs' page limit: UTF-8 message bytes plus 26 bytes per event.
PAGE_BYTES = 1_048_576
EVENT_OVERHEAD = 26
STREAM_FIELDS = ("firstEventTimestamp", "lastEventTimestamp", "lastIngestionTime")
# PutLogEvents accepts events up to 14 days old and 2 hours ahead of AWS's clock.
TOO_OLD_MS = 14 * 86_400_000
TOO_NEW_MS = 2 * 3_600_000
TOKEN_PREFIX = "awslike."


@dataclass(frozen=True)
class AwsLike:
    """CloudWatch Logs behaviours of AWS that moto lacks; each one is off unless set.

    - ``visibility=(lo, hi)``: a PutLogEvents batch is answered at once (200, with a
      ``nextSequenceToken``) and reaches moto after a delay uniform in [lo, hi] seconds, in
      order per stream; reads show each event's ``ingestionTime`` as the moment the proxy
      accepted it, so an event becomes readable after its ingestion time, as on AWS.
    - ``stale_fields=N``: DescribeLogStreams serves firstEventTimestamp, lastEventTimestamp
      and lastIngestionTime from a per-stream snapshot refreshed from moto every N seconds.
    - ``page_cap``: GetLogEvents and FilterLogEvents pages hold at most 1 MB (message bytes
      + 26 per event), the next token resuming right after the last event returned.
    - ``short_pages``: FilterLogEvents pages cut short at random (0 events included) with a
      ``nextToken`` mid-result, and now and then an empty last page behind a token.
    - ``exclusive_end``: ``endTime`` excludes events at that millisecond (moto includes them).
    - ``interleaved``: FilterLogEvents always sorts by time across streams (AWS ignores the
      ``interleaved`` flag since 2019; moto honours it).
    - ``expiring_credentials``: a call signed with credentials from an AssumeRole answer
      after their ``Expiration`` (by AWS's clock) is refused with ExpiredTokenException, as
      AWS does (moto accepts them forever).
    - ``clock_rate=R``: AWS's clock runs R times as fast as this host's, from the proxy's
      start: the ``Date`` header, ingestion times and AssumeRole's ``Expiration`` follow it,
      and the durations above are on it (a visibility delay of 5 s takes 5/R s). With a
      collector under ``faketime -f '+0 xR'`` both clocks agree, and an hour passes in a
      minute (writers should stamp events with ``AwsProxy.aws_now``).
    """

    visibility: tuple[float, float] | None = None
    stale_fields: float | None = None
    page_cap: bool = False
    short_pages: bool = False
    exclusive_end: bool = False
    interleaved: bool = False
    expiring_credentials: bool = False
    clock_rate: float = 1.0
    short_chance: float = 0.3
    seed: int = 0

    @classmethod
    def all_on(
        cls,
        seed: int = 0,
        *,
        visibility: tuple[float, float] = (0.5, 5.0),
        stale_fields: float = 600.0,
        clock_rate: float = 1.0,
    ) -> AwsLike:
        """Every behaviour on, with AWS-like figures unless given (AWS's clock at the host's
        pace unless ``clock_rate`` says otherwise)."""
        return cls(
            visibility=visibility,
            stale_fields=stale_fields,
            page_cap=True,
            short_pages=True,
            exclusive_end=True,
            interleaved=True,
            expiring_credentials=True,
            clock_rate=clock_rate,
            seed=seed,
        )

    @property
    def max_visibility(self) -> float:
        return self.visibility[1] if self.visibility else 0.0

    def describe(self) -> str:
        """The behaviours on, in words, for reports."""
        parts = []
        if self.visibility:
            lo, hi = self.visibility
            parts.append(f"puts readable {lo:g}-{hi:g} s after acceptance")
        if self.stale_fields is not None:
            parts.append(f"stream fields refreshed every {self.stale_fields:g} s")
        if self.page_cap:
            parts.append("1 MB pages")
        if self.short_pages:
            parts.append(f"{self.short_chance:.0%} of filter pages cut short or empty")
        if self.exclusive_end:
            parts.append("exclusive endTime")
        if self.interleaved:
            parts.append("interleaved filter pages")
        if self.expiring_credentials:
            parts.append("expired role credentials refused")
        if self.clock_rate != 1.0:
            parts.append(f"AWS's clock {self.clock_rate:g} times as fast")
        return ", ".join(parts) or "moto as it is"


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


def region_of(headers: dict[str, str]) -> str:
    """The region of a SigV4-signed request (moto keeps regions apart by it)."""
    found = re.search(r"Credential=[^/]+/\d+/([^/]+)/", headers.get("authorization", ""))
    return found.group(1) if found else "us-east-1"


def group_of(request: dict[str, Any]) -> str:
    """The log group a request names, by name or by ARN."""
    name = request.get("logGroupName")
    if isinstance(name, str):
        return name
    ident = str(request.get("logGroupIdentifier", ""))
    if ident.startswith("arn:"):
        return ident.split(":log-group:", 1)[-1].removesuffix(":*")
    return ident


def event_size(event: dict[str, Any]) -> int:
    return len(str(event.get("message", "")).encode("utf-8", "surrogatepass")) + EVENT_OVERHEAD


def within_page(events: list[dict[str, Any]], limit: int = PAGE_BYTES) -> int:
    """How many events, from the first, fit in one page (at least one)."""
    total = 0
    for n, event in enumerate(events):
        total += event_size(event)
        if total > limit:
            return max(n, 1)
    return len(events)


def digest(message: str) -> bytes:
    return hashlib.blake2b(message.encode("utf-8", "surrogatepass"), digest_size=12).digest()


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
    """Calls seen, by operation, faults injected, by kind, and what the AWS-like parts did."""

    calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    shaped: Counter[str] = field(default_factory=Counter)
    delivery_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, operation: str, fault: Fault | None) -> None:
        with self.lock:
            self.calls[operation] += 1
            if fault is not None:
                self.faults[fault.kind] += 1

    def note(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.shaped[what] += n


def random_faults(
    seed: int,
    *,
    throttle: float = 0.0,
    server_error: float = 0.0,
    reset: float = 0.0,
    cut: float = 0.0,
    garbled: float = 0.0,
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
        chances = (
            ("throttle", throttle),
            ("5xx", server_error),
            ("reset", reset),
            ("cut", cut),
            ("garbled", garbled),
        )
        for kind, chance in chances:
            if roll < chance:
                return Fault(kind)
            roll -= chance
        if roll < delay:
            return Fault("delay", delay_seconds)
        return None

    return decide


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    data: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.data) if self.data else {}
        return value if isinstance(value, dict) else {}


@dataclass
class Batch:
    """A PutLogEvents batch accepted and not yet handed to moto."""

    stream: tuple[str, str, str]  # region, group, stream
    path: str
    headers: dict[str, str]
    body: bytes
    keys: list[tuple[str, str, str, int, bytes]]
    accepted_ms: int
    number: int = 0


@dataclass
class Accepted:
    """When the proxy accepted an event, and when it handed it to moto (moto's ingestion
    time falls in that window)."""

    at_ms: int
    sent_from: int = 0
    sent_to: int = 0


class AwsProxy:
    """The proxy server, on a free loopback port, in a background thread."""

    def __init__(
        self,
        upstream: str,
        policy: Policy | None = None,
        quotas: dict[str, float] | None = None,
        like: AwsLike | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.policy = policy
        self.buckets = {op: Bucket(rate) for op, rate in (quotas or {}).items()}
        self.stats = Stats()
        self.like = like or AwsLike()
        self._origin = time.time()
        self._expiry: dict[str, float] = {}
        self._local = threading.local()
        self._rng = random.Random(self.like.seed)
        self._lock = threading.Lock()
        self._accepted: dict[tuple[str, str, str, int, bytes], list[Accepted]] = {}
        self._snapshots: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self._known: set[tuple[str, str, str]] = set()
        self._sequence: Counter[tuple[str, str, str]] = Counter()
        self._tokens = 0
        self._chunk = 10_000
        # Delayed delivery: a heap of due batches, one serial queue per stream.
        self._due: list[tuple[float, int, Batch]] = []
        self._last_due: dict[tuple[str, str, str], float] = {}
        self._queues: dict[tuple[str, str, str], deque[Batch]] = {}
        self._busy: set[tuple[str, str, str]] = set()
        self._pending = 0
        self._batches = 0
        self._undelivered: dict[int, float] = {}  # batch number: when it is due
        self.last_accept_ms = 0
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="awslike-deliver")
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)
        self._scheduler.start()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.formatdate(
                    proxy.aws_now() if timestamp is None else timestamp, usegmt=True
                )

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and the client's delayed ACK add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *_args: object) -> None:
                return

            def do_POST(self) -> None:
                self._handle()

            def do_GET(self) -> None:
                self._handle()

            def _handle(self) -> None:
                try:
                    proxy.handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (a killed collector)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def aws_now(self) -> float:
        """AWS's clock, epoch seconds: this host's, or faster with ``clock_rate``."""
        return self._origin + (time.time() - self._origin) * self.like.clock_rate

    def aws_ms(self) -> int:
        return int(self.aws_now() * 1000)

    def _real(self, seconds: float) -> float:
        """How long a duration on AWS's clock takes on this host's."""
        return seconds / self.like.clock_rate

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the request path -------------------------------------------------------------

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
            elif fault.kind not in {"cut", "garbled"}:
                _answer_fault(handler, fault)
                return
        if self._expired(headers):
            self.stats.note("expired credentials refused")
            _reply(
                handler,
                _json_answer(
                    400,
                    {
                        "__type": "ExpiredTokenException",
                        "message": "The security token included in the request is expired",
                    },
                ),
            )
            return
        shape = {
            "AssumeRole": self._assume_role,
            "PutLogEvents": self._put,
            "GetLogEvents": self._get,
            "FilterLogEvents": self._filter,
            "DescribeLogStreams": self._describe,
            "CreateLogStream": self._create,
        }.get(operation)
        if shape is None:
            answer = self._exchange(handler.command, handler.path, headers, body)
        else:
            answer = shape(handler.path, headers, body, request)
        if fault is not None and fault.kind == "garbled":
            answer = Answer(answer.status, answer.headers, b"<html>" + answer.data[:100])
        if fault is not None and fault.kind == "cut":
            _reply_cut(handler, answer)
            return
        _reply(handler, answer)

    def _expired(self, headers: dict[str, str]) -> bool:
        """Whether a CloudWatch Logs call is signed with role credentials past expiry."""
        if not self.like.expiring_credentials or "x-amz-target" not in headers:
            return False
        found = re.search(r"Credential=([^/]+)/", headers.get("authorization", ""))
        with self._lock:
            expiry = self._expiry.get(found.group(1)) if found else None
        return expiry is not None and self.aws_now() >= expiry

    def _assume_role(
        self, path: str, headers: dict[str, str], body: bytes, _request: dict[str, Any]
    ) -> Answer:
        """STS AssumeRole: the credentials' Expiration on AWS's clock, and remembered."""
        answer = self._exchange("POST", path, headers, body)
        like = self.like
        if answer.status != 200 or not (like.expiring_credentials or like.clock_rate != 1.0):
            return answer
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        duration = int(params.get("DurationSeconds", ["3600"])[0])
        expiry = self.aws_now() + duration
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
        text = answer.data.decode()
        text = re.sub(r"<Expiration>[^<]*</Expiration>", f"<Expiration>{stamp}</Expiration>", text)
        key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        if key:
            with self._lock:
                self._expiry[key.group(1)] = float(int(expiry))
        self.stats.note("roles assumed")
        return Answer(answer.status, answer.headers, text.encode())

    def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """One request to moto, on this thread's connection."""
        sent = {k: v for k, v in headers.items() if k not in {"connection", "content-length"}}
        for attempt in range(2):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(
                    self.upstream_host, self.upstream_port, timeout=120
                )
                self._local.conn = conn
            try:
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                return Answer(response.status, response.getheaders(), response.read())
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _call(
        self, path: str, headers: dict[str, str], operation: str, request: dict[str, Any]
    ) -> Answer:
        """A CloudWatch Logs JSON call of the proxy's own, signed like the client's."""
        own = dict(headers, **{"x-amz-target": f"Logs_20140328.{operation}"})
        return self._exchange("POST", path, own, json.dumps(request).encode())

    # -- PutLogEvents: answered at once, readable later ---------------------------------

    def _put(
        self, path: str, headers: dict[str, str], body: bytes, request: dict[str, Any]
    ) -> Answer:
        if not self.like.visibility:
            return self._exchange("POST", path, headers, body)
        region = region_of(headers)
        group, name = group_of(request), str(request.get("logStreamName", ""))
        events = request.get("logEvents")
        stamps = [e.get("timestamp") for e in events] if isinstance(events, list) else []
        ordered = all(isinstance(t, int) for t in stamps) and stamps == sorted(stamps)
        if not stamps or not ordered:
            return self._exchange("POST", path, headers, body)  # moto's own error
        key = (region, group, name)
        if key not in self._known:
            missing = self._check_stream(path, headers, group, name)
            if missing is not None:
                return missing
            self._known.add(key)
        now_ms = self.aws_ms()
        assert isinstance(events, list)
        kept, rejected = [], {}
        for index, event in enumerate(events):
            if event["timestamp"] < now_ms - TOO_OLD_MS:
                rejected["tooOldLogEventEndIndex"] = index
            elif event["timestamp"] > now_ms + TOO_NEW_MS:
                rejected.setdefault("tooNewLogEventStartIndex", index)
            else:
                kept.append(event)
        with self._lock:
            self._sequence[key] += 1
            sequence = self._sequence[key]
        answer: dict[str, Any] = {"nextSequenceToken": f"{sequence:056d}"}
        if rejected:
            answer["rejectedLogEventsInfo"] = rejected
        if kept:
            keys = [(region, group, name, e["timestamp"], digest(str(e["message"]))) for e in kept]
            batch = Batch(
                key, path, headers, json.dumps(dict(request, logEvents=kept)).encode(), keys, now_ms
            )
            self._accept(batch)
        return _json_answer(200, answer)

    def _check_stream(
        self, path: str, headers: dict[str, str], group: str, name: str
    ) -> Answer | None:
        """AWS refuses a put to a missing group or stream at once: ask moto before accepting."""
        found = self._call(
            path,
            headers,
            "DescribeLogStreams",
            {"logGroupName": group, "logStreamNamePrefix": name, "limit": 1},
        )
        if found.status != 200:
            return found
        streams = found.json().get("logStreams") or []
        if streams and streams[0].get("logStreamName") == name:
            return None
        return _json_answer(
            400,
            {
                "__type": "ResourceNotFoundException",
                "message": "The specified log stream does not exist.",
            },
        )

    def _accept(self, batch: Batch) -> None:
        lo, hi = self.like.visibility or (0.0, 0.0)
        with self._wake:
            for key in batch.keys:
                self._accepted.setdefault(key, []).append(Accepted(batch.accepted_ms))
            delay = self._real(self._rng.uniform(lo, hi))
            due = max(time.monotonic() + delay, self._last_due.get(batch.stream, 0.0))
            self._last_due[batch.stream] = due
            self._batches += 1
            batch.number = self._batches
            self._undelivered[batch.number] = due
            heapq.heappush(self._due, (due, self._batches, batch))
            self._pending += 1
            self.last_accept_ms = max(self.last_accept_ms, batch.accepted_ms)
            self._wake.notify_all()
        self.stats.note("puts delayed")

    def _schedule(self) -> None:
        """Hand each batch, when due, to its stream's serial queue."""
        with self._wake:
            while not self._stopping:
                if not self._due:
                    self._wake.wait()
                    continue
                due, _, batch = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._due)
                self._queues.setdefault(batch.stream, deque()).append(batch)
                if batch.stream not in self._busy:
                    self._busy.add(batch.stream)
                    self._pool.submit(self._drain, batch.stream)

    def _drain(self, stream: tuple[str, str, str]) -> None:
        while True:
            with self._wake:
                queue = self._queues[stream]
                if not queue or self._stopping:
                    self._busy.discard(stream)
                    return
                batch = queue.popleft()
            sent_from = int(time.time() * 1000)
            try:
                answer = self._exchange("POST", batch.path, batch.headers, batch.body)
                problem = "" if answer.status == 200 else answer.data.decode("utf-8", "replace")
            except OSError as exc:
                problem = repr(exc)
            sent_to = int(time.time() * 1000) + 1
            with self._wake:
                for key in batch.keys:
                    for record in self._accepted.get(key, ()):
                        if record.at_ms == batch.accepted_ms and not record.sent_to:
                            record.sent_from, record.sent_to = sent_from, sent_to
                            break
                self._pending -= 1
                self._undelivered.pop(batch.number, None)
                self._wake.notify_all()
            if problem:
                with self.stats.lock:
                    self.stats.delivery_errors.append(f"{batch.stream}: {problem[:300]}")

    def pending(self) -> int:
        """Batches accepted and not yet readable."""
        with self._lock:
            return self._pending

    def wait_delivered(self, timeout: float = 60.0) -> bool:
        """Wait until every batch accepted so far has reached moto."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.5))
        return True

    def wait_settled(self, settle: float, timeout: float = 60.0) -> None:
        """Wait until everything accepted so far is readable and at least ``settle`` seconds
        (plus the 1 s of the ``Date`` header's resolution) older than this proxy's clock, so
        that a collector with that settle margin forwards all of it in its next read."""
        assert self.wait_delivered(timeout), "puts still undelivered"
        ready = self.last_accept_ms / 1000 + settle + 1.2
        time.sleep(max(0.0, self._real(ready - self.aws_now())))

    def accepted_at(self, region: str, group: str, stream: str, event: dict[str, Any]) -> int:
        """The acceptance time of one event read from moto (its moto ingestion time kept when
        the proxy did not see it put)."""
        key = (region, group, stream, int(event["timestamp"]), digest(str(event["message"])))
        moto_time = int(event.get("ingestionTime", 0))
        with self._lock:
            records = self._accepted.get(key)
            if not records:
                return moto_time
            if len(records) == 1:
                return records[0].at_ms
            for record in records:
                if record.sent_from <= moto_time <= record.sent_to:
                    return record.at_ms
            return records[0].at_ms

    def _restamp(self, region: str, group: str, events: list[dict[str, Any]], stream: str) -> None:
        if not self.like.visibility:
            return
        for event in events:
            name = str(event.get("logStreamName", stream))
            event["ingestionTime"] = self.accepted_at(region, group, name, event)

    # -- reads --------------------------------------------------------------------------

    def _note_read(self) -> None:
        """Before a read: wait until every put whose delay is over has reached moto (so a
        busy host never makes a put readable later than the delay drawn for it); count the
        reads made while accepted puts were still not readable."""
        now = time.monotonic()
        deadline = now + 30
        with self._wake:
            while time.monotonic() < deadline and any(
                due <= now for due in self._undelivered.values()
            ):
                self._wake.wait(0.05)
            pending = len(self._undelivered)
        if pending:
            self.stats.note("reads with puts pending")

    def _exclusive_end(self, request: dict[str, Any]) -> dict[str, Any]:
        end = request.get("endTime")
        if self.like.exclusive_end and isinstance(end, int):
            self.stats.note("end made exclusive")
            return dict(request, endTime=end - 1)
        return request

    def _limit(self, wanted: int) -> int:
        """How many events to ask moto for at once while assembling a capped page: about
        what fits in 1 MB at the sizes seen last (moto would otherwise hand over up to
        10,000 events of up to 1 MB each, for every page)."""
        with self._lock:
            return max(1, min(wanted, self._chunk))

    def _learn(self, events: list[dict[str, Any]]) -> None:
        if events:
            average = sum(event_size(e) for e in events) / len(events)
            with self._lock:
                self._chunk = int(min(10_000, max(10, 1.25 * PAGE_BYTES / average)))

    def _gather(
        self,
        path: str,
        headers: dict[str, str],
        operation: str,
        sent: dict[str, Any],
        token_of: Callable[[dict[str, Any]], str | None],
    ) -> tuple[Answer, list[dict[str, Any]], dict[str, Any] | None]:
        """Read from moto, in small pages, until 1 MB, the caller's limit or the end: the
        first answer, the events, and the last page (None when moto refused)."""
        wanted = int(sent.get("limit") or 10_000)
        events: list[dict[str, Any]] = []
        size = 0
        first: Answer | None = None
        request = dict(sent)
        while True:
            request["limit"] = self._limit(wanted - len(events))
            answer = self._call(path, headers, operation, request)
            first = first or answer
            if answer.status != 200:
                return answer, events, None
            page = answer.json()
            got: list[dict[str, Any]] = page.get("events") or []
            self._learn(got)
            events += got
            size += sum(event_size(e) for e in got)
            following = token_of(page)
            if not got or not following or size > PAGE_BYTES or len(events) >= wanted:
                return first, events, page
            request["nextToken"] = following

    def _get(
        self, path: str, headers: dict[str, str], body: bytes, request: dict[str, Any]
    ) -> Answer:
        like = self.like
        if not (like.visibility or like.page_cap or like.exclusive_end):
            return self._exchange("POST", path, headers, body)
        self._note_read()
        sent = self._exclusive_end(request)
        token = str(request.get("nextToken") or "")
        backward = token.startswith("b/") or (not token and not request.get("startFromHead"))
        if like.page_cap and not backward:
            # moto's tokens: f/INDEX (the last event given) and b/INDEX (the first given);
            # the same forward token back means the end of the stream.
            def forward(page: dict[str, Any]) -> str | None:
                return str(page.get("nextForwardToken") or "") or None

            answer, events, last = self._gather(path, headers, "GetLogEvents", sent, forward)
            if last is None:
                return answer
            page = dict(last, nextBackwardToken=answer.json().get("nextBackwardToken"))
        else:
            answer = self._call(path, headers, "GetLogEvents", sent)
            if answer.status != 200:
                return answer
            page = answer.json()
            events = page.get("events") or []
        self._restamp(
            region_of(headers), group_of(request), events, str(request.get("logStreamName"))
        )
        keep = within_page(events) if like.page_cap else len(events)
        if keep < len(events):
            self.stats.note("pages capped")
            first = int(str(page["nextBackwardToken"])[2:])
            if backward:
                skip = len(events) - keep
                events = events[skip:]
                page["nextBackwardToken"] = f"b/{first + skip:056d}"
            else:
                events = events[:keep]
                page["nextForwardToken"] = f"f/{first + keep - 1:056d}"
        page["events"] = events
        return _json_answer(200, page, answer)

    def _wrap(self, upstream: str | None) -> str:
        with self._lock:
            self._tokens += 1
            n = self._tokens
        raw = json.dumps({"u": upstream, "n": n}).encode()
        return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def _unwrap(token: str) -> str | None:
        if not token.startswith(TOKEN_PREFIX):
            return token
        raw = json.loads(base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :]))
        upstream = raw.get("u")
        return upstream if isinstance(upstream, str) else None

    def _filter(
        self, path: str, headers: dict[str, str], body: bytes, request: dict[str, Any]
    ) -> Answer:
        like = self.like
        shaping = like.page_cap or like.short_pages
        if not (shaping or like.visibility or like.exclusive_end or like.interleaved):
            return self._exchange("POST", path, headers, body)
        self._note_read()
        sent = self._exclusive_end(request)
        if like.interleaved:
            sent = dict(sent, interleaved=True)
        token = request.get("nextToken")
        upstream_token = self._unwrap(token) if isinstance(token, str) else None
        sent.pop("nextToken", None)
        if upstream_token is not None:
            sent["nextToken"] = upstream_token
        group = group_of(request)
        if like.page_cap:

            def following(page: dict[str, Any]) -> str | None:
                value = page.get("nextToken")
                return value if isinstance(value, str) else None

            answer, events, last = self._gather(path, headers, "FilterLogEvents", sent, following)
            if last is None:
                return answer
            page = dict(last)
        else:
            answer = self._call(path, headers, "FilterLogEvents", sent)
            if answer.status != 200:
                return answer
            page = answer.json()
            events = page.get("events") or []
        self._restamp(region_of(headers), group, events, "")
        upstream_next = page.pop("nextToken", None)
        page["events"] = events
        if not shaping:
            if upstream_next:
                page["nextToken"] = upstream_next
            return _json_answer(200, page, answer)
        keep = within_page(events) if like.page_cap else len(events)
        if keep < len(events):
            self.stats.note("pages capped")
        trailing = False
        if like.short_pages:
            with self._lock:
                roll = self._rng.random()
                if roll < like.short_chance / 3 and events:
                    keep = 0
                    self.stats.note("pages empty")
                elif roll < like.short_chance and keep > 1:
                    keep = self._rng.randint(1, keep - 1)
                    self.stats.note("pages cut short")
                elif roll < like.short_chance * 1.3 and not upstream_next and events:
                    trailing = True
                    self.stats.note("empty last pages")
        if keep < len(events) or trailing:
            # Resume right after the last event given (moto's token: group@stream@eventId),
            # or where this page began when it gives none.
            if keep:
                last_event = events[keep - 1]
                resume = f"{group}@{last_event['logStreamName']}@{last_event['eventId']}"
            else:
                resume = upstream_token
            page["nextToken"] = self._wrap(resume)
            page["events"] = events[:keep]
        elif upstream_next:
            page["nextToken"] = self._wrap(upstream_next)
        return _json_answer(200, page, answer)

    # -- DescribeLogStreams: time fields from a stale snapshot ---------------------------

    def _describe(
        self, path: str, headers: dict[str, str], body: bytes, request: dict[str, Any]
    ) -> Answer:
        period = self.like.stale_fields
        answer = self._exchange("POST", path, headers, body)
        if period is None or answer.status != 200:
            return answer
        page = answer.json()
        region, group = region_of(headers), group_of(request)
        now = time.monotonic()
        stale = 0
        with self._lock:
            for stream in page.get("logStreams") or []:
                key = (region, group, str(stream.get("logStreamName")))
                fresh = {f: stream[f] for f in STREAM_FIELDS if f in stream}
                taken = self._snapshots.get(key)
                if taken is None or now - taken[0] >= self._real(period):
                    taken = (now, fresh)
                    self._snapshots[key] = taken
                if taken[1] != fresh:
                    stale += 1
                for name in STREAM_FIELDS:
                    stream.pop(name, None)
                stream.update(taken[1])
        if stale:
            self.stats.note("stale stream fields", stale)
        return _json_answer(200, page, answer)

    def _create(
        self, path: str, headers: dict[str, str], body: bytes, request: dict[str, Any]
    ) -> Answer:
        answer = self._exchange("POST", path, headers, body)
        if answer.status == 200:
            key = (region_of(headers), group_of(request), str(request.get("logStreamName")))
            with self._lock:
                self._known.add(key)
        return answer


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body.startswith(b"{") else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_answer(status: int, body: dict[str, Any], like: Answer | None = None) -> Answer:
    headers = [("Content-Type", "application/x-amz-json-1.1")]
    request_id = "00000000-0000-0000-0000-000000000000"
    if like is not None:
        request_id = {k.lower(): v for k, v in like.headers}.get("x-amzn-requestid", request_id)
    headers.append(("x-amzn-RequestId", request_id))
    return Answer(status, headers, json.dumps(body).encode())


def _send_head(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    """An answer's status and headers, with the Content-Length of its whole body; the
    ``Date`` header is this host's clock (send_response adds it)."""
    handler.send_response(answer.status)
    for key, value in answer.headers:
        if key.lower() not in {
            "connection",
            "transfer-encoding",
            "content-length",
            "server",
            "date",
        }:
            handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(answer.data)))
    handler.end_headers()


def _reply(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    """Send an answer."""
    _send_head(handler, answer)
    handler.wfile.write(answer.data)


def _reply_cut(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    """Promise the whole answer, send half of its body, and close the connection."""
    _send_head(handler, answer)
    handler.wfile.write(answer.data[: len(answer.data) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def _answer_fault(handler: BaseHTTPRequestHandler, fault: Fault) -> None:
    if fault.kind == "throttle":
        status, body = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
    elif fault.kind == "shard-throughput":
        status = 400
        body = {
            "__type": "ProvisionedThroughputExceededException",
            "message": "Rate exceeded for shard",
        }
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
    _reply(handler, _json_answer(status, body))
