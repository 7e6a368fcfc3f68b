"""The command line as users and scripts call it: exit codes, messages, defaults, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import Setup, Sink, run_cli, seed, start_daemon, write_config

BROKEN = """<ossec_config>
<wodle name="aws-s3">
  <interval>often</interval>
  <service type="cloudwatchlogs">
    <aws_log_groups>g</aws_log_groups>
    <regions>us-east-1,mars-north-7</regions>
    <colour>blue</colour>
  </service>
</wodle>
</ossec_config>
"""


def test_check_config_summarises_a_good_config(setup: Setup) -> None:
    """check-config exits 0 and names wodles, groups, regions and schedule."""
    conf = setup.config(setup.service("app,other", regions="us-east-1,eu-west-1"))
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 0, result.stderr
    for word in ("app", "other", "us-east-1", "eu-west-1", "5m"):
        assert word in result.stdout


def test_check_config_reports_each_error_with_file_and_line(tmp_path: Path) -> None:
    """check-config exits 2 with one FILE:LINE: message per error and no traceback."""
    conf = tmp_path / "ossec.conf"
    conf.write_text(BROKEN)
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{conf}:3", f"{conf}:6", f"{conf}:7"]
    assert "Traceback" not in result.stderr + result.stdout


def test_run_with_a_bad_config_exits_2(tmp_path: Path, sink: Sink) -> None:
    """run --once refuses an invalid config with exit 2 and the file and line."""
    conf = tmp_path / "ossec.conf"
    conf.write_text(BROKEN)
    result = run_cli(
        "run", "--once", "--config", str(conf), "--queue", sink.path,
        "--state", str(tmp_path / "s.db"),
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{conf}:3:" in result.stderr
    assert "Traceback" not in result.stderr


def test_ossec_home_gives_config_queue_and_state(tmp_path: Path, setup: Setup) -> None:
    """--ossec-home alone finds etc/ossec.conf, queue/sockets/queue and its state file."""
    home = Path(setup.sink.path).parent / "home"
    (home / "etc").mkdir(parents=True)
    (home / "queue" / "sockets").mkdir(parents=True)
    queue = Sink(str(home / "queue" / "sockets" / "queue"))
    queue.bind()
    try:
        seed(setup.moto.client(), "app", {"s": ["hello"]})
        write_config(home / "etc", setup.service("app"))
        result = run_cli("run", "--once", "--ossec-home", str(home))
        assert result.returncode == 0, result.stderr
        queue.wait_for(1)
        assert queue.messages() == ["hello"]
        assert (home / "var" / "aws-wodle" / "state.db").exists()
        status = run_cli("status", "--ossec-home", str(home), "--json")
        assert status.returncode == 0
    finally:
        queue.unbind()


def test_status_shows_each_stream(setup: Setup) -> None:
    """status lists account, region, group, stream, counts and times, as a table or JSON."""
    seed(setup.moto.client(), "app", {"s1": ["a", "b"], "s2": ["c"]})
    assert setup.once(setup.config(setup.service("app"))).returncode == 0
    table = run_cli("status", "--state", setup.state)
    assert table.returncode == 0
    assert "123456789012" in table.stdout
    assert "s1" in table.stdout
    assert "s2" in table.stdout
    doc = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)
    rows = {row["stream"]: row for row in doc["streams"]}
    assert rows["s1"]["events_forwarded"] == 2
    assert rows["s2"]["events_forwarded"] == 1
    assert rows["s1"]["region"] == "us-east-1"
    assert rows["s1"]["group"] == "app"
    assert rows["s1"]["last_event_time"] != "-"
    assert rows["s1"]["last_collection_time"] != "-"


def test_status_without_state_file_fails_clearly(tmp_path: Path) -> None:
    """status on a missing state file says so and exits 1."""
    result = run_cli("status", "--state", str(tmp_path / "none.db"))
    assert result.returncode == 1
    assert "no state file" in result.stderr


def test_secret_key_never_logged(setup: Setup) -> None:
    """Static keys work, and the secret key appears in no log line, even at debug level."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    seed(setup.moto.client(), "app", {"s": ["x"]})
    conf = setup.config(setup.service("app", access_key="AKIAIOSFODNN7EXAMPLE", secret_key=secret))
    result = setup.once(conf, "--log-level", "debug")
    assert result.returncode == 0, result.stderr
    assert secret not in result.stderr + result.stdout
    assert "deprecated" in result.stderr
    check = run_cli("check-config", "--config", str(conf))
    assert secret not in check.stdout + check.stderr


