"""Tests for reading the aws-s3 wodle blocks of ossec.conf."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aws_wodle.cloudwatch import known_regions
from aws_wodle.config import (
    DEFAULT_INTERVAL_SECONDS,
    MAX_FILE_BYTES,
    Config,
    DiscardRule,
    Schedule,
    load_config,
    parse_config,
    parse_date,
    parse_interval,
    summary,
)
from aws_wodle.errors import ConfigError

REGIONS = known_regions()
PATH = "/var/ossec/etc/ossec.conf"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


def conf(text: str) -> bytes:
    """Dedent a config written in a test; its first line is line 1."""
    return textwrap.dedent(text).lstrip("\n").encode()


def parse(text: str) -> Config:
    """Parse a test config against botocore's regions."""
    return parse_config(conf(text), PATH, REGIONS)


def problems(text: str) -> list[str]:
    """Parse a config that must fail; return its problems as text."""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(problem) for problem in caught.value.problems]


def service_conf(*lines: str) -> str:
    """A one-wodle config whose cloudwatchlogs service holds ``lines``, from line 4 on."""
    body = "\n".join(f"      {line}" for line in lines)
    return (
        "<ossec_config>\n"
        '  <wodle name="aws-s3">\n'
        '    <service type="cloudwatchlogs">\n'
        f"{body}\n"
        "    </service>\n"
        "  </wodle>\n"
        "</ossec_config>\n"
    )


def wodle_conf(*lines: str) -> str:
    """A one-wodle config with ``lines`` from line 3 on, then a minimal service."""
    body = "\n".join(f"    {line}" for line in lines)
    return (
        "<ossec_config>\n"
        '  <wodle name="aws-s3">\n'
        f"{body}\n"
        '    <service type="cloudwatchlogs"><aws_log_groups>g</aws_log_groups></service>\n'
        "  </wodle>\n"
        "</ossec_config>\n"
    )


FULL = """
<!-- manager configuration -->
<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
  </global>
  <wodle name="syscollector">
    <interval>1h</interval>
  </wodle>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>10m</interval>
    <run_on_start>no</run_on_start>
    <skip_on_error>yes</skip_on_error>
    <service type="cloudwatchlogs">
      <aws_log_groups> /aws/lambda/a ,/aws/lambda/b </aws_log_groups>
      <regions>us-east-1, eu-west-1 ,us-gov-west-1,cn-north-1</regions>
      <only_logs_after>2024-jan-31</only_logs_after>
      <aws_profile>prod</aws_profile>
      <iam_role_arn>arn:aws:iam::123456789012:role/reader</iam_role_arn>
      <iam_role_duration>1200</iam_role_duration>
      <sts_endpoint>https://sts.us-east-1.amazonaws.com</sts_endpoint>
      <service_endpoint>http://127.0.0.1:5000</service_endpoint>
      <aws_account_id>123456789012</aws_account_id>
      <aws_account_alias>production</aws_account_alias>
      <remove_log_streams>yes</remove_log_streams>
      <discard_regex field="data.action">REJECT</discard_regex>
    </service>
  </wodle>
</ossec_config>
<!-- a second root, as the manager allows -->
<ossec_config>
  <wodle name="aws-s3">
    <disabled>yes</disabled>
    <day>31</day>
    <interval>2M</interval>
    <service type="cloudwatchlogs">
      <aws_log_groups>monthly</aws_log_groups>
      <access_key>AKIAIOSFODNN7EXAMPLE</access_key>
      <secret_key>SECRET</secret_key>
    </service>
  </wodle>
  <wodle name="aws-s3">
    <wday>Sunday</wday>
    <time>03:30</time>
    <interval>2w</interval>
    <service type="cloudwatchlogs">
      <aws_log_groups>weekly</aws_log_groups>
      <regions></regions>
    </service>
  </wodle>
</ossec_config>
""".replace("SECRET", SECRET)


