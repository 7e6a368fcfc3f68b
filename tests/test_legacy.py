"""The old module's command line (``legacy``): arguments, datagrams, stdout lines, exit codes."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aws_wodle.store.state import StateStore
from conftest import Setup, Sink, cli_env, now_ms, put, seed

# `aws-wodle legacy ARGS`, as the command line runs it.
LEGACY = (
    "import sys; from aws_wodle.runtime.cli import main; sys.exit(main(['legacy', *sys.argv[1:]]))"
)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


def old_date(days_ago: int = 1) -> str:
    """A date as the old module takes it: YYYY-MMM-DD."""
    day = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return f"{day.year}-{_MONTHS[day.month - 1]}-{day.day:02d}"


def run_legacy(*args: str, code: str = LEGACY, env: dict[str, str] | None = None) -> Any:
    """Run the legacy entry point as a real process; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def old_args(setup: Setup, groups: str, *extra: str, paths: bool = True) -> list[str]:
    """The arguments the manager's wodle passes, pointed at moto, and (with ``paths``) at
    the test's sink and state file."""
    ours = ["--queue", setup.sink.path, "--state", setup.state] if paths else []
    ours.append("--settle=0")  # moto: an event is readable once accepted
    return [
        "--service", "cloudwatchlogs",
        "--aws_log_groups", groups,
        "--regions", "us-east-1",
        "--only_logs_after", old_date(),
        "--service_endpoint", setup.moto.url,
        "--sts_endpoint", setup.moto.url,
        *ours,
        *extra,
    ]  # fmt: skip


def lines(stdout: str, prefix: str) -> list[str]:
    """The stdout lines with this prefix."""
    return [line for line in stdout.splitlines() if line.startswith(prefix)]


def test_old_command_line_forwards_events_and_prints_debug_lines(setup: Setup) -> None:
    """--service cloudwatchlogs with --debug 2 forwards each event and prints DEBUG lines."""
    seed(setup.moto.client(), "app", {"s1": ["a0", "a1"], "s2": ["b0"]})
    extra = ["--debug", "2", "--aws_account_alias", "prod", "--skip_on_error"]
    ignored = ["--type", "cloudtrail", "--aws_organization_id", "o-1", "--remove"]
    result = run_legacy(*old_args(setup, "app", *extra, *ignored))
    assert result.returncode == 0, result.stdout + result.stderr
    setup.sink.wait_for(3)
    assert sorted(setup.sink.messages()) == ["a0", "a1", "b0"]
    out = result.stdout.splitlines()
    assert out
    assert all(line.startswith("DEBUG: ") for line in out), out
    assert out[0] == "DEBUG: +++ Debug mode on - Level: 2"
    assert "DEBUG: log group app: 3 events forwarded" in out
    assert "DEBUG: region us-east-1, log group app, log stream s1: 2 events forwarded" in out
    assert any("finished in" in line and "3 events" in line for line in out)
    assert "Traceback" not in result.stderr
    again = run_legacy(*old_args(setup, "app", "--debug", "1"))
    assert again.returncode == 0
    assert len(setup.sink.received) == 3
    assert 'DEBUG: +++ There are no new events in the "app" group' in again.stdout.splitlines()
    assert any("0 events" in line for line in lines(again.stdout, "DEBUG: "))


def test_sent_lines_per_stream_as_the_old_module_prints_them(setup: Setup) -> None:
    """At --debug 1 and 2, each stream read prints DEBUG: +++ Sent N events to Analysisd."""
    seed(setup.moto.client(), "app", {"s1": ["a0", "a1"], "s2": ["b0"], "s3": []})
    for level in ("1", "2"):
        result = run_legacy(*old_args(setup, "app", "--debug", level, "--reparse"))
        assert result.returncode == 0, result.stdout
        sent = [line for line in result.stdout.splitlines() if "+++ Sent" in line]
        assert sorted(sent) == [
            "DEBUG: +++ Sent 1 events to Analysisd",
            "DEBUG: +++ Sent 2 events to Analysisd",
        ]
    quiet = run_legacy(*old_args(setup, "app", "--reparse"))
    assert quiet.returncode == 0
    assert "+++" not in quiet.stdout


