"""Push end to end: a subscription filter into Kinesis, three collector processes sharing
the stream's shards through the lease table, one of them killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from conftest import Sink
from pushsupport import (
    PushMoto,
    Writers,
    leases,
    owners,
    settings_text,
    start_collector,
    stop_collectors,
    subscribe,
    wait_balanced,
    wait_until,
)

GROUP = "/aws/lambda/payments"
STREAM = "siem-push"
TABLE = "aws-wodle-siem-push"
SHARDS = 6
LEASE_PERIOD = 3.0
RENEW = LEASE_PERIOD / 3
# GetRecords limit of the collectors, and events per record (one PutLogEvents call each):
# a kill repeats at most one batch of the killed worker's, per shard it was reading.
BATCH = 50
PER_PUT = 10
# From the kill to the dead worker's shards forwarded again by others: its counters must
# be seen still for a lease period; the table is read every renew interval, so noticing
# the last change and then the expiry each take up to one more; then a read and a send.
# Slack for a loaded two-core machine.
TAKEOVER_BOUND = LEASE_PERIOD + 2 * RENEW + 5.0


def test_three_collectors_share_a_stream_and_survive_a_kill(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """Three collectors split six shards two each; one is killed with SIGKILL while events
    flow: its shards are taken over within the bound, nothing is lost, and the repeats
    stay within one GetRecords batch per shard it held."""
    subscribe(push, GROUP, STREAM, SHARDS)
    settings = settings_text(
        STREAM, push.url, lease_period=f"{LEASE_PERIOD:g}s", lease_table=TABLE, batch=BATCH
    )
    collectors = [start_collector(tmp_path, f"c{i}", settings, sink.path) for i in range(3)]
    try:
        # Balanced before events flow: a steal repeats up to a batch too, not measured here.
        assert wait_balanced(push, TABLE, 3, SHARDS, 120), leases(push, TABLE)
        writers = Writers(push, GROUP, threads=3, per_put=PER_PUT)
        writers.start()
        assert wait_until(lambda: len(sink.received) >= 600, 60)

        before = leases(push, TABLE)
        victim = collectors[1]
        victim_id = next(o for o in owners(before) if o.split(":")[1] == str(victim.pid))
        theirs = {key: before[key]["checkpoint"] for key in owners(before)[victim_id]}
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait(10)

        taken: dict[str, float] = {}

        def taken_over() -> bool:
            now = leases(push, TABLE)
            for key, was in theirs.items():
                lease = now.get(key, {})
                moved = lease.get("owner") not in (None, victim_id) and lease["checkpoint"] != was
                if moved and key not in taken:
                    taken[key] = time.monotonic() - killed_at
            return len(taken) == len(theirs)

        assert wait_until(taken_over, 60, every=0.1), (taken, leases(push, TABLE))
        time.sleep(2)
        written = writers.stop()
        expected = set(written)
        assert wait_until(lambda: expected <= set(sink.messages()), 90)
        lost, repeated = sink.lost_and_repeated(expected)
        takeover = max(taken.values())
        print(
            f"\nkill -9 of 1 of 3 collectors: {len(written)} events, takeover "
            f"{takeover:.1f} s (bound {TAKEOVER_BOUND:g} s), lost {lost}, repeated {repeated}"
        )
        assert lost == 0
        assert repeated <= len(theirs) * BATCH * PER_PUT
        assert takeover <= TAKEOVER_BOUND, taken
        survivors = owners(leases(push, TABLE))
        assert victim_id not in survivors
        assert sum(len(keys) for keys in survivors.values()) == SHARDS
    finally:
        stop_collectors(collectors)
    log = "".join(c.lines.text() for c in collectors)
    assert f"taken over from {victim_id}" in log


def test_a_clean_stop_hands_its_shards_over_at_once(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """SIGTERM: the collector finishes its batch, checkpoints it and releases its leases,
    so the other collector reads its shards without waiting out the lease period; nothing
    is lost or repeated."""
    subscribe(push, GROUP, STREAM, 4)
    period = 12.0
    settings = settings_text(STREAM, push.url, lease_period=f"{period:g}s", lease_table=TABLE)
    collectors = [start_collector(tmp_path, f"c{i}", settings, sink.path) for i in range(2)]
    try:
        assert wait_balanced(push, TABLE, 2, 4, 120), leases(push, TABLE)
        writers = Writers(push, GROUP, threads=2, per_put=PER_PUT)
        writers.start()
        assert wait_until(lambda: len(sink.received) >= 200, 60)
        leaving = collectors[0]
        leaving.proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert leaving.proc.wait(30) == 0
        stayer = next(o for o in owners(leases(push, TABLE)))

        def all_held() -> bool:
            return len(owners(leases(push, TABLE)).get(stayer, [])) == 4

        assert wait_until(all_held, 60), leases(push, TABLE)
        handover = time.monotonic() - stopped_at
        written = writers.stop()
        expected = set(written)
        assert wait_until(lambda: expected <= set(sink.messages()), 60)
        lost, repeated = sink.lost_and_repeated(expected)
        print(f"\nSIGTERM: handover {handover:.1f} s (lease period {period:g} s), lost {lost}, "
              f"repeated {repeated}")  # fmt: skip
        assert (lost, repeated) == (0, 0)
        # Released, the leases are taken at the next reading of the table (every renew
        # interval, period / 3), well before a lease period would run out.
        assert handover < period
    finally:
        stop_collectors(collectors)
    assert "leases released" in collectors[0].lines.text()


def test_a_collector_that_joins_is_handed_its_share_between_batches(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """A second collector joins one that holds all four shards, while events flow: it asks
    for two leases, one at a time, and the first collector hands each over once its batch
    in hand is checkpointed: nothing lost, nothing repeated."""
    subscribe(push, GROUP, STREAM, 4)
    settings = settings_text(
        STREAM, push.url, lease_period=f"{LEASE_PERIOD:g}s", lease_table=TABLE, batch=BATCH
    )
    collectors = [start_collector(tmp_path, "c0", settings, sink.path)]
    try:
        assert wait_balanced(push, TABLE, 1, 4, 120), leases(push, TABLE)
        writers = Writers(push, GROUP, threads=3, per_put=PER_PUT)
        writers.start()
        assert wait_until(lambda: len(sink.received) >= 300, 60)
        joined_at = time.monotonic()
        collectors.append(start_collector(tmp_path, "c1", settings, sink.path))
        assert wait_balanced(push, TABLE, 2, 4, 120), leases(push, TABLE)
        balanced = time.monotonic() - joined_at
        time.sleep(2)
        written = writers.stop()
        expected = set(written)
        assert wait_until(lambda: expected <= set(sink.messages()), 90)
        lost, repeated = sink.lost_and_repeated(expected)
        print(
            f"\na collector joins: {len(written)} events, balanced {balanced:.1f} s after it "
            f"started, lost {lost}, repeated {repeated}"
        )
        assert (lost, repeated) == (0, 0)
    finally:
        stop_collectors(collectors)
    first, second = (c.lines.text() for c in collectors)
    assert first.count("who asked for it") == 2, first
    assert second.count("asked of") == 2, second
    assert second.count("handed over to this worker") == 2, second
    assert "did not hand it over" not in second


def test_a_reload_moves_the_worker_to_the_stream_the_settings_now_name(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """SIGHUP after the settings file names another stream: the worker of the first stops
    (its leases given up), one for the new stream starts, and the new group's events
    arrive; an unchanged file on a second SIGHUP keeps the worker as it is."""
    other_group, other_stream = "/aws/lambda/billing", "siem-push-2"
    subscribe(push, GROUP, STREAM, 2)
    subscribe(push, other_group, other_stream, 2)
    settings = settings_text(STREAM, push.url, lease_period="3s", lease_table=TABLE)
    collector = start_collector(tmp_path, "c0", settings, sink.path)
    try:
        assert wait_balanced(push, TABLE, 1, 2, 120), leases(push, TABLE)
        first = Writers(push, GROUP, threads=1, per_put=PER_PUT, prefix="first")
        first.start()
        assert wait_until(lambda: len(sink.received) >= 20, 60)
        before = set(first.stop())
        assert wait_until(lambda: before <= set(sink.messages()), 60)

        other_table = "aws-wodle-siem-push-2"
        (tmp_path / "c0" / "aws-wodle.toml").write_text(
            settings_text(other_stream, push.url, lease_period="3s", lease_table=other_table)
        )
        collector.proc.send_signal(signal.SIGHUP)
        assert wait_balanced(push, other_table, 1, 2, 120), leases(push, other_table)
        assert wait_until(lambda: not owners(leases(push, TABLE)), 30), leases(push, TABLE)
        second = Writers(push, other_group, threads=1, per_put=PER_PUT, prefix="second")
        second.start()
        assert wait_until(lambda: any(m.startswith("second") for m in sink.messages()), 60)
        collector.proc.send_signal(signal.SIGHUP)  # the same file: nothing restarts
        time.sleep(2)
        after = set(second.stop())
        assert wait_until(lambda: after <= set(sink.messages()), 60)
        lost, repeated = sink.lost_and_repeated(before | after)
        assert (lost, repeated) == (0, 0)
        text = collector.lines.text()
        assert text.count(f"worker {owners(leases(push, other_table)).popitem()[0]}") >= 1
        assert text.count(f"kinesis stream {other_stream}: worker") == 1
    finally:
        stop_collectors([collector])
