"""The command line as users and scripts call it: exit codes, messages, defaults, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import (
    TEST_FLAGS,
    Lines,
    Setup,
    Sink,
    free_port,
    put,
    run_cli,
    seed,
    start_daemon,
    write_config,
)

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
        result = run_cli("run", "--once", "--ossec-home", str(home), *TEST_FLAGS)
        assert result.returncode == 0, result.stderr
        queue.wait_for(1)
        assert queue.messages() == ["hello"]
        assert (home / "var" / "aws-wodle" / "state.db").exists()
        status = run_cli("status", "--ossec-home", str(home), "--json")
        assert status.returncode == 0
    finally:
        queue.unbind()


def test_status_shows_groups_and_streams_on_request(setup: Setup) -> None:
    """status lists each group with its counts and times; --streams adds a row per stream;
    --json gives the same as one document."""
    seed(setup.moto.client(), "app", {"s1": ["a", "b"], "s2": ["c"]})
    assert setup.once(setup.config(setup.service("app"))).returncode == 0
    table = run_cli("status", "--state", setup.state)
    assert table.returncode == 0
    assert "123456789012" in table.stdout
    assert "app" in table.stdout
    assert "s1" not in table.stdout
    both = run_cli("status", "--state", setup.state, "--streams")
    assert "s1" in both.stdout
    assert "s2" in both.stdout
    doc = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)
    assert "streams" not in doc
    (group,) = doc["groups"]
    assert (group["group"], group["region"], group["streams"]) == ("app", "us-east-1", 2)
    assert group["events_forwarded"] == 3
    assert group["collected_up_to"] != "-"
    assert group["last_checked_time"] != "-"
    assert doc["last_cycle_failures"] == []
    doc = json.loads(run_cli("status", "--state", setup.state, "--json", "--streams").stdout)
    rows = {row["stream"]: row for row in doc["streams"]}
    assert rows["s1"]["events_forwarded"] == 2
    assert rows["s2"]["events_forwarded"] == 1
    assert rows["s1"]["group"] == "app"
    assert rows["s1"]["newest_event_time"] != "-"
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


def test_run_sets_start_up_objects_aside_from_the_garbage_collector(setup: Setup) -> None:
    """Once start-up is done, run moves its objects out of the cyclic collector's walks
    (said at debug level), then collects as usual."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    conf = setup.config(setup.service("app"))
    result = setup.once(conf, "--log-level", "debug")
    assert result.returncode == 0, result.stderr
    assert setup.sink.messages() == ["x"]
    line = next(line for line in result.stderr.splitlines() if "set aside" in line)
    assert int(line.split(" start-up objects set aside")[0].split()[-1]) > 10_000


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
    lines = Lines(proc)
    assert lines.wait("started with"), lines.text()
    time.sleep(1)  # the first cycle is stuck in retries
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0, lines.text()
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


def test_status_shows_reads_under_way_lag_and_failures(setup: Setup) -> None:
    """A run stopped early leaves its read under way, shown in status; the next run ends
    it, and status then shows the group caught up and checked just now; the last cycle's
    failures are listed."""
    seed(setup.moto.client(), "app", {f"s{i}": [f"e{j}" for j in range(20_000)] for i in range(3)})
    conf = setup.config(setup.service("app"), interval="1h")
    proc = start_daemon(setup, conf, subprocess.DEVNULL)
    setup.sink.wait_for(1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    (group,) = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)["groups"]
    assert group["read_under_way"] is True
    assert setup.once(conf).returncode == 0
    (group,) = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)["groups"]
    assert group["read_under_way"] is False
    assert 0 <= group["behind_seconds"] < 60
    assert 0 <= group["last_checked_age_seconds"] < 60
    setup.sink.wait_for(60_000)
    assert len(setup.sink.received) == 60_000
    table = run_cli("status", "--state", setup.state).stdout
    assert "BEHIND" in table
    assert "CHECKED AGO" in table
    assert setup.once(setup.config(setup.service("app,missing"))).returncode == 1
    doc = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)
    assert any("missing" in f["message"] for f in doc["last_cycle_failures"])
    assert "last cycle's failures" in run_cli("status", "--state", setup.state).stdout