def test_every_option_is_read() -> None:
    """Each wodle and service option lands in its field with the value given."""
    config = parse(FULL)
    assert config.path == PATH
    first = config.wodles[0]
    assert first.line == 9
    assert first.disabled is False
    assert first.skip_on_error is True
    assert first.schedule == Schedule(600, None, None, None, None, run_on_start=False)
    (service,) = first.services
    assert service.line == 14
    assert service.log_groups == ("/aws/lambda/a", "/aws/lambda/b")
    assert service.regions == ("us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1")
    assert service.only_logs_after == datetime(2024, 1, 31, tzinfo=timezone.utc)
    assert service.aws_profile == "prod"
    assert service.access_key is None
    assert service.secret_key is None
    assert service.iam_role_arn == "arn:aws:iam::123456789012:role/reader"
    assert service.iam_role_duration == 1200
    assert service.sts_endpoint == "https://sts.us-east-1.amazonaws.com"
    assert service.service_endpoint == "http://127.0.0.1:5000"
    assert service.aws_account_id == "123456789012"
    assert service.aws_account_alias == "production"
    assert service.remove_log_streams is True
    assert service.discard is not None
    assert service.discard.field == "data.action"
    assert service.discard.pattern.pattern == "REJECT"


def test_several_wodles_each_with_its_own_schedule() -> None:
    """Wodles in several roots keep their own schedule; disabled ones are listed too."""
    _, monthly, weekly = parse(FULL).wodles
    assert monthly.line == 32
    assert monthly.disabled is True
    assert monthly.schedule == Schedule(None, 2, 31, None, (0, 0), run_on_start=True)
    assert monthly.services[0].access_key == "AKIAIOSFODNN7EXAMPLE"
    assert monthly.services[0].secret_key == SECRET
    assert weekly.schedule == Schedule(2 * 604800, None, None, 6, (3, 30), run_on_start=True)
    assert weekly.services[0].regions == ()


def test_defaults() -> None:
    """Options left out take their documented defaults."""
    config = parse(wodle_conf("<!-- nothing -->"))
    (wodle,) = config.wodles
    assert wodle.disabled is False
    assert wodle.skip_on_error is False
    assert wodle.schedule == Schedule(
        DEFAULT_INTERVAL_SECONDS, None, None, None, None, run_on_start=True
    )
    (service,) = wodle.services
    assert service.regions == ()
    assert service.only_logs_after is None
    assert service.remove_log_streams is False
    assert service.discard is None
    assert config.warnings == ()


def test_warnings_carry_file_and_line() -> None:
    """Deprecated keys and empty regions warn with their line; the secret is never shown."""
    warnings = [str(warning) for warning in parse(FULL).warnings]
    assert warnings == [
        f"{PATH}:38: access_key/secret_key are deprecated; use aws_profile or iam_role_arn",
        f"{PATH}:48: no regions: every region of the credentials' partition is searched",
    ]


def test_secret_never_shown() -> None:
    """The secret key appears in no repr, str, summary or warning, not even in part."""
    config = parse(FULL)
    shown = repr(config) + str(config) + summary(config)
    shown += "".join(str(warning) for warning in config.warnings)
    assert SECRET not in shown
    assert SECRET[:8] not in shown
    assert SECRET[-8:] not in shown


def test_secret_not_in_errors() -> None:
    """Errors about the keys do not echo the secret."""
    found = problems(
        service_conf("<aws_log_groups>g</aws_log_groups>", f"<secret_key>{SECRET}</secret_key>")
    )
    assert found == [f"{PATH}:5: secret_key needs access_key"]


def test_summary_describes_everything() -> None:
    """The summary names schedules, groups, regions, credentials, endpoints and discard rules."""
    text = summary(parse(FULL))
    assert "wodle at line 9: enabled" in text
    assert "every 10m, first run after one interval" in text
    assert "wodle at line 32: disabled" in text
    assert "monthly on day 31 at 00:00, every 2 months" in text
    assert "weekly on sunday at 03:30, every 2 weeks" in text
    assert "log groups: /aws/lambda/a, /aws/lambda/b" in text
    assert "regions: us-east-1, eu-west-1, us-gov-west-1, cn-north-1" in text
    assert "regions: all regions of the credentials' partition" in text
    assert "only_logs_after: 2024-01-31T00:00:00+00:00" in text
    assert "role ARN arn:aws:iam::123456789012:role/reader, 1200 s sessions" in text
    assert "assumed with profile prod" in text
    assert "credentials: static keys (deprecated)" in text
    assert "sts_endpoint: https://sts.us-east-1.amazonaws.com" in text
    assert "service_endpoint: http://127.0.0.1:5000" in text
    assert "remove_log_streams: yes" in text
    assert "discard: field data.action matching 'REJECT'" in text
    assert "discard: none" in text
    assert "2 warnings:" in text


