"""``[[kinesis]]`` in the settings file: keys, defaults, errors with file and line, and
what check-config shows of them."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from aws_wodle.config.settings import describe, merge
from aws_wodle.push.source import KinesisSource
from conftest import run_cli
from test_settings import PATH, parse, problems


def test_every_kinesis_key_is_read() -> None:
    """Every key of a [[kinesis]] table reaches the source."""
    settings = parse(
        """
        [[kinesis]]
        stream = "siem"
        region = "eu-west-1"
        lease_table = "siem-leases"
        aws_profile = "collector"
        iam_role_arn = "arn:aws:iam::111122223333:role/reader"
        iam_role_duration = 900
        sts_endpoint = "sts.eu-west-1.amazonaws.com"
        kinesis_endpoint = "https://kinesis.example"
        dynamodb_endpoint = "http://127.0.0.1:4566"
        lease_period = "20s"
        worker_id = "manager-1"
        batch = 500
        envelope = true
        """
    )
    assert settings.kinesis == (
        KinesisSource(
            stream="siem",
            region="eu-west-1",
            lease_table="siem-leases",
            line=2,
            aws_profile="collector",
            iam_role_arn="arn:aws:iam::111122223333:role/reader",
            iam_role_duration=900,
            sts_endpoint="https://sts.eu-west-1.amazonaws.com",
            kinesis_endpoint="https://kinesis.example",
            dynamodb_endpoint="http://127.0.0.1:4566",
            lease_period=20.0,
            worker_id="manager-1",
            batch=500,
            envelope=True,
        ),
    )


def test_defaults_and_region_from_the_arn() -> None:
    """The ARN gives the region; the lease table defaults to aws-wodle-<stream name>; a
    10 s lease period, 10,000 records a batch, raw messages, a generated worker id."""
    (source,) = parse(
        """
        [[kinesis]]
        stream = "arn:aws:kinesis:ap-southeast-2:111122223333:stream/central-logs"
        """
    ).kinesis
    assert (source.region, source.lease_table) == ("ap-southeast-2", "aws-wodle-central-logs")
    assert (source.lease_period, source.batch, source.envelope) == (10.0, 10_000, False)
    assert source.worker_id is None
    assert source.stream_name == "central-logs"


def test_every_problem_is_reported_with_its_line() -> None:
    """All problems of every [[kinesis]] table at once, each with its line."""
    found = problems(
        """
        [[kinesis]]
        region = "us-east-1"

        [[kinesis]]
        stream = "bad name"
        region = "moon-1"
        batch = 20000
        lease_period = "1s"
        iam_role_duration = 900
        access_key = "AKIA"
        colour = "blue"

        [[kinesis]]
        stream = "arn:aws:kinesis:eu-west-1:111122223333:stream/s"
        region = "us-east-1"
        lease_table = "x"
        envelope = "yes"
        """
    )
    assert found == [
        f"{PATH}:2: [[kinesis]] needs a stream: its name or ARN",
        f"{PATH}:6: [[kinesis]] stream: invalid stream name 'bad name': 1 to 128 letters, "
        "digits, '_', '.' or '-'",
        f"{PATH}:7: [[kinesis]] region: invalid region 'moon-1': expected a region such as "
        "us-east-1",
        f"{PATH}:8: [[kinesis]] batch: expected a number of records from 1 to 10000, got 20000",
        f"{PATH}:9: [[kinesis]] lease_period: must be at least 3s, got '1s'",
        f"{PATH}:10: [[kinesis]] iam_role_duration needs iam_role_arn",
        f"{PATH}:11: [[kinesis]] access_key needs secret_key",
        f"{PATH}:12: unknown option 'colour' in [[kinesis]] (known: stream, region, "
        "lease_table, aws_profile, access_key, secret_key, iam_role_arn, iam_role_duration, "
        "sts_endpoint, kinesis_endpoint, dynamodb_endpoint, lease_period, worker_id, batch, "
        "envelope)",
        f"{PATH}:16: [[kinesis]] region: us-east-1 differs from the stream ARN's eu-west-1",
        f"{PATH}:17: [[kinesis]] lease_table: invalid lease_table 'x': 3 to 255 letters, "
        "digits, '_', '.' or '-'",
        f"{PATH}:18: [[kinesis]] envelope: expected true or false, got 'yes'",
    ]


def test_the_same_stream_twice_is_refused() -> None:
    """One worker per stream and process: a second table for the same stream is an error."""
    found = problems(
        """
        [[kinesis]]
        stream = "s"
        region = "us-east-1"

        [[kinesis]]
        stream = "arn:aws:kinesis:us-east-1:111122223333:stream/s"
        """
    )
    assert len(found) == 1
    assert "also at line 2" in found[0]


def test_describe_shows_a_source_and_never_its_secret() -> None:
    """check-config's text names the stream, table, period and credentials, not the key."""
    settings = parse(
        """
        [[kinesis]]
        stream = "s"
        region = "us-east-1"
        access_key = "AKIAEXAMPLE"
        secret_key = "very-secret"
        """
    )
    text = describe(merge(settings, {}, {}))
    assert "[[kinesis]] at line 2: stream s in us-east-1, lease table aws-wodle-s" in text
    assert "lease period 10s" in text
    assert "AKIAEXAMPLE" in text
    assert "very-secret" not in text
    assert "very-secret" not in repr(settings.kinesis)
    assert [w.message for w in settings.warnings] == [
        "[[kinesis]] access_key/secret_key are deprecated; use aws_profile or iam_role_arn"
    ]


def test_check_config_shows_kinesis_sources(tmp_path: Path) -> None:
    """check-config prints each [[kinesis]] source and exits 0 with no aws-s3 wodle."""
    conf = tmp_path / "ossec.conf"
    conf.write_text("<ossec_config>\n</ossec_config>\n")
    (tmp_path / "aws-wodle.toml").write_text(
        '[[kinesis]]\nstream = "siem"\nregion = "us-east-1"\nlease_period = "30s"\n'
    )
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 0, result.stderr
    assert "[[kinesis]] at line 1: stream siem in us-east-1, lease table aws-wodle-siem" in (
        result.stdout
    )
    assert "lease period 30s" in result.stdout


def test_the_readmes_kinesis_example_is_valid() -> None:
    """The [[kinesis]] table shown in README.md parses to the source it describes."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [block] = re.findall(r"```\n(\s*\[\[kinesis\]\].*?)```", readme, re.DOTALL)
    (source,) = parse(textwrap.dedent(block)).kinesis
    assert (source.stream_name, source.region, source.lease_table) == (
        "siem-logs",
        "eu-west-1",
        "aws-wodle-siem-logs",
    )
    assert source.envelope