def test_check_config_prints_each_warning_once(tmp_path: Path) -> None:
    """Each warning is printed once, on stderr, and not again in the summary."""
    conf = tmp_path / "ossec.conf"
    conf.write_text(
        '<ossec_config>\n<wodle name="aws-s3">\n  <service type="cloudwatchlogs">\n'
        "    <aws_log_groups>g</aws_log_groups>\n    <only_logs_after/>\n  </service>\n"
        "</wodle>\n</ossec_config>\n"
    )
    result = run_cli("check-config", "--config", str(conf), "--ossec-home", str(tmp_path))
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    assert everything.count("only_logs_after is empty and ignored") == 1
    assert f"warning: {conf}:5: only_logs_after is empty and ignored" in result.stderr


def test_check_config_names_why_a_file_cannot_be_read(tmp_path: Path) -> None:
    """A file that cannot be read gives FILE: reason (no line 0) and exit 2."""
    missing = tmp_path / "absent.conf"
    result = run_cli("check-config", "--config", str(missing))
    assert result.returncode == 2
    assert result.stderr == f"{missing}: cannot read the file: No such file or directory\n"
    result = run_cli("check-config", "--config", str(tmp_path))
    assert result.stderr == f"{tmp_path}: cannot read the file: Is a directory\n"


def test_check_config_exits_2_for_a_broken_service_and_summarises_the_rest(
    tmp_path: Path,
) -> None:
    """A service that only the old script would fail on is an error (exit 2), while the
    summary still shows the services that run."""
    conf = tmp_path / "ossec.conf"
    conf.write_text(
        '<ossec_config>\n<wodle name="aws-s3">\n'
        '  <service type="cloudwatchlogs"><aws_log_groups>good</aws_log_groups></service>\n'
        '  <service type="cloudwatchlogs"><aws_log_groups>bad</aws_log_groups>\n'
        "    <only_logs_after>2024-13-45</only_logs_after>\n  </service>\n"
        "</wodle>\n</ossec_config>\n"
    )
    result = run_cli("check-config", "--config", str(conf), "--ossec-home", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{conf}:5: invalid only_logs_after '2024-13-45': "
        "expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date"
    )
    assert "log groups: good" in result.stdout
    assert "cloudwatchlogs service at line 4: not collected (error on line 5)" in result.stdout


def test_check_config_warns_about_a_profile_the_service_cannot_read(tmp_path: Path) -> None:
    """An aws_profile absent from <ossec-home>/.aws/credentials and config is warned about,
    naming both files; present in one of them, it is not."""
    conf = tmp_path / "ossec.conf"
    conf.write_text(
        '<ossec_config>\n<wodle name="aws-s3">\n  <service type="cloudwatchlogs">\n'
        "    <aws_log_groups>g</aws_log_groups><aws_profile>prod</aws_profile>\n"
        "  </service>\n</wodle>\n</ossec_config>\n"
    )
    home = tmp_path / "home"
    result = run_cli("check-config", "--config", str(conf), "--ossec-home", str(home))
    assert result.returncode == 0
    (line,) = [line for line in result.stderr.splitlines() if "aws_profile 'prod'" in line]
    assert line.startswith(f"warning: {conf}:3: aws_profile 'prod' is in neither ")
    assert f"{home}/.aws/credentials nor {home}/.aws/config" in line
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[prod]\naws_access_key_id = AKIA\n")
    result = run_cli("check-config", "--config", str(conf), "--ossec-home", str(home))
    assert "aws_profile" not in result.stderr