def test_summary_default_chain_and_plain_schedules() -> None:
    """A service without credentials uses the default chain; daily schedules read as such."""
    text = summary(parse(wodle_conf("<time>03:00</time>")))
    assert "daily at 03:00, also at start" in text
    assert "credentials: default chain" in text
    text = summary(parse(wodle_conf("<interval>1h</interval>")))
    assert "every 1h, first run at start" in text


def test_bucket_wodle_warns_and_cloudwatch_wodle_runs() -> None:
    """A wodle of buckets only is valid with one warning; the cloudwatchlogs wodle is read."""
    config = parse(
        """
        <ossec_config>
          <wodle name="aws-s3">
            <bucket type="cloudtrail">
              <name>trail</name>
              <anything_goes>not validated</anything_goes>
            </bucket>
            <service type="inspector"><regions>nowhere-1</regions></service>
            <subscriber type="security_lake"><sqs_name>q</sqs_name></subscriber>
          </wodle>
          <wodle name="aws-s3">
            <service type="cloudwatchlogs"><aws_log_groups>g</aws_log_groups></service>
          </wodle>
        </ossec_config>
        """
    )
    buckets, cloudwatch = config.wodles
    assert buckets.services == ()
    assert cloudwatch.services[0].log_groups == ("g",)
    assert [str(warning) for warning in config.warnings] == [
        f"{PATH}:3: this collector handles only CloudWatch Logs "
        '(<service type="cloudwatchlogs">); <bucket type="cloudtrail"> (line 3), '
        '<service type="inspector"> (line 7), <subscriber type="security_lake"> (line 8) ignored'
    ]


def test_other_sections_and_comments_are_ignored() -> None:
    """Other wodles, sections, comments and processing instructions do not count."""
    config = parse(
        """
        <!-- top comment -->
        <ossec_config>
          <wodle name="aws-s3-not"><whatever/></wodle>
          <wodle><nothing/></wodle>
          <localfile><location>/var/log/x</location></localfile>
        </ossec_config>
        <ossec_config/>
        """
    )
    assert config.wodles == ()


def test_bom_and_xml_declaration() -> None:
    """A UTF-8 BOM and an XML declaration are accepted and lines stay true."""
    text = '<?xml version="1.0"\n encoding="UTF-8"?>\n' + wodle_conf("<bad>1</bad>")
    with pytest.raises(ConfigError) as caught:
        parse_config(b"\xef\xbb\xbf" + text.encode(), PATH, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{PATH}:5: unknown option <bad> in aws-s3 wodle"
    ]
    config = parse_config(b"\xef\xbb\xbf" + wodle_conf("").encode(), PATH, REGIONS)
    assert config.wodles[0].line == 2


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    """load_config reads a real file and reports its path."""
    target = tmp_path / "ossec.conf"
    target.write_text(FULL)
    config = load_config(target, REGIONS)
    assert config.path == str(target)
    assert len(config.wodles) == 3


def test_load_config_missing_file(tmp_path: Path) -> None:
    """A missing file is a problem on line 0 saying why."""
    target = tmp_path / "absent.conf"
    with pytest.raises(ConfigError) as caught:
        load_config(target, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{target}:0: cannot read the file: No such file or directory"
    ]


def test_load_config_directory(tmp_path: Path) -> None:
    """A directory given as the file is a problem on line 0."""
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, REGIONS)
    assert str(caught.value.problems[0]).startswith(f"{tmp_path}:0: cannot read the file: ")


