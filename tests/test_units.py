"""Pure pieces: checkpoint arithmetic, datagram framing, AWS error translation, the
forwarder's limits, the log format, and the systemd units' settings."""

from __future__ import annotations

import json
import os
import pty
import random
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from aws_wodle import errors
from aws_wodle.aws.budget import Budgets, RegionBudget
from aws_wodle.aws.cloudwatch import translate
from aws_wodle.errors import ForwardError
from aws_wodle.manager.forward import HEADER, MAX_DATAGRAM, QueueForwarder, encode_message, frame
from aws_wodle.model import Boundary, Cursor, Cycle, Gap, LogEvent
from aws_wodle.poll import boundary, window
from aws_wodle.poll.collector import MAX_WORKERS
from aws_wodle.runtime import logsetup
from aws_wodle.runtime.metricserver import MAX_CONNECTIONS


def ev(ts: int, message: str = "m", stream: str = "") -> LogEvent:
    return LogEvent(ts, message, ts + 1, stream)


def test_resolve_new_group_starts_at_only_logs_after() -> None:
    """A group never seen starts at the configured start, with no backfill."""
    assert window.resolve(None, 1000) == Cursor(covered_from=1000)


def test_resolve_earlier_start_backfills_the_gap_up_to_the_fence() -> None:
    """only_logs_after moved earlier: the gap up to covered_from is read once, up to the
    last fence; a gap under way is finished before a yet earlier start is seen to."""
    collected = Cursor(covered_from=1000, fence=9000, newest_ts=5000)
    opened = window.resolve(collected, 400)
    assert opened.covered_from == 400
    assert opened.gap == Gap(start=400, until=1000, fence=9000)
    assert window.resolve(opened, 100) == opened
    rule = window.gap_rule(Gap(400, 1000, 9000))
    chooser = window.Selector(rule, Boundary())
    kept = [e.timestamp for e in (ev(399), ev(400), ev(999), ev(1000)) if chooser.accept(e)]
    assert kept == [400, 999]


def test_resolve_later_start_restarts_there() -> None:
    """only_logs_after moved past the newest event forwarded: restart there."""
    collected = Cursor(covered_from=1000, fence=9000, newest_ts=5000)
    assert window.resolve(collected, 6000) == Cursor(covered_from=6000)
    assert window.resolve(collected, 3000) == collected


def test_fences_tile_ingestion_time() -> None:
    """A read sends what was ingested after the last fence and at or before its own."""
    cursor = Cursor(covered_from=0, fence=100)
    chooser = window.Selector(window.cycle_rule(cursor, Cycle(lo=0, fence=200)), Boundary())
    events = [LogEvent(5, "a", 100), LogEvent(5, "b", 101), LogEvent(5, "c", 200),
              LogEvent(5, "d", 201)]  # fmt: skip
    assert [e.message for e in events if chooser.accept(e)] == ["b", "c"]


def test_boundary_skips_each_repeat_once() -> None:
    """Two identical events in one millisecond: one sent means one skipped, not both."""
    seen = boundary.Seen(Boundary(9, (boundary.digest(ev(9, "x")),)))
    assert [seen.sent(e) for e in (ev(8, "w"), ev(9, "x"), ev(9, "x"), ev(10, "y"))] == [
        True,
        True,
        False,
        False,
    ]


def test_advance_keeps_every_digest_of_the_last_millisecond() -> None:
    """After a page, the boundary holds each event sent at the newest timestamp, and the
    stream is part of what tells two events apart."""
    start = Boundary(5, ("old",))
    new = boundary.advance(start, [ev(5, "p", "a"), ev(7, "q", "a"), ev(7, "r", "b")])
    assert new == Boundary(7, (boundary.digest(ev(7, "q", "a")), boundary.digest(ev(7, "r", "b"))))
    assert boundary.advance(start, [ev(5, "s")]) == Boundary(
        5, ("old", boundary.digest(ev(5, "s")))
    )
    assert boundary.digest(ev(7, "q", "a")) != boundary.digest(ev(7, "q", "b"))


def test_frame_is_header_plus_utf8() -> None:
    """A datagram is the header and the message's UTF-8 bytes, nothing else."""
    assert frame("héllo") == (HEADER + "héllo".encode(), False)


def test_frame_truncates_at_a_character_boundary() -> None:
    """Over 65,535 bytes, the datagram is cut to fit, never inside a UTF-8 sequence."""
    data, cut = frame("€" * 40_000)
    assert cut
    assert len(data) <= MAX_DATAGRAM
    assert len(data) > MAX_DATAGRAM - 3
    data[len(HEADER) :].decode("utf-8")