def test_a_broken_service_is_reported_every_cycle_and_the_others_collected(setup: Setup) -> None:
    """run collects every valid service, logs the broken one at error priority each cycle
    (its FILE:LINE included), counts it as a failure (run --once exits 1) for status."""
    seed(setup.moto.client(), "app", {"s": ["collected"]})
    bad = setup.service("other", only_logs_after="2024-13-45")
    conf = setup.config(setup.service("app") + bad, interval="1s")
    once = setup.once(conf)
    assert once.returncode == 1, once.stderr
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["collected"]
    where = conf.read_text().splitlines().index("    <only_logs_after>2024-13-45</only_logs_after>")
    problem = f"{conf}:{where + 1}: invalid only_logs_after '2024-13-45'"
    errors = [line for line in once.stderr.splitlines() if problem in line]
    assert errors
    assert all(line.startswith("<3>") for line in errors)
    doc = json.loads(run_cli("status", "--state", setup.state, "--json").stdout)
    assert any("not collected" in failure["message"] for failure in doc["last_cycle_failures"])
    proc = start_daemon(setup, conf)
    lines = Lines(proc)
    try:
        assert lines.wait(problem, count=2), lines.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0
    err = lines.text()
    assert (
        len([line for line in err.splitlines() if line.startswith("<3>") and problem in line]) >= 2
    )


# The settings file (aws-wodle.toml): found beside ossec.conf, named with --settings,
# overridden by flags, shown by check-config, re-read on SIGHUP.


def test_the_settings_file_beside_ossec_conf_is_read_and_a_flag_overrides_it(
    setup: Setup,
) -> None:
    """aws-wodle.toml beside ossec.conf is used without --settings (its log_format json
    makes every line JSON); --log-format plain given on the command line wins over it."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    conf = setup.config(setup.service("app"))
    (setup.folder / "aws-wodle.toml").write_text('log_format = "json"\n')
    from_file = setup.once(conf)
    assert from_file.returncode == 0, from_file.stderr
    lines = from_file.stderr.strip().splitlines()
    assert lines
    assert all(json.loads(line)["message"] for line in lines)
    flag = setup.once(conf, "--log-format", "plain")
    assert flag.returncode == 0, flag.stderr
    assert not flag.stderr.lstrip().startswith("{")


def test_run_refuses_a_bad_settings_file_with_its_line(setup: Setup) -> None:
    """A bad value in the settings file: run exits 2 with FILE:LINE and sends nothing; a
    file named with --settings that is missing is an error too."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    conf = setup.config(setup.service("app"))
    bad = setup.folder / "bad.toml"
    bad.write_text('lookback = "15m"\n\n[[group]]\nmatch = "app"\nenvelope = "yes"\n')
    result = setup.once(conf, "--settings", str(bad))
    assert result.returncode == 2
    assert f"{bad}:5: [[group]] envelope: expected true or false, got 'yes'" in result.stderr
    missing = setup.once(conf, "--settings", str(setup.folder / "none.toml"))
    assert missing.returncode == 2
    assert "none.toml: cannot read the file: No such file or directory" in missing.stderr
    assert setup.sink.received == []


def test_check_config_shows_the_merged_settings_and_their_errors(setup: Setup) -> None:
    """check-config prints the run options with where each comes from, and the [[group]]
    rules; an invalid settings file gives FILE:LINE and exit 2, as ossec.conf does."""
    conf = setup.config(setup.service("app, /aws/lambda/*"))
    toml = setup.folder / "aws-wodle.toml"
    toml.write_text('settle = "1m"\n[[group]]\nmatch = "/aws/lambda/*"\nenvelope = true\n')
    good = run_cli("check-config", "--config", str(conf))
    assert good.returncode == 0, good.stderr
    assert f"settings: {toml}\n" in good.stdout
    assert f"  settle: 1m ({toml}:1)" in good.stdout
    assert "  lookback: 15m (default)" in good.stdout
    assert "  late_every: 5m (default)" in good.stdout  # reads split by lateness
    assert "match /aws/lambda/*: envelope (JSON with the source), every stream" in good.stdout
    toml.write_text("settle = [1]\n")
    bad = run_cli("check-config", "--config", str(conf))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"{toml}:1: settle: expected a duration")


