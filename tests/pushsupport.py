"""What the push path's tests and benchmark share: moto as AWS behaves for it
(``motopush``), a subscription filter feeding a stream, writers, and collector processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from conftest import BASE_ENV, TEST_FLAGS, Lines, Sink, cli_env

TESTS = Path(__file__).resolve().parent
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/cwl-to-kinesis"
# A config with no aws-s3 wodle: the collectors only read the stream.
EMPTY_OSSEC = "<ossec_config>\n</ossec_config>\n"


class PushMoto:
    """``motopush`` in its own process on a loopback port (as conftest's MotoServer)."""

    def __init__(self) -> None:
        env = dict(os.environ, **BASE_ENV)
        env["PYTHONPATH"] = str(TESTS)
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "motopush.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("motopush did not start")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=self.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def reset(self) -> None:
        import urllib.request

        request = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=30).read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def push_moto() -> Iterator[PushMoto]:
    server = PushMoto()
    try:
        yield server
    finally:
        server.stop()


def subscribe(moto: PushMoto, group: str, stream: str, shards: int) -> str:
    """A Kinesis stream, a log group and a subscription filter from one to the other, as
    the README's steps make them; returns the stream's ARN."""
    kinesis, logs = moto.client("kinesis"), moto.client("logs")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    arn = str(
        kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    )
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.put_subscription_filter(
        logGroupName=group, filterName="to-siem", filterPattern="", destinationArn=arn, roleArn=ROLE
    )
    return arn


@dataclass
class Writers:
    """Threads putting distinct messages into a group's streams, each a batch a put, until
    stopped; ``written`` holds every message that CloudWatch Logs accepted."""

    moto: PushMoto
    group: str
    threads: int = 3
    per_put: int = 10
    pause: float = 0.02
    prefix: str = "ev"
    written: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for index in range(self.threads):
            thread = threading.Thread(target=self._write, args=(index,), daemon=True)
            thread.start()
            self._workers.append(thread)

    def _write(self, index: int) -> None:
        logs = self.moto.client("logs")
        stream = f"writer-{index}"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=self.group, logStreamName=stream)
        number = 0
        while not self._stop.is_set():
            now = int(time.time() * 1000)
            batch = [f"{self.prefix}-{index}-{number + i}" for i in range(self.per_put)]
            logs.put_log_events(
                logGroupName=self.group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": m} for m in batch],
            )
            number += self.per_put
            with self._lock:
                self.written.extend(batch)
            time.sleep(self.pause)

    def stop(self) -> list[str]:
        self._stop.set()
        for thread in self._workers:
            thread.join(30)
        return list(self.written)


def settings_text(stream: str, url: str, *, kinesis_url: str = "", **options: object) -> str:
    """A settings file with one ``[[kinesis]]`` source on ``stream`` at ``url`` (Kinesis
    at ``kinesis_url`` when given: a proxy in front of moto)."""
    lines = [
        "[[kinesis]]",
        f'stream = "{stream}"',
        f'region = "{REGION}"',
        f'kinesis_endpoint = "{kinesis_url or url}"',
        f'dynamodb_endpoint = "{url}"',
        f'sts_endpoint = "{url}"',
    ]
    for key, value in options.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


@dataclass
class Collector:
    """One ``aws-wodle run`` process reading the stream, with its stderr lines."""

    name: str
    proc: Any
    lines: Lines

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


def start_collector(
    folder: Path,
    name: str,
    settings: str,
    queue: str,
    *extra: str,
    env: dict[str, str] | None = None,
) -> Collector:
    """``aws-wodle run`` with its own state file and ``settings``, sending to ``queue``."""
    home = folder / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "ossec.conf").write_text(EMPTY_OSSEC)
    (home / "aws-wodle.toml").write_text(settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aws_wodle", "run", "--config", str(home / "ossec.conf"),
         "--queue", queue, "--state", str(home / "state.db"), "--log-format", "plain",
         *TEST_FLAGS, *extra],
        env=env or cli_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return Collector(name, proc, Lines(proc))


def stop_collectors(collectors: list[Collector]) -> None:
    for collector in collectors:
        if collector.proc.poll() is None:
            collector.proc.terminate()
    for collector in collectors:
        try:
            collector.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            collector.proc.kill()
            collector.proc.wait()


def leases(moto: PushMoto, table: str) -> dict[str, dict[str, Any]]:
    """The lease table's items, by shard: owner, counter, checkpoint, parents."""
    out: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(Exception):
        for item in moto.client("dynamodb").scan(TableName=table)["Items"]:
            out[item["leaseKey"]["S"]] = {
                "owner": item.get("leaseOwner", {}).get("S"),
                "counter": int(item["leaseCounter"]["N"]),
                "checkpoint": item.get("checkpoint", {}).get("S"),
                "parents": item.get("parentShardIds", {}).get("SS", []),
            }
    return out


def wait_until(check: Any, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return bool(check())


def received(sink: Sink) -> list[str]:
    return sink.messages()


def owners(table: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The shards each worker holds."""
    held: dict[str, list[str]] = {}
    for key, lease in table.items():
        if lease["owner"]:
            held.setdefault(str(lease["owner"]), []).append(key)
    return held


def wait_balanced(moto: PushMoto, table: str, workers: int, shards: int, timeout: float) -> bool:
    """Wait until ``workers`` hold ``shards`` evenly, and then until every lease was renewed
    twice more by the same owner: a worker that lost a lease to a steal has then noticed it
    (its renewals run for all its leases at once), so none reads a shard it no longer has."""
    share = -(-shards // workers)

    def even() -> bool:
        held = owners(leases(moto, table))
        count = sum(len(keys) for keys in held.values())
        return len(held) == workers and count == shards and max(map(len, held.values())) <= share

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not wait_until(even, deadline - time.monotonic()):
            return False
        start = leases(moto, table)

        def renewed(start: dict[str, dict[str, Any]] = start) -> bool:
            now = leases(moto, table)
            return all(now[k]["counter"] >= v["counter"] + 2 for k, v in start.items())

        if not wait_until(renewed, deadline - time.monotonic()):
            return False
        end = leases(moto, table)
        if all(end[k]["owner"] == v["owner"] for k, v in start.items()):
            return True
    return False


def control_message(timestamp: int = 0) -> dict[str, Any]:
    """The CONTROL_MESSAGE CloudWatch Logs puts into a destination to check it."""
    return {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {"id": "", "timestamp": timestamp, "message": "CWL CONTROL MESSAGE: Checking"}
        ],
    }
