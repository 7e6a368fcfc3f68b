"""Push while the stream is resharded (split, then merge) under two collector processes:
every child shard is read only after its parents were read to their end; none is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conftest import Sink
from pushsupport import (
    PushMoto,
    Writers,
    leases,
    settings_text,
    start_collector,
    stop_collectors,
    subscribe,
    wait_balanced,
    wait_until,
)

GROUP = "/ecs/web"
STREAM = "siem-reshard"
TABLE = "aws-wodle-siem-reshard"


class ParentFirst:
    """Watches the lease table: reads a child's lease, then its parents' (separate
    consistent reads, in that order). A child past TRIM_HORIZON (events of it sent and
    checkpointed) while a parent read after it is not at SHARD_END is a violation: SHARD_END
    is final, so the parent was not finished when the child was already read."""

    def __init__(self, push: PushMoto) -> None:
        self.client = push.client("dynamodb")
        self.violations: list[str] = []
        self.checks = 0
        self.children_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _get(self, key: str) -> dict[str, object] | None:
        item = self.client.get_item(
            TableName=TABLE, Key={"leaseKey": {"S": key}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return {
            "checkpoint": item.get("checkpoint", {}).get("S"),
            "parents": item.get("parentShardIds", {}).get("SS", []),
        }

    def _watch(self) -> None:
        while not self._stop.is_set():
            for key, lease in leases_of(self.client).items():
                if not lease["parents"]:
                    continue
                child = self._get(key)
                if child is None or child["checkpoint"] == "TRIM_HORIZON":
                    continue
                self.children_seen.add(key)
                for parent in lease["parents"]:
                    found = self._get(str(parent))
                    self.checks += 1
                    if found is not None and found["checkpoint"] != "SHARD_END":
                        self.violations.append(f"{key} at {child['checkpoint']}, {parent} {found}")
            self._stop.wait(0.2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def leases_of(client: object) -> dict[str, dict[str, object]]:
    items = client.scan(TableName=TABLE).get("Items", [])  # type: ignore[attr-defined]
    return {
        item["leaseKey"]["S"]: {"parents": item.get("parentShardIds", {}).get("SS", [])}
        for item in items
    }


def test_split_and_merge_while_running(push: PushMoto, sink: Sink, tmp_path: Path) -> None:
    """2 shards split into 4, then two of those merged, while writers write and two
    collectors read: 0 lost, 0 repeated, and no child read before its parents' end."""
    subscribe(push, GROUP, STREAM, 2)
    settings = settings_text(STREAM, push.url, lease_period="3s", lease_table=TABLE)
    collectors = [start_collector(tmp_path, f"c{i}", settings, sink.path) for i in range(2)]
    watch = ParentFirst(push)
    kinesis = push.client("kinesis")
    try:
        assert wait_balanced(push, TABLE, 2, 2, 120), leases(push, TABLE)
        watch.start()
        writers = Writers(push, GROUP, threads=3, per_put=5)
        writers.start()
        assert wait_until(lambda: len(sink.received) >= 300, 60)
        kinesis.update_shard_count(
            StreamName=STREAM, TargetShardCount=4, ScalingType="UNIFORM_SCALING"
        )
        # The four children get leases and are read once both parents are at their end.
        assert wait_until(lambda: len(watch.children_seen) == 4, 90), leases(push, TABLE)
        open_shards = sorted(
            (s for s in kinesis.list_shards(StreamName=STREAM)["Shards"]
             if "EndingSequenceNumber" not in s["SequenceNumberRange"]),
            key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]),
        )  # fmt: skip
        kinesis.merge_shards(
            StreamName=STREAM,
            ShardToMerge=open_shards[0]["ShardId"],
            AdjacentShardToMerge=open_shards[1]["ShardId"],
        )
        assert wait_until(lambda: len(watch.children_seen) == 5, 90), leases(push, TABLE)
        time.sleep(1)
        written = writers.stop()
        expected = set(written)
        assert wait_until(lambda: expected <= set(sink.messages()), 90)
    finally:
        watch.stop()
        stop_collectors(collectors)
    lost, repeated = sink.lost_and_repeated(expected)
    table = leases(push, TABLE)
    finished = sorted(key for key, lease in table.items() if lease["checkpoint"] == "SHARD_END")
    log = "".join(c.lines.text() for c in collectors)
    moves = [line.strip() for line in log.splitlines() if "lease" in line or "handed" in line]
    print(
        f"\nreshard 2 -> 4 -> 3 shards: {len(written)} events, lost {lost}, repeated "
        f"{repeated}; parent checks {watch.checks}, violations {len(watch.violations)}; "
        f"finished {finished}; how leases moved:\n" + "\n".join(moves)
    )
    assert watch.violations == []
    assert watch.checks > 0
    assert (lost, repeated) == (0, 0)
    # Both original shards and the two merged children were read to their end.
    assert len(finished) == 4
    assert log.count("read to its end") == 4