def test_sighup_rereads_the_settings_and_keeps_them_when_invalid(setup: Setup) -> None:
    """SIGHUP re-reads aws-wodle.toml with ossec.conf: a valid edit applies from the next
    cycle (here: the envelope), an invalid one is reported and the settings in use kept."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["raw"]})
    conf = setup.config(setup.service("app"), interval="1s")
    toml = setup.folder / "aws-wodle.toml"
    proc = start_daemon(setup, conf)
    try:
        setup.sink.wait_for(1, timeout=20)
        toml.write_text('[[group]]\nmatch = "app"\nenvelope = true\n')
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        put(logs, "app", "s", ["enveloped"], first + 1)
        setup.sink.wait_for(2, timeout=20)
        toml.write_text("[[group]]\nenvelope = true\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        put(logs, "app", "s", ["still enveloped"], first + 2)
        setup.sink.wait_for(3, timeout=20)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    raw, *enveloped = setup.sink.received
    assert raw == b"1:Wazuh-AWS:raw"
    messages = [json.loads(d[len(b"1:Wazuh-AWS:") :])["aws"]["message"] for d in enveloped]
    assert messages == ["enveloped", "still enveloped"]
    assert f"reload refused: {toml}:1: [[group]] needs a match" in err


def cycle_seconds(stderr: str) -> float:
    """The duration that a run's service line reports."""
    (line,) = [x for x in stderr.splitlines() if "groups read" in x]
    return float(line.rsplit(", ", 1)[1].removesuffix(" s"))


def test_rates_of_the_settings_file_pace_the_calls_and_rate_flags_override_them(
    setup: Setup,
) -> None:
    """[rates] FilterLogEvents = 1 makes four groups' reads take three seconds at least;
    --rate FilterLogEvents=100 on the command line overrides it."""
    logs = setup.moto.client()
    for name in ("g1", "g2", "g3", "g4"):
        seed(logs, name, {"s": [name]})
    conf = setup.config(setup.service("g1,g2,g3,g4"))
    toml = setup.folder / "aws-wodle.toml"
    toml.write_text("[rates]\nFilterLogEvents = 1\n")
    slow = setup.once(conf, "--log-format", "plain")
    assert slow.returncode == 0, slow.stderr
    assert cycle_seconds(slow.stderr) >= 2.9
    fast = setup.once(conf, "--log-format", "plain", "--rate", "FilterLogEvents=100")
    assert fast.returncode == 0, fast.stderr
    assert cycle_seconds(fast.stderr) < 2.0


def test_metrics_address_from_the_settings_file(setup: Setup) -> None:
    """metrics = "127.0.0.1:PORT" in the settings file serves the metrics there."""
    seed(setup.moto.client(), "app", {"s": ["a"]})
    conf = setup.config(setup.service("app"), interval="1h")
    port = free_port()
    (setup.folder / "aws-wodle.toml").write_text(f'metrics = "127.0.0.1:{port}"\n')
    proc = start_daemon(setup, conf, subprocess.DEVNULL)
    text = ""
    try:
        setup.sink.wait_for(1)
        deadline = time.monotonic() + 20
        while (
            'aws_wodle_events_forwarded_total{source="poll"} 1' not in text
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                continue
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert 'aws_wodle_events_forwarded_total{source="poll"} 1' in text


def test_settle_and_log_level_from_the_settings_file(setup: Setup) -> None:
    """Without flags, the file's settle and log_level apply: with the default 30 s margin
    events just put wait; with settle = 0 they are sent, and debug lines are logged."""
    seed(setup.moto.client(), "app", {"s": ["fresh"]}, start=int(time.time() * 1000))
    conf = setup.config(setup.service("app"))
    common = ("run", "--once", "--config", str(conf), "--queue", setup.sink.path)
    waiting = run_cli(*common, "--state", str(setup.folder / "a.db"))
    assert waiting.returncode == 0, waiting.stderr
    assert setup.sink.received == []
    toml = setup.folder / "aws-wodle.toml"
    toml.write_text('settle = 0\nlog_level = "debug"\n')
    sent = run_cli(*common, "--state", str(setup.folder / "b.db"))
    assert sent.returncode == 0, sent.stderr
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["fresh"]
    assert "1 events read, 1 forwarded" in sent.stderr
    missing = run_cli("check-config", "--config", str(conf), "--settings", str(toml) + ".x")
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"{toml}.x: cannot read the file")
