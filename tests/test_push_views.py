"""The push path in every view: metrics (valid exposition, events by source, shards' lag
and leases), ``status`` from the lease table, the per-minute info line, a missing stream,
and ``check-config --probe``."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aws_wodle.aws.budget import Budgets
from aws_wodle.poll.pipeline import Tally
from aws_wodle.push.stats import PushStats, Reporter
from aws_wodle.runtime.metrics import Metrics
from aws_wodle.store.state import StateStore
from conftest import Sink, free_port, run_cli, service_xml, write_config
from pushsupport import (
    PushMoto,
    Writers,
    leases,
    settings_text,
    start_collector,
    stop_collectors,
    subscribe,
    wait_until,
)

GROUP = "/aws/lambda/payments"
STREAM = "siem-views"
TABLE = "aws-wodle-siem-views"


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """The exposition parsed by Prometheus' own client; a family seen twice fails."""
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in out, f"family {family.name} appears twice"
        out[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return out


def test_exposition_parses_after_throttles_failures_and_pushed_events(tmp_path: Path) -> None:
    """Throttles in two regions, failures and pushed events: every family once, each
    sample under its own family, as Prometheus' parser reads it."""
    budgets = Budgets()
    for region in ("us-east-1", "eu-west-1"):
        budget = budgets.get("123456789012", region)
        budget.succeeded("FilterLogEvents")
        budget.throttled("FilterLogEvents")
    state = StateStore(tmp_path / "state.db")
    push = PushStats()
    metrics = Metrics(budgets, state, push)
    tally = Tally()
    tally.fail("AccessDenied", "group x: denied")
    metrics.add_cycle(tally)
    key = ("siem", "us-east-1")
    push.source(key)
    push.holding(key, {"shardId-000000000000"})
    push.sent(key, 1920, 250_000)
    push.behind(key, "shardId-000000000000", 1500)
    push.checkpointed(key, "shardId-000000000000")
    push.failed(key, "ProvisionedThroughputExceededException")
    try:
        found = families(metrics.render())
    finally:
        state.close()
    throttles = found["aws_wodle_throttles"]
    assert {s[1]["region"] for s in throttles} == {"us-east-1", "eu-west-1"}
    assert all(name == "aws_wodle_throttles_total" for name, _, _ in throttles)
    calls = found["aws_wodle_api_calls"]
    assert len(calls) == 2
    assert all(name == "aws_wodle_api_calls_total" for name, _, _ in calls)
    events = {s[1]["source"]: s[2] for s in found["aws_wodle_events_forwarded"]}
    assert events == {"poll": 0, "push": 1920}
    assert found["aws_wodle_push_behind_seconds"][0][2] == 1.5
    assert found["aws_wodle_push_leases_owned"][0][2] == 1
    assert found["aws_wodle_failures"][0][1] == {"reason": "AccessDenied"}


def test_the_info_line_sums_what_was_pushed_per_source(caplog: pytest.LogCaptureFixture) -> None:
    """The reporter logs, each period, the events and bytes pushed since the last line,
    per source, and the sum."""
    stats = PushStats()
    stats.source(("a", "us-east-1"))
    stats.source(("b", "eu-west-1"))
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="aws_wodle.push.stats")
    reporter = Reporter(stats, stop, every=0.3)
    reporter.start()
    time.sleep(0.1)
    stats.sent(("a", "us-east-1"), 3, 30)
    stats.sent(("b", "eu-west-1"), 2, 20)
    assert wait_until(lambda: any("pushed" in r.getMessage() for r in caplog.records), 5)
    stop.set()
    line = next(r.getMessage() for r in caplog.records if "pushed" in r.getMessage())
    assert line == (
        "pushed in the last 0.3 s: 5 events, 50 bytes "
        "(a in us-east-1: 3 events, 30 bytes; b in eu-west-1: 2 events, 20 bytes)"
    )


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def test_pushed_events_show_in_metrics_and_status(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """Events through a [[kinesis]] source are counted in the shared counters with
    source="push", each shard's lag and checkpoint age and the leases held are metrics,
    and ``status`` (text and JSON) shows the shards, their owner and lag from the lease
    table."""
    subscribe(push, GROUP, STREAM, 2)
    port = free_port()
    settings = f'metrics = "127.0.0.1:{port}"\n' + settings_text(
        STREAM, push.url, lease_period="3s", lease_table=TABLE
    )
    collector = start_collector(tmp_path, "c", settings, sink.path)
    home = tmp_path / "c"
    try:
        assert wait_until(lambda: len(owners_of(push)) == 2, 60), leases(push, TABLE)
        writers = Writers(push, GROUP, threads=2, per_put=10)
        writers.start()
        assert wait_until(lambda: len(sink.received) >= 200, 60)
        written = writers.stop()
        assert wait_until(lambda: set(written) <= set(sink.messages()), 60)

        def counted() -> bool:
            try:
                found = families(_metrics(port))
            except OSError:
                return False
            events = {s[1]["source"]: s[2] for s in found["aws_wodle_events_forwarded"]}
            return events["push"] >= len(written)

        assert wait_until(counted, 30)
        found = families(_metrics(port))
        events = {s[1]["source"]: s[2] for s in found["aws_wodle_events_forwarded"]}
        assert events == {"poll": 0, "push": len(sink.received)}
        size = {s[1]["source"]: s[2] for s in found["aws_wodle_bytes_forwarded"]}
        assert size["push"] == sum(map(len, sink.received))
        assert found["aws_wodle_push_leases_owned"][0][2] == 2
        behind = found["aws_wodle_push_behind_seconds"]
        assert {s[1]["shard"] for s in behind} == set(owners_of(push))
        assert {s[1]["stream"] for s in behind} == {STREAM}
        assert found["aws_wodle_push_checkpoint_age_seconds"]

        args = ("--config", str(home / "ossec.conf"), "--state", str(home / "state.db"))
        shown = run_cli("status", "--json", *args)
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        [source] = doc["kinesis"]
        assert source["stream"] == STREAM
        assert source["error"] is None
        assert {s["shard"] for s in source["shards"]} == set(owners_of(push))
        assert {s["owner"].split(":")[1] for s in source["shards"]} == {str(collector.pid)}
        assert all(s["behind_seconds"] is not None for s in source["shards"])
        text = run_cli("status", *args)
        print(f"\n{text.stdout}")
        assert f"kinesis stream {STREAM} in us-east-1 (lease table {TABLE}):" in text.stdout
        assert "shardId-000000000001" in text.stdout
    finally:
        stop_collectors([collector])


def owners_of(push: PushMoto) -> list[str]:
    return [key for key, lease in leases(push, TABLE).items() if lease["owner"]]


def test_a_missing_stream_is_one_error_a_status_failure_and_no_lease_table(
    push: PushMoto, sink: Sink, tmp_path: Path
) -> None:
    """A [[kinesis]] stream that does not exist: one error-priority line (not a warning
    repeated each round), no lease table created, and ``status`` shows the failure."""
    settings = settings_text("no-such-stream", push.url, lease_period="3s", lease_table=TABLE)
    collector = start_collector(tmp_path, "c", settings, sink.path, "--log-format", "syslog")
    home = tmp_path / "c"
    try:
        assert wait_until(lambda: "does not exist" in collector.lines.text(), 30)
        time.sleep(10)  # three lease periods: rounds that used to warn each time
    finally:
        stop_collectors([collector])
    log = collector.lines.text()
    missing = [line for line in log.splitlines() if "does not exist" in line]
    assert len(missing) == 1, log
    assert missing[0].startswith("<3>"), missing
    assert "<4>" not in log, log
    assert TABLE not in push.client("dynamodb").list_tables()["TableNames"]
    shown = run_cli(
        "status", "--json", "--config", str(home / "ossec.conf"), "--state", str(home / "state.db")
    )
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    [problem] = doc["kinesis_problems"]
    assert problem["stream"] == "no-such-stream"
    assert "does not exist" in problem["message"]
    [source] = doc["kinesis"]
    assert "no lease table yet" in source["error"]


def test_probe_says_what_can_be_read(push: PushMoto, tmp_path: Path) -> None:
    """``check-config --probe`` asks AWS once for each group and source: a stream and a
    group that exist are OK, a missing stream and a missing group are failures (exit 1)."""
    subscribe(push, GROUP, STREAM, 1)
    config = write_config(
        tmp_path, service_xml(push.url, f"{GROUP},/aws/lambda/nothing-here"), interval="1h"
    )
    (tmp_path / "aws-wodle.toml").write_text(
        settings_text(STREAM, push.url, lease_table=TABLE)
        + settings_text("no-such-stream", push.url, lease_table="aws-wodle-other")
    )
    result = run_cli("check-config", "--probe", "--config", str(config), "--no-strict-perms")
    lines = [line for line in result.stdout.splitlines() if line.startswith("probe:")]
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"probe: OK: log group {GROUP} in us-east-1" in "\n".join(lines)
    assert any("nothing-here" in line and "FAILED" in line for line in lines), lines
    stream_ok = next(line for line in lines if f"stream {STREAM} " in line)
    assert stream_ok.startswith("probe: OK")
    assert "kinesis:GetRecords" in stream_ok
    assert "does not exist yet: the first worker creates it" in stream_ok
    missing = next(line for line in lines if "no-such-stream" in line)
    assert missing.startswith("probe: FAILED")
    assert "does not exist" in missing