def test_sent_lines_per_region_and_stream_as_the_old_module_prints_them(setup: Setup) -> None:
    """With --regions us-east-1,us-east-2 and the same stream of 3 events in each, the old
    module prints Sent 3 events once per region and stream, not one Sent 6."""
    for region in ("us-east-1", "us-east-2"):
        seed(setup.moto.client(region=region), "app", {"s": ["e0", "e1", "e2"]})
    args = old_args(setup, "app", "--debug", "2", "--reparse")
    args[args.index("us-east-1")] = "us-east-1,us-east-2"
    result = run_legacy(*args)
    assert result.returncode == 0, result.stdout
    assert lines(result.stdout, "DEBUG: +++ Sent") == ["DEBUG: +++ Sent 3 events to Analysisd"] * 2
    named = [line for line in result.stdout.splitlines() if "events forwarded" in line]
    assert [line.split(", log group")[0] for line in named[:2]] == [
        "DEBUG: region us-east-1",
        "DEBUG: region us-east-2",
    ], named
    setup.sink.wait_for(6)
    assert sorted(setup.sink.messages()) == ["e0", "e0", "e1", "e1", "e2", "e2"]


def test_discard_lines_as_the_old_module_prints_them(setup: Setup) -> None:
    """At --debug 2 each discarded event prints the old module's line: the field form for a
    JSON message, the plain form for a text message matched whole (not kept, as it was)."""
    messages = ['{"action": "REJECT"}', '{"action": "ACCEPT"}', "REJECT as text", "kept text"]
    seed(setup.moto.client(), "app", {"s": messages})
    rule = ["--discard-regex", "REJ", "--discard-field", "action"]
    result = run_legacy(*old_args(setup, "app", *rule, "--debug", "2"))
    assert result.returncode == 0, result.stdout
    setup.sink.wait_for(2)
    assert setup.sink.messages() == ['{"action": "ACCEPT"}', "kept text"]
    out = result.stdout.splitlines()
    assert (
        out.count(
            'DEBUG: +++ The "REJ" regex found a match in the "action" field. '
            "The event will be skipped."
        )
        == 1
    )
    assert out.count('DEBUG: +++ The "REJ" regex found a match. The event will be skipped.') == 1
    quieter = run_legacy(*old_args(setup, "app", *rule, "--debug", "1", "--reparse"))
    assert quieter.returncode == 0
    assert "regex found a match" not in quieter.stdout


def test_values_with_xml_characters_reach_the_rule_as_given(setup: Setup) -> None:
    """Arguments become options directly: &, < and > in a regex are matched as written."""
    seed(setup.moto.client(), "app", {"s": ["a<b>&c dropped", "a&amp;c kept"]})
    result = run_legacy(*old_args(setup, "app", "--discard-regex", "a<b>&c"))
    assert result.returncode == 0, result.stdout
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["a&amp;c kept"]


def test_short_options_and_silence_without_debug(setup: Setup) -> None:
    """The old short options work; without --debug a good run prints nothing."""
    logs = setup.moto.client()
    first = seed(logs, "app", {"s": ["x0"]})
    short = [
        "-sr", "cloudwatchlogs", "-g", "app", "-r", "us-east-1", "-s", old_date(),
        "-se", setup.moto.url, "-st", setup.moto.url, "--queue", setup.sink.path,
        "--state", setup.state, "--settle=0", "--late-every=0",
    ]  # fmt: skip
    quiet = run_legacy(*short)
    assert quiet.returncode == 0, quiet.stdout
    assert quiet.stdout == ""
    put(logs, "app", "s", ["x1"], first + 1)
    verbose = run_legacy(*short, "-d", "1")
    assert verbose.returncode == 0, verbose.stdout
    setup.sink.wait_for(2)
    assert setup.sink.messages() == ["x0", "x1"]
    assert lines(verbose.stdout, "DEBUG: ")
    assert "log stream" not in verbose.stdout