def test_huge_file_is_refused(tmp_path: Path) -> None:
    """A file over the size limit is refused without being parsed."""
    target = tmp_path / "ossec.conf"
    target.write_bytes(b"<ossec_config>" + b" " * MAX_FILE_BYTES + b"</ossec_config>")
    with pytest.raises(ConfigError) as caught:
        load_config(target, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{target}:0: file too large: more than 16 MiB"
    ]


def test_malformed_xml_reports_line(tmp_path: Path) -> None:
    """An XML syntax error names lxml's message and the line."""
    target = tmp_path / "ossec.conf"
    target.write_text(
        '<ossec_config>\n  <wodle name="aws-s3">\n    <interval>1m</wodle>\n</ossec_config>\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(target, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{target}:3: XML syntax error: Opening and ending tag mismatch: interval line 3 and wodle"
    ]


def test_unclosed_root_reports_end_of_file() -> None:
    """A root left open is reported at the last line, without the synthetic root's name."""
    (found,) = problems("<ossec_config>\n<global/>\n")
    assert found.startswith(f"{PATH}:3: XML syntax error: ")
    assert "the end of the file" in found
    assert "synthetic" not in found


def test_entities_are_not_expanded() -> None:
    """A DOCTYPE with entities is refused, not expanded."""
    (found,) = problems('<!DOCTYPE x [<!ENTITY e "boom">]>\n<ossec_config>&e;</ossec_config>\n')
    assert found.startswith(f"{PATH}:1: XML syntax error: ")


def test_non_utf8_bytes() -> None:
    """Bytes that are not UTF-8 are an error on their line."""
    data = b"<ossec_config>\n<!-- caf\xe9 -->\n</ossec_config>\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, PATH, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{PATH}:2: not valid UTF-8 (byte 0xe9); save the file as UTF-8"
    ]


def test_element_outside_ossec_config() -> None:
    """A top-level element other than ossec_config is an error with its line."""
    found = problems('<ossec_config/>\n\n<wodle name="aws-s3"/>\n')
    assert found == [f"{PATH}:3: unexpected element <wodle> outside <ossec_config>"]


WODLE_ERRORS = [
    ("<disabled>maybe</disabled>", "invalid disabled 'maybe': expected yes or no"),
    ("<run_on_start>1</run_on_start>", "invalid run_on_start '1': expected yes or no"),
    ("<skip_on_error>true</skip_on_error>", "invalid skip_on_error 'true': expected yes or no"),
    ("<interval>abc</interval>", "invalid interval 'abc': expected a positive number"),
    ("<interval>0</interval>", "invalid interval '0': must be greater than 0"),
    ("<interval>-5m</interval>", "invalid interval '-5m': must be greater than 0"),
    ("<interval>5x</interval>", "invalid interval '5x': unknown suffix 'x'"),
    ("<interval>1M</interval>", "invalid interval '1M': a months interval needs <day>"),
    ("<day>32</day>", "invalid day '32': expected a day of the month from 1 to 31"),
    ("<day>0</day>", "invalid day '0': expected a day of the month from 1 to 31"),
    ("<wday>funday</wday>", "invalid wday 'funday': expected a weekday"),
    ("<time>24:00</time>", "invalid time '24:00': expected hh:mm from 00:00 to 23:59"),
    ("<time>12:60</time>", "invalid time '12:60': expected hh:mm from 00:00 to 23:59"),
    ("<time>noon</time>", "invalid time 'noon': expected hh:mm from 00:00 to 23:59"),
    ("<frequency>1</frequency>", "unknown option <frequency> in aws-s3 wodle"),
    ("<service><aws_log_groups>g</aws_log_groups></service>", "<service> needs a type attribute"),
]


@pytest.mark.parametrize(("line", "message"), WODLE_ERRORS)
def test_wodle_option_errors(line: str, message: str) -> None:
    """Each bad wodle option is one error on its own line (line 3)."""
    found = problems(wodle_conf(line))
    assert len(found) == 1
    assert found[0].startswith(f"{PATH}:3: {message}")