def test_lone_surrogates_are_escaped_and_json_stays_valid() -> None:
    """An unpaired surrogate never fails the send, and a JSON message still parses."""
    message = json.dumps({"x": "\ud83d"}, ensure_ascii=False)
    encoded = encode_message(message)
    assert json.loads(encoded.decode("utf-8")) == {"x": "\ud83d"}


def client_error(code: str, status: int = 400, message: str = "m") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Op",
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("AccessDeniedException"), errors.AccessDenied),
        (
            client_error("403", 403, "<ErrorResponse>AccessDenied</ErrorResponse>"),
            errors.AccessDenied,
        ),
        (client_error("ResourceNotFoundException"), errors.GroupNotFound),
        (client_error("ThrottlingException"), errors.Throttled),
        (client_error("UnrecognizedClientException"), errors.RegionUnavailable),
        (client_error("InvalidParameterException", message="bad nextToken"), errors.TokenRejected),
        (client_error("ServiceUnavailableException", 503), errors.AwsError),
        (NoCredentialsError(), errors.CredentialsError),
        (EndpointConnectionError(endpoint_url="http://x"), errors.RegionUnavailable),
    ],
)
def test_every_botocore_error_is_translated(exc: Exception, kind: type[errors.AwsError]) -> None:
    """botocore errors become ours, of the right kind, naming the operation for a denial."""
    translated = translate(exc, "DeleteLogStream")
    assert type(translated) is kind
    if kind is errors.AccessDenied:
        assert "logs:DeleteLogStream" in str(translated)


class FakeClock:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_throttle_pauses_every_caller_of_the_region() -> None:
    """After a throttle, any call of the account and region waits out the shared pause."""
    clock = FakeClock()
    budget = RegionBudget(clock=clock.time, sleep=clock.sleep, rng=random.Random(1))
    assert budget.acquire("GetLogEvents") == 0
    pause = budget.throttled("GetLogEvents")
    assert pause > 0
    assert budget.acquire("DescribeLogStreams") >= pause
    assert budget.rate("GetLogEvents") == 5.0
    second = budget.throttled("GetLogEvents")
    assert budget.rate("GetLogEvents") == 2.5
    assert second > pause * 0.5  # the pause grows with a streak of throttles
    for _ in range(40):
        budget.succeeded("GetLogEvents")
    assert budget.rate("GetLogEvents") == 10.0


def test_the_bucket_holds_the_configured_rate() -> None:
    """Calls beyond the rate wait: 30 GetLogEvents at 10/s take about 2 s after the burst."""
    clock = FakeClock()
    budget = RegionBudget(clock=clock.time, sleep=clock.sleep)
    start = clock.now
    for _ in range(30):
        budget.acquire("GetLogEvents")
    assert 1.9 <= clock.now - start <= 2.1


def test_budgets_are_shared_per_account_and_region() -> None:
    """Every wodle of one account and region gets the very same budget."""
    budgets = Budgets({"GetLogEvents": 3.0})
    assert budgets.get("1", "us-east-1") is budgets.get("1", "us-east-1")
    assert budgets.get("1", "us-east-1") is not budgets.get("2", "us-east-1")
    assert budgets.get("1", "eu-west-1").rate("GetLogEvents") == 3.0


def test_an_all_boundary_skips_every_event_at_that_millisecond() -> None:
    """An imported position (no digests) skips every event at its last timestamp."""
    seen = boundary.Seen(Boundary(9, (Boundary.ALL,)), by_stream=False)
    assert [seen.sent(e) for e in (ev(9, "a"), ev(9, "b"), ev(10, "c"))] == [True, True, False]


# The systemd units, read as systemd reads them --------------------------------------------

UNIT_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT_FILES = ("aws-wodle.service", "aws-wodle@.service")