def test_missing_group_is_an_error_line_and_code_16(setup: Setup) -> None:
    """A missing log group prints an ERROR line and exits 16; the other group is collected."""
    seed(setup.moto.client(), "app", {"s": ["kept"]})
    result = run_legacy(*old_args(setup, "app,nosuch"))
    assert result.returncode == 16, result.stdout
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["kept"]
    errors = lines(result.stdout, "ERROR: ")
    assert any("nosuch" in line for line in errors), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_other_services_buckets_and_subscribers_exit_12(setup: Setup) -> None:
    """Anything but --service cloudwatchlogs is refused with an ERROR line and code 12."""
    for kind in (["--service", "inspector"], ["--bucket", "trail-bucket"], ["-sb", "buckets"]):
        result = run_legacy(*kind, "--queue", setup.sink.path, "--state", setup.state)
        assert result.returncode == 12, (kind, result.stdout)
        assert lines(result.stdout, "ERROR: "), kind
    assert setup.sink.received == []


def test_bad_arguments_exit_2_and_unknown_region_22(setup: Setup) -> None:
    """Invalid values exit 2 (an unknown region 22), each with an ERROR line."""
    base = ["--service", "cloudwatchlogs", "--queue", setup.sink.path, "--state", setup.state]
    cases = [
        (["-g", "app", "--only_logs_after", "2024-13-45"], 2),
        (["-g", "app", "--iam_role_duration", "100"], 2),
        (["-g", "app", "--no-such-option"], 2),
        (["-g", "app", "--debug", "loud"], 2),
        ([], 2),
        (["-g", "app", "--regions", "us-east-1,mars-north-7"], 22),
    ]
    for args, code in cases:
        result = run_legacy(*base, *args)
        assert result.returncode == code, (args, result.stdout)
        assert lines(result.stdout, "ERROR: "), args
        assert "Traceback" not in result.stdout + result.stderr
    missing = run_legacy("-g", "app")
    assert missing.returncode == 2
    assert lines(missing.stdout, "ERROR: ")


def test_invalid_region_lines_as_the_old_module_prints_them(setup: Setup) -> None:
    """An unknown region exits 22 with ERROR: Invalid region 'X', or at --debug 1 and more
    with the old module's own line DEBUG: +++ ERROR: Invalid region 'X'."""
    base = ["--service", "cloudwatchlogs", "--queue", setup.sink.path, "--state", setup.state]
    base += ["-g", "app", "--regions", "us-east-1,mars-north-7"]
    quiet = run_legacy(*base)
    assert quiet.returncode == 22
    assert quiet.stdout.splitlines() == ["ERROR: Invalid region 'mars-north-7'"]
    for level in ("1", "2"):
        loud = run_legacy(*base, "--debug", level)
        assert loud.returncode == 22
        assert "DEBUG: +++ ERROR: Invalid region 'mars-north-7'" in loud.stdout.splitlines()