def test_daemon_runs_on_its_interval_and_stops_on_sigterm(setup: Setup) -> None:
    """Without --once, each interval sends what is new; SIGTERM ends it with exit 0."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["one", "two"]})
    conf = setup.config(setup.service("app"), interval="1s")
    proc = start_daemon(setup, conf)
    try:
        setup.sink.wait_for(2, timeout=20)
        assert setup.sink.messages() == ["one", "two"]
        logs.put_log_events(
            logGroupName="app",
            logStreamName="s",
            logEvents=[{"timestamp": first + 5, "message": "three"}],
        )
        setup.sink.wait_for(3, timeout=20)
        time.sleep(2.5)  # two more cycles: nothing new must come
        assert setup.sink.messages() == ["one", "two", "three"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    cycles = [line for line in err.splitlines() if "events," in line]
    assert len(cycles) >= 4


def test_second_daemon_on_the_same_state_refuses(setup: Setup) -> None:
    """A second collector on a state file in use exits 1 and names the holder's pid."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    conf = setup.config(setup.service("app"), interval="1h")
    proc = start_daemon(setup, conf, subprocess.DEVNULL)
    try:
        setup.sink.wait_for(1, timeout=20)
        second = setup.once(conf)
        assert second.returncode == 1
        assert f"pid {proc.pid}" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0


def test_sighup_reloads_and_keeps_the_old_config_when_the_new_is_bad(setup: Setup) -> None:
    """SIGHUP re-reads ossec.conf; an invalid edit is reported and the running config kept."""
    logs = setup.moto.client()
    seed(logs, "app", {"s": ["a"]})
    seed(logs, "second", {"s": ["b"]})
    conf = setup.config(setup.service("app"), interval="1s")
    proc = start_daemon(setup, conf)
    try:
        setup.sink.wait_for(1, timeout=20)
        conf.write_text(BROKEN)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None
        setup.config(setup.service("app,second"), interval="1s")
        proc.send_signal(signal.SIGHUP)
        setup.sink.wait_for(2, timeout=20)
        assert sorted(setup.sink.messages()) == ["a", "b"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "reload refused" in err
    assert f"{conf}:3:" in err


def test_python_dash_m_and_console_script_agree() -> None:
    """The installed console script runs the same command line."""
    script = Path(sys.executable).parent / "aws-wodle"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False, env=os.environ
    )
    assert result.returncode == 0
    assert result.stdout.startswith("aws-wodle ")


def test_sigterm_does_not_wait_for_aws_retries(setup: Setup) -> None:
    """SIGTERM ends the daemon within seconds even while calls are stuck retrying."""
    dead = setup.service("app").replace(setup.moto.url, "http://127.0.0.1:9")
    conf = setup.config(dead, interval="1h")
    proc = start_daemon(setup, conf)
    time.sleep(2)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 8


def test_bucket_wodle_is_warned_about_and_the_rest_runs(setup: Setup) -> None:
    """A wodle with a <bucket> gets one warning; the cloudwatchlogs service still runs."""
    seed(setup.moto.client(), "app", {"s": ["still collected"]})
    bucket = '  <bucket type="cloudtrail">\n    <name>trail</name>\n  </bucket>\n'
    conf = setup.config(setup.service("app") + bucket)
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["still collected"]
    warnings = [line for line in result.stderr.splitlines() if "only CloudWatch Logs" in line]
    assert len(warnings) == 1


def test_status_shows_lag_and_read_age(setup: Setup) -> None:
    """status --json gives each stream's lag behind the newest event reported, and the age
    of its last read; a run stopped early leaves a lag that the next run brings to zero."""
    seed(setup.moto.client(), "app", {f"s{i}": [f"e{j}" for j in range(20_000)] for i in range(3)})
    conf = setup.config(setup.service("app"), interval="1h")
    proc = start_daemon(setup, conf, subprocess.DEVNULL)
    setup.sink.wait_for(1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    rows = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)["streams"]
    assert any(row["lag_seconds"] and row["lag_seconds"] > 0 for row in rows)
    assert setup.once(conf).returncode == 0
    rows = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)["streams"]
    assert [row["lag_seconds"] for row in rows] == [0.0, 0.0, 0.0]
    assert all(0 <= row["last_read_age_seconds"] < 60 for row in rows)
    table = run_cli("status", "--state", setup.state).stdout
    assert "LAG" in table
    assert "READ AGO" in table