def unit_settings(name: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, by key, in order (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in (UNIT_DIR / name).read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.parametrize("name", UNIT_FILES)
def test_unit_runs_the_packaged_command_and_follows_the_manager(name: str) -> None:
    """ExecStart is the package's /usr/bin/aws-wodle; enabled, the unit is wanted by the
    manager (so starting the manager starts it), bound to it, and ordered after it."""
    unit = unit_settings(name)
    assert unit["ExecStart"][0].startswith("/usr/bin/aws-wodle run ")
    assert unit["WantedBy"] == ["wazuh-manager.service"]
    assert unit["BindsTo"] == ["wazuh-manager.service"]
    assert unit["PartOf"] == ["wazuh-manager.service"]
    assert "wazuh-manager.service" in unit["After"][0].split()


@pytest.mark.parametrize("name", UNIT_FILES)
def test_unit_neither_restart_loops_on_bad_config_nor_fails_on_a_missing_directory(
    name: str,
) -> None:
    """Exit 2 (a config error) is not restarted; the state directory is made before start,
    and every ReadWritePaths= entry is optional, so a missing one is no 226/NAMESPACE."""
    unit = unit_settings(name)
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["ExecStartPre"] == [
        "+/usr/bin/aws-wodle state-dir --owner wazuh /var/ossec/var/aws-wodle"
    ]
    paths = [p for value in unit["ReadWritePaths"] for p in value.split()]
    assert "-/var/ossec/var/aws-wodle" in paths
    assert all(p.startswith("-") for p in paths), paths
    assert unit["SyslogLevel"] == ["err"]


@pytest.mark.parametrize("name", UNIT_FILES)
def test_unit_caps_descriptors_threads_and_memory_above_what_the_daemon_uses(name: str) -> None:
    """LimitNOFILE, TasksMax, MemoryHigh and MemoryMax are set, each with room above the
    daemon's own bounds: its collection readers and metrics connections, and the measured
    peak RSS (79 MB) with MemoryHigh below MemoryMax."""
    unit = unit_settings(name)
    own_threads = 1 + 1 + MAX_WORKERS + 1 + MAX_CONNECTIONS
    assert int(unit["TasksMax"][0]) >= 10 * own_threads
    assert int(unit["LimitNOFILE"][0]) >= int(unit["TasksMax"][0]) * 4
    high, most = (int(unit[key][0].removesuffix("M")) for key in ("MemoryHigh", "MemoryMax"))
    assert 3 * 79 <= high < most


def test_template_differs_from_the_main_unit_only_in_its_files() -> None:
    """The template instance carries every setting of the main unit: only its description
    and its command line (its own config and state) differ."""
    main = unit_settings("aws-wodle.service")
    template = unit_settings("aws-wodle@.service")
    for unit in (main, template):
        del unit["Description"]
    assert main.pop("ExecStart") == ["/usr/bin/aws-wodle run --ossec-home /var/ossec"]
    assert template.pop("ExecStart") == [
        "/usr/bin/aws-wodle run --ossec-home /var/ossec --config /var/ossec/etc/aws-wodle/%i.conf "
        "--state /var/ossec/var/aws-wodle/%i.db"
    ]
    assert main == template


# The forwarder's limits, on a real socket path with a clock of ours ------------------------


def test_forwarder_gives_up_after_max_wait_and_then_at_once(tmp_path: Path) -> None:
    """With max_wait, an outage (no socket: ENOENT) ends after that long with ForwardError;
    on_failure runs once, and later sends fail at once, without waiting again."""
    clock = FakeClock()
    failures: list[str] = []
    forwarder = QueueForwarder(
        str(tmp_path / "queue"),
        sleep=clock.sleep,
        clock=clock.time,
        max_wait=60.0,
        on_failure=lambda: failures.append("stop"),
    )
    with pytest.raises(ForwardError, match=r"still unavailable \(ENOENT\) after 60 s") as caught:
        forwarder.send_all([b"1:Wazuh-AWS:x"])
    assert caught.value.reason == "ENOENT"
    assert 60.0 <= clock.now - 1000.0 <= 62.0
    assert failures == ["stop"]
    assert forwarder.unsent
    before = clock.now
    with pytest.raises(ForwardError):
        forwarder.send_all([b"1:Wazuh-AWS:y"])
    assert clock.now == before
    assert failures == ["stop"]


def test_forwarder_without_max_wait_waits_until_stopping(tmp_path: Path) -> None:
    """Without max_wait (the daemon), only a stop request ends the wait, and nothing is
    recorded as a failure: the events go out after the next start."""
    clock = FakeClock()
    stop_at = 1000.0 + 3600.0
    forwarder = QueueForwarder(
        str(tmp_path / "queue"),
        sleep=clock.sleep,
        clock=clock.time,
        stopping=lambda: clock.now >= stop_at,
    )
    with pytest.raises(ForwardError, match="at shutdown"):
        forwarder.send_all([b"1:Wazuh-AWS:x"])
    assert clock.now >= stop_at
    assert forwarder.failure is None
    assert forwarder.unsent


# Log format -------------------------------------------------------------------------------


def test_a_terminal_gets_the_plain_format_and_anything_else_syslog() -> None:
    """Without --log-format, a terminal on stderr gets plain lines, a pipe or file syslog's."""
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal, tempfile.TemporaryFile("w") as file:
        assert logsetup.default_format(terminal) == "plain"
        assert logsetup.default_format(file) == "syslog"
    os.close(leader)