def test_static_keys_work_and_the_secret_never_shows(setup: Setup) -> None:
    """--access_key/--secret_key collect; the secret is in no output, even at --debug 3."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    keys = ["--access_key", "AKIAIOSFODNN7EXAMPLE", "--secret_key", SECRET]
    good = run_legacy(*old_args(setup, "app", *keys, "--debug", "3"))
    assert good.returncode == 0, good.stdout
    setup.sink.wait_for(1)
    assert setup.sink.messages() == ["x"]
    assert any("deprecated" in line for line in lines(good.stdout, "WARNING: "))
    failed = run_legacy(*old_args(setup, "nosuch", *keys, "--debug", "3"))
    assert failed.returncode == 16
    refused = run_legacy(*old_args(setup, "app", *keys, "--bogus"))
    assert refused.returncode == 2
    for result in (good, failed, refused):
        assert SECRET not in result.stdout + result.stderr


def test_manager_away_exits_11_and_the_next_run_loses_nothing(setup: Setup) -> None:
    """No queue socket: an ERROR line and code 11; a later run sends every event once."""
    seed(setup.moto.client(), "app", {"s": ["e0", "e1"]})
    args = old_args(setup, "app")
    away = [*old_args(setup, "app", paths=False), "--queue", setup.sink.path + "-away"]
    away += ["--state", setup.state]
    patient = (
        "import sys; from aws_wodle.runtime.legacy import main; "
        "sys.exit(main(sys.argv[1:], queue_wait=0.5))"
    )
    result = run_legacy(*away, code=patient)
    assert result.returncode == 11, result.stdout
    assert any("Wazuh must be running" in line for line in lines(result.stdout, "ERROR: "))
    assert run_legacy(*args).returncode == 0
    setup.sink.wait_for(2)
    assert setup.sink.messages() == ["e0", "e1"]


def test_state_file_in_use_exits_5(setup: Setup) -> None:
    """A state file held by another collector is an ERROR line and code 5."""
    seed(setup.moto.client(), "app", {"s": ["x"]})
    holder = StateStore(setup.state)
    try:
        result = run_legacy(*old_args(setup, "app"))
    finally:
        holder.close()
    assert result.returncode == 5, result.stdout
    assert any("in use" in line for line in lines(result.stdout, "ERROR: "))
    assert setup.sink.received == []


def test_missing_profile_exits_23(setup: Setup) -> None:
    """A profile that does not exist is an ERROR line and code 23."""
    result = run_legacy(*old_args(setup, "app", "--aws_profile", "nosuch"))
    assert result.returncode == 23, result.stdout
    assert any("nosuch" in line for line in lines(result.stdout, "ERROR: "))


def test_reparse_sends_everything_again_once(setup: Setup) -> None:
    """--reparse resends every event from only_logs_after; the next run sends nothing."""
    seed(setup.moto.client(), "app", {"s1": ["a", "b"], "s2": ["c"]})
    assert run_legacy(*old_args(setup, "app")).returncode == 0
    setup.sink.wait_for(3)
    assert run_legacy(*old_args(setup, "app", "--reparse")).returncode == 0
    setup.sink.wait_for(6)
    assert sorted(setup.sink.messages()) == ["a", "a", "b", "b", "c", "c"]
    assert run_legacy(*old_args(setup, "app")).returncode == 0
    assert len(setup.sink.received) == 6


def test_defaults_under_ossec_home_and_environment_overrides(setup: Setup) -> None:
    """Without --queue/--state: the home's queue and run's state file, or the environment's."""
    home = Path(setup.sink.path).parent / "home"
    (home / "queue" / "sockets").mkdir(parents=True)
    queue = Sink(str(home / "queue" / "sockets" / "queue"))
    queue.bind()
    try:
        seed(setup.moto.client(), "app", {"s": ["hello"]})
        args = old_args(setup, "app", paths=False)
        in_home = (
            "import sys; from aws_wodle.runtime.legacy import main; "
            "sys.exit(main(sys.argv[2:], ossec_home=sys.argv[1]))"
        )
        assert run_legacy(str(home), *args, code=in_home).returncode == 0
        queue.wait_for(1)
        assert queue.messages() == ["hello"]
        assert (home / "var" / "aws-wodle" / "state.db").exists()
        other = setup.folder / "other.db"
        env = cli_env(AWS_WODLE_STATE=str(other), AWS_WODLE_QUEUE=setup.sink.path)
        assert run_legacy(*args, env=env).returncode == 0
        setup.sink.wait_for(1)
        assert setup.sink.messages() == ["hello"]
        assert other.exists()
    finally:
        queue.unbind()


def test_event_messages_never_show_on_stdout(setup: Setup) -> None:
    """Event messages never appear on stdout, whatever the debug level."""
    seed(setup.moto.client(), "app", {"s": ["a-very-distinct-message"]}, start=now_ms() - 1000)
    result = run_legacy(*old_args(setup, "app", "--debug", "3"))
    assert result.returncode == 0
    setup.sink.wait_for(1)
    assert "a-very-distinct-message" not in result.stdout