SCHEDULE_ERRORS = [
    (("<day>1</day>", "<interval>1d</interval>"), 4, "invalid interval '1d': with <day>"),
    (("<wday>mon</wday>", "<interval>10d</interval>"), 4, "invalid interval '10d': with <wday>"),
    (("<wday>mon</wday>", "<interval>1M</interval>"), 4, "invalid interval '1M': with <wday>"),
    (("<time>01:00</time>", "<interval>36h</interval>"), 4, "invalid interval '36h': with <time>"),
    (("<time>01:00</time>", "<interval>1M</interval>"), 4, "invalid interval '1M': with <time>"),
    (("<day>1</day>", "<wday>mon</wday>"), 4, "<day> and <wday> cannot be used together"),
    (("<interval>1m</interval>", "<interval>2m</interval>"), 4, "duplicate option <interval>"),
]


@pytest.mark.parametrize(("lines", "line", "message"), SCHEDULE_ERRORS)
def test_schedule_errors(lines: tuple[str, ...], line: int, message: str) -> None:
    """Day, wday and time constrain the interval as Wazuh does; the error is on its line."""
    found = problems(wodle_conf(*lines))
    assert len(found) == 1
    assert found[0].startswith(f"{PATH}:{line}: {message}")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (("<day>15</day>",), Schedule(None, 1, 15, None, (0, 0), True)),
        (
            ("<day>1</day>", "<time>02:05</time>", "<interval>3M</interval>"),
            Schedule(None, 3, 1, None, (2, 5), True),
        ),
        (("<wday>TUE</wday>",), Schedule(604800, None, None, 1, (0, 0), True)),
        (
            ("<wday>friday</wday>", "<interval>1209600</interval>"),
            Schedule(1209600, None, None, 4, (0, 0), True),
        ),
        (("<time>23:59</time>",), Schedule(86400, None, None, None, (23, 59), True)),
        (
            ("<time>7:00</time>", "<interval>48h</interval>"),
            Schedule(172800, None, None, None, (7, 0), True),
        ),
        (("<interval>90</interval>",), Schedule(90, None, None, None, None, True)),
        (("<interval> 2h </interval>",), Schedule(7200, None, None, None, None, True)),
    ],
)
def test_schedule_values(lines: tuple[str, ...], expected: Schedule) -> None:
    """Valid schedule combinations give the expected Schedule with defaults filled."""
    assert parse(wodle_conf(*lines)).wodles[0].schedule == expected


def test_wodle_without_entries() -> None:
    """A wodle with no service, bucket or subscriber is an error on the wodle's line."""
    found = problems(
        '<ossec_config>\n\n  <wodle name=" aws-s3 ">\n    <interval>1m</interval>\n'
        "  </wodle>\n</ossec_config>\n"
    )
    assert found == [
        f"{PATH}:3: aws-s3 wodle needs at least one <service>, <bucket> or <subscriber>"
    ]


SERVICE_ERRORS = [
    (
        "<regions>us-east-1, xx-nowhere-9</regions>",
        "unknown region 'xx-nowhere-9' for CloudWatch Logs",
    ),
    ("<regions>us-east-1,,eu-west-1</regions>", "regions has an empty entry"),
    (
        "<only_logs_after>2024-FOO-01</only_logs_after>",
        "invalid only_logs_after '2024-FOO-01': "
        "expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date",
    ),
    ("<only_logs_after>2024-FEB-30</only_logs_after>", "invalid only_logs_after '2024-FEB-30'"),
    ("<only_logs_after>yesterday</only_logs_after>", "invalid only_logs_after 'yesterday'"),
    ("<aws_profile> </aws_profile>", "aws_profile is empty"),
    ("<aws_account_alias></aws_account_alias>", "aws_account_alias is empty"),
    ("<access_key>AKIA</access_key>", "access_key needs secret_key"),
    ("<iam_role_arn>role/reader</iam_role_arn>", "invalid iam_role_arn 'role/reader'"),
    (
        "<sts_endpoint>not a host</sts_endpoint>",
        "invalid sts_endpoint 'not a host': expected a host name or an http:// or https:// URL",
    ),
    ("<service_endpoint>ftp://x</service_endpoint>", "invalid service_endpoint 'ftp://x'"),
    (
        "<aws_account_id>12345</aws_account_id>",
        "invalid aws_account_id '12345': expected 12 digits",
    ),
    (
        "<remove_log_streams>si</remove_log_streams>",
        "invalid remove_log_streams 'si': expected yes or no",
    ),
    (
        "<remove_log_streams></remove_log_streams>",
        "invalid remove_log_streams '': expected yes or no",
    ),
    (
        "<discard_regex>(unclosed</discard_regex>",
        "invalid discard_regex '(unclosed': missing ), unterminated subpattern",
    ),
    ("<discard_regex></discard_regex>", "discard_regex is empty"),
    ('<discard_regex field=" ">x</discard_regex>', "discard_regex field attribute is empty"),
    ('<discard_regex field="a..b">x</discard_regex>', "invalid discard_regex field 'a..b'"),
    ("<log_group>g</log_group>", "unknown option <log_group> in cloudwatchlogs service"),
    ("<aws_profile><name>x</name></aws_profile>", "<aws_profile> must hold a value"),
]


