"""Push against a throttled stream: GetRecords answered ProvisionedThroughputExceededException
by the proxy in front of moto; and records that are not subscription messages."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

from awsproxy import AwsProxy, Fault
from conftest import Sink
from pushsupport import (
    REGION,
    PushMoto,
    Writers,
    control_message,
    leases,
    settings_text,
    start_collector,
    stop_collectors,
    subscribe,
    wait_until,
)

GROUP = "/aws/lambda/orders"
STREAM = "siem-throttled"
TABLE = "aws-wodle-siem-throttled"
SHARDS = 2
# GetRecords calls answered ProvisionedThroughputExceededException: the 3rd to the 8th.
THROTTLED = range(3, 9)


def throttle_some() -> tuple[object, list[float]]:
    """A proxy policy answering the chosen GetRecords calls as a shard over its limit;
    also notes when each GetRecords call came."""
    lock = threading.Lock()
    seen: list[float] = []

    def decide(operation: str, _request: dict[str, object]) -> Fault | None:
        if operation != "GetRecords":
            return None
        with lock:
            seen.append(time.monotonic())
            number = len(seen)
        return Fault("shard-throughput") if number in THROTTLED else None

    return decide, seen


def test_a_throttled_stream_loses_and_repeats_nothing(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """Six GetRecords answered ProvisionedThroughputExceededException: the reader backs
    off (1 s, doubling) from the same position; every event arrives once, in the envelope,
    and GetRecords stays within Kinesis' 5 calls a second per shard. A record that is not a
    subscription message is logged and skipped; a CONTROL_MESSAGE is skipped silently."""
    subscribe(push, GROUP, STREAM, SHARDS)
    kinesis = push.client("kinesis")
    kinesis.put_record(StreamName=STREAM, Data=b"\x00not a subscription", PartitionKey="a")
    control = control_message()
    kinesis.put_record(
        StreamName=STREAM, Data=gzip.compress(json.dumps(control).encode()), PartitionKey="b"
    )
    policy, calls = throttle_some()
    proxy = AwsProxy(push.url, policy=policy)  # type: ignore[arg-type]
    settings = settings_text(
        STREAM, push.url, kinesis_url=proxy.url, lease_period="3s", lease_table=TABLE,
        envelope=True,
    )  # fmt: skip
    collector = start_collector(tmp_path, "c0", settings, sink.path)
    try:
        writers = Writers(push, GROUP, threads=2, per_put=10)
        writers.start()
        assert wait_until(lambda: proxy.stats.faults["shard-throughput"] == len(THROTTLED), 60)
        time.sleep(3)
        written = writers.stop()
        expected = set(written)

        def messages() -> list[str]:
            return [json.loads(m)["aws"]["message"] for m in sink.messages()]

        assert wait_until(lambda: expected <= set(messages()), 90)
        started = calls[0]
        elapsed = time.monotonic() - started
        count = len(calls)
    finally:
        stop_collectors([collector])
        proxy.stop()
    got = messages()
    lost, repeated = len(expected - set(got)), len(got) - len(set(got))
    log = collector.lines.text()
    waits = [line for line in log.splitlines() if "GetRecords throttled" in line]
    print(
        f"\nthrottled stream: {len(written)} events, {len(THROTTLED)} GetRecords throttled, "
        f"lost {lost}, repeated {repeated}; {count} GetRecords in {elapsed:.1f} s "
        f"({count / elapsed / SHARDS:.2f}/s per shard); waits: "
        + ", ".join(line.rsplit("waiting ", 1)[-1] for line in waits)
    )
    assert (lost, repeated) == (0, 0)
    assert "waiting 1.0 s" in log
    assert "waiting 2.0 s" in log  # the same shard throttled again waits twice as long
    assert count / elapsed <= 5 * SHARDS
    assert log.count("is not a CloudWatch Logs subscription message") == 1
    assert "CONTROL" not in log
    envelope = json.loads(sink.messages()[0])
    info = envelope["aws"]["log_info"]
    assert envelope["integration"] == "aws"
    assert (info["log_group"], info["aws_account_id"], info["aws_region"]) == (
        GROUP,
        "123456789012",
        REGION,
    )
    assert info["log_stream"].startswith("writer-")
    assert info["event_id"]
    assert all(lease["checkpoint"] != "TRIM_HORIZON" for lease in leases(push, TABLE).values())