@pytest.mark.parametrize(("line", "message"), SERVICE_ERRORS)
def test_service_option_errors(line: str, message: str) -> None:
    """Each bad service option is one error on its own line (line 5)."""
    found = problems(service_conf("<aws_log_groups>g</aws_log_groups>", line))
    assert len(found) == 1
    assert found[0].startswith(f"{PATH}:5: {message}")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("<aws_log_groups></aws_log_groups>", "aws_log_groups is empty"),
        ("<aws_log_groups>a, ,b</aws_log_groups>", "aws_log_groups has an empty entry: 'a, ,b'"),
        ("<aws_log_groups>a,</aws_log_groups>", "aws_log_groups has an empty entry: 'a,'"),
    ],
)
def test_log_group_errors(line: str, message: str) -> None:
    """Empty log group lists and empty entries are errors on their line."""
    assert problems(service_conf(line)) == [f"{PATH}:4: {message}"]


def test_log_groups_required() -> None:
    """A service without aws_log_groups is an error on the service's line."""
    found = problems(service_conf("<regions>us-east-1</regions>"))
    assert found == [f"{PATH}:3: cloudwatchlogs service needs <aws_log_groups>"]


def test_role_duration_needs_role() -> None:
    """iam_role_duration without iam_role_arn, or out of range, is an error."""
    assert problems(
        service_conf(
            "<aws_log_groups>g</aws_log_groups>", "<iam_role_duration>900</iam_role_duration>"
        )
    ) == [f"{PATH}:5: iam_role_duration needs iam_role_arn"]
    found = problems(
        service_conf(
            "<aws_log_groups>g</aws_log_groups>",
            "<iam_role_arn>arn:aws-us-gov:iam::123456789012:role/r</iam_role_arn>",
            "<iam_role_duration>4000</iam_role_duration>",
        )
    )
    assert found == [f"{PATH}:6: invalid iam_role_duration '4000': expected seconds, 900 to 3600"]


def test_duplicate_service_option() -> None:
    """A repeated service option is an error naming where it was first set."""
    found = problems(
        service_conf("<aws_log_groups>g</aws_log_groups>", "<aws_log_groups>h</aws_log_groups>")
    )
    assert found == [f"{PATH}:5: duplicate option <aws_log_groups> (first set on line 4)"]


def test_all_errors_are_collected_in_line_order() -> None:
    """Every error of the file is reported at once, sorted by line."""
    found = problems(
        """
        <ossec_config>
          <wodle name="aws-s3">
            <disabled>perhaps</disabled>
            <service type="cloudwatchlogs">
              <aws_log_groups>g</aws_log_groups>
              <regions>mars-1</regions>
            </service>
            <interval>0</interval>
          </wodle>
          <wodle name="aws-s3">
            <service/>
            <service type="cloudwatchlogs">
              <only_logs_after>someday</only_logs_after>
            </service>
          </wodle>
        </ossec_config>
        <other/>
        """
    )
    assert [problem.split(": ", 1)[0] for problem in found] == [
        f"{PATH}:3",
        f"{PATH}:6",
        f"{PATH}:8",
        f"{PATH}:11",
        f"{PATH}:12",
        f"{PATH}:13",
        f"{PATH}:17",
    ]


def test_duplicate_entries_warn() -> None:
    """A log group listed twice is kept once, with a warning."""
    config = parse(service_conf("<aws_log_groups>a, b, a</aws_log_groups>"))
    assert config.wodles[0].services[0].log_groups == ("a", "b")
    assert [str(w) for w in config.warnings] == [
        f"{PATH}:4: aws_log_groups lists 'a' more than once"
    ]


def test_case_insensitive_yes_no_and_wday() -> None:
    """yes/no and weekday names are read in any case."""
    config = parse(wodle_conf("<disabled>YES</disabled>", "<wday>Wed</wday>"))
    assert config.wodles[0].disabled is True
    assert config.wodles[0].schedule.wday == 2


def test_parse_interval_units() -> None:
    """Every suffix multiplies as documented; M counts months."""
    assert parse_interval("30") == (30, None)
    assert parse_interval("30s") == (30, None)
    assert parse_interval("5m") == (300, None)
    assert parse_interval("2h") == (7200, None)
    assert parse_interval("1d") == (86400, None)
    assert parse_interval("1w") == (604800, None)
    assert parse_interval("6M") == (None, 6)
    for bad in ("", "m", "1.5h", "1 h", "١٢", "1_000", "99999999999d"):
        with pytest.raises(ValueError, match=re.escape(f"invalid interval '{bad}'")):
            parse_interval(bad)


def test_parse_date_formats() -> None:
    """Short Wazuh dates and ISO dates are read as aware UTC datetimes."""
    utc = timezone.utc
    assert parse_date("2024-JAN-31") == datetime(2024, 1, 31, tzinfo=utc)
    assert parse_date("2024-dec-01") == datetime(2024, 12, 1, tzinfo=utc)
    assert parse_date("2024-02-29") == datetime(2024, 2, 29, tzinfo=utc)
    assert parse_date("2024-02-29T10:30:00") == datetime(2024, 2, 29, 10, 30, tzinfo=utc)
    assert parse_date("2024-02-29T10:30:00+02:00") == datetime(2024, 2, 29, 8, 30, tzinfo=utc)
    with pytest.raises(ValueError, match="expected YYYY-MMM-DD"):
        parse_date("31/01/2024")


def test_discard_rule_whole_message() -> None:
    """Without a field, the regex matches from the start of the message only."""
    rule = DiscardRule(re.compile("None"), None)
    assert rule.discards("None of this")
    assert not rule.discards("this is None")


def test_discard_rule_json_field() -> None:
    """With a field, the dotted path of a JSON object is matched; other messages are kept."""
    rule = DiscardRule(re.compile("REJ"), "data.action")
    assert rule.discards('{"data": {"action": "REJECT"}}')
    assert not rule.discards('{"data": {"action": "ACCEPT"}}')
    assert not rule.discards('{"data": {"other": "REJECT"}}')
    assert not rule.discards('{"data": "REJECT"}')
    assert not rule.discards('["REJECT"]')
    assert not rule.discards("REJECT plain text")
    numbers = DiscardRule(re.compile("40"), "status")
    assert numbers.discards('{"status": 404}')
    nested = DiscardRule(re.compile(r"\{"), "a")
    assert nested.discards('{"a": {"b": 1}}')


def test_bare_endpoint_host_names_mean_https() -> None:
    """A VPC endpoint given as a bare host name, as our users' documentation shows, is https."""
    config = parse(
        service_conf(
            "<aws_log_groups>g</aws_log_groups>",
            "<sts_endpoint>vpce-1.sts.us-east-1.vpce.amazonaws.com</sts_endpoint>",
            "<service_endpoint>vpce-2.logs.us-east-1.vpce.amazonaws.com</service_endpoint>",
        )
    )
    (service,) = config.wodles[0].services
    assert service.sts_endpoint == "https://vpce-1.sts.us-east-1.vpce.amazonaws.com"
    assert service.service_endpoint == "https://vpce-2.logs.us-east-1.vpce.amazonaws.com"
