"""Tests for reading the aws-s3 wodle blocks of ossec.conf."""

from __future__ import annotations

import codecs
import re
import subprocess
import sys
import textwrap
from datetime import datetime, time, timezone
from pathlib import Path

import pytest

from aws_wodle.aws.cloudwatch import known_regions
from aws_wodle.config import (
    DEFAULT_INTERVAL_SECONDS,
    MAX_FILE_BYTES,
    Config,
    DiscardRule,
    load_config,
    parse_config,
    parse_date,
    parse_interval,
    profile_warnings,
    summary,
)
from aws_wodle.errors import ConfigError
from aws_wodle.schedule import Daily, Interval, Monthly, Schedule, Weekly

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


def broken(text: str) -> list[str]:
    """Parse a config the manager accepts; return its broken services' problems as text."""
    return [str(problem) for service in parse(text).broken for problem in service.problems]


def warnings_of(text: str) -> list[str]:
    """Parse a valid config; return its warnings as text."""
    return [str(warning) for warning in parse(text).warnings]


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
<!-- a second root, as the manager allows; only the aws-cloudtrail name adds a wodle -->
<ossec_config>
  <wodle name="aws-cloudtrail">
    <disabled>yes</disabled>
    <day>31</day>
    <interval>2M</interval>
    <service type="cloudwatchlogs">
      <aws_log_groups>monthly</aws_log_groups>
      <access_key>AKIAIOSFODNN7EXAMPLE</access_key>
      <secret_key>SECRET</secret_key>
    </service>
  </wodle>
  <wodle name="aws-cloudtrail">
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
    assert first.schedule == Interval(seconds=600, run_on_start=False)
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
    assert monthly.schedule == Monthly(day=31, every=2, run_on_start=True)
    assert monthly.services[0].access_key == "AKIAIOSFODNN7EXAMPLE"
    assert monthly.services[0].secret_key == SECRET
    assert weekly.schedule == Weekly(weekday=6, at=time(3, 30), every=2, run_on_start=True)
    assert weekly.services[0].regions == ()


def test_defaults() -> None:
    """Options left out take their documented defaults."""
    config = parse(wodle_conf("<!-- nothing -->"))
    (wodle,) = config.wodles
    assert wodle.disabled is False
    assert wodle.skip_on_error is False
    assert wodle.schedule == Interval(seconds=DEFAULT_INTERVAL_SECONDS, run_on_start=True)
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
        f"{PATH}:32: wodle name aws-cloudtrail is deprecated: rename it aws-s3",
        f"{PATH}:38: access_key/secret_key are deprecated; use aws_profile or iam_role_arn",
        f"{PATH}:42: wodle name aws-cloudtrail is deprecated: rename it aws-s3",
        f"{PATH}:48: regions is empty and ignored: "
        "every region of the credentials' partition is searched",
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
    found = broken(
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
    assert "skip_on_error: yes (default no; changes nothing here" in text


def test_summary_does_not_repeat_the_warnings() -> None:
    """Warnings are printed once by check-config, not again in the summary."""
    config = parse(FULL)
    assert config.warnings
    text = summary(config)
    assert all(warning.message not in text for warning in config.warnings)
    assert "warning" not in text


def test_summary_default_chain_and_plain_schedules() -> None:
    """A service without credentials uses the default chain; daily schedules read as such."""
    text = summary(parse(wodle_conf("<time>03:00</time>")))
    assert "daily at 03:00, also at start" in text
    assert "credentials: default chain" in text
    text = summary(parse(wodle_conf("<interval>1h</interval>")))
    assert "every 1h, first run at start" in text


def test_bucket_wodle_warns_and_cloudwatch_wodle_runs() -> None:
    """A wodle of buckets only is valid with one warning; the cloudwatchlogs wodle after it
    replaces it, as the manager replaces it."""
    config = parse(
        """
        <ossec_config>
          <wodle name="aws-s3">
            <bucket type="cloudtrail">
              <name>trail</name>
              <path>AWSLogs</path>
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
    (cloudwatch,) = config.wodles
    assert cloudwatch.services[0].log_groups == ("g",)
    assert [str(warning) for warning in config.warnings] == [
        f"{PATH}:3: this collector handles only CloudWatch Logs "
        '(<service type="cloudwatchlogs">); <bucket type="cloudtrail"> (line 3), '
        '<service type="inspector"> (line 7), <subscriber type="security_lake"> (line 8) ignored',
        f"{PATH}:10: this aws-s3 wodle replaces the one on line 2, as the manager replaces it: "
        'only the last <wodle name="aws-s3"> of the file runs',
    ]


def test_other_sections_and_comments_are_ignored() -> None:
    """Other wodles, sections, comments and processing instructions do not count."""
    config = parse(
        """
        <!-- top comment -->
        <ossec_config>
          <wodle name="aws-s3-not"><whatever/></wodle>
          <localfile><location>/var/log/x</location></localfile>
        </ossec_config>
        text between roots is skipped, as the manager skips it
        <ossec_config/>
        """
    )
    assert config.wodles == ()


def test_bom_is_skipped_and_lines_stay_true() -> None:
    """A UTF-8 BOM is skipped, as the manager skips it, and lines stay true."""
    text = "\n" + wodle_conf("<bad>1</bad>")
    with pytest.raises(ConfigError) as caught:
        parse_config(b"\xef\xbb\xbf" + text.encode(), PATH, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{PATH}:4: unknown option <bad> in aws-s3 wodle"
    ]
    config = parse_config(b"\xef\xbb\xbf" + wodle_conf("").encode(), PATH, REGIONS)
    assert config.wodles[0].line == 2


def test_xml_declaration_is_refused_as_the_manager_refuses_it() -> None:
    """<?xml version="1.0"?> reads to the manager as an element with a badly closed attribute."""
    (found,) = problems('<?xml version="1.0"?>\n' + wodle_conf(""))
    assert found.startswith(f"{PATH}:1: XML syntax error: unexpected '?' after version=")


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    """load_config reads a real file and reports its path."""
    target = tmp_path / "ossec.conf"
    target.write_text(FULL)
    config = load_config(target, REGIONS)
    assert config.path == str(target)
    assert len(config.wodles) == 3


def test_load_config_missing_file(tmp_path: Path) -> None:
    """A missing file is a problem of the file, without a line number, saying why."""
    target = tmp_path / "absent.conf"
    with pytest.raises(ConfigError) as caught:
        load_config(target, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{target}: cannot read the file: No such file or directory"
    ]


def test_load_config_directory(tmp_path: Path) -> None:
    """A directory given as the file names the reason, without a line number."""
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, REGIONS)
    assert str(caught.value.problems[0]) == f"{tmp_path}: cannot read the file: Is a directory"


def test_huge_file_is_refused(tmp_path: Path) -> None:
    """A file over the size limit is refused without being parsed."""
    target = tmp_path / "ossec.conf"
    target.write_bytes(b"<ossec_config>" + b" " * MAX_FILE_BYTES + b"</ossec_config>")
    with pytest.raises(ConfigError) as caught:
        load_config(target, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{target}: file too large: more than 16 MiB"
    ]


def test_malformed_xml_reports_line(tmp_path: Path) -> None:
    """An XML syntax error says what is wrong, and where."""
    target = tmp_path / "ossec.conf"
    target.write_text(
        '<ossec_config>\n  <wodle name="aws-s3">\n    <interval>1m</wodle>\n</ossec_config>\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(target, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{target}:3: XML syntax error: "
        "mismatched closing tag </wodle> for <interval> opened on line 3"
    ]


def test_unclosed_root_reports_end_of_file() -> None:
    """A root left open is reported at the last line, without the synthetic root's name."""
    (found,) = problems("<ossec_config>\n<global/>\n")
    assert found.startswith(f"{PATH}:3: XML syntax error: ")
    assert "the end of the file" in found
    assert "synthetic" not in found


def test_a_doctype_is_a_comment_never_closed() -> None:
    """<!DOCTYPE ...> opens a comment for the manager: with no --> after it, it is refused."""
    (found,) = problems('<!DOCTYPE x [<!ENTITY e "boom">]>\n<ossec_config>&e;</ossec_config>\n')
    assert found == f"{PATH}:3: XML syntax error: comment opened on line 1 is not closed"


def test_literal_ampersand_elsewhere_is_accepted() -> None:
    """A literal & in an unrelated section, which XML forbids, is accepted as the manager does."""
    config = parse(
        """
        <ossec_config>
          <localfile>
            <log_format>full_command</log_format>
            <command>test -f /etc/x && cat /etc/x</command>
          </localfile>
          <wodle name="aws-s3">
            <service type="cloudwatchlogs"><aws_log_groups>g</aws_log_groups></service>
          </wodle>
        </ossec_config>
        """
    )
    assert config.wodles[0].services[0].log_groups == ("g",)


def test_values_reach_us_as_the_manager_passes_them() -> None:
    """Entities are not decoded (&amp; is five characters), and \\< keeps its backslash."""
    (service,) = (
        parse(
            service_conf(
                "<aws_log_groups>g</aws_log_groups>",
                '<discard_regex field="x">a&amp;b|\\<tag></discard_regex>',
            )
        )
        .wodles[0]
        .services
    )
    assert service.discard is not None
    assert service.discard.pattern.pattern == "a&amp;b|\\<tag>"
    assert service.discard.discards('{"x": "a&amp;b"}')
    assert service.discard.discards('{"x": "<tag>"}')
    assert not service.discard.discards('{"x": "a&b"}')


def test_non_utf8_bytes_outside_our_values_are_accepted() -> None:
    """Bytes that are not UTF-8 in a comment or another section pass, as the manager reads bytes."""
    data = (
        b"<ossec_config>\n<!-- caf\xe9 -->\n<global><email_from>caf\xe9</email_from></global>\n"
        b"</ossec_config>\n" + wodle_conf("").encode()
    )
    config = parse_config(data, PATH, REGIONS)
    assert len(config.wodles) == 1


def test_non_utf8_bytes_in_a_value_break_that_service() -> None:
    """A value that is not UTF-8 makes its service uncollectable, on its line."""
    data = service_conf("<aws_log_groups>caf\udce9</aws_log_groups>").encode(
        "utf-8", "surrogateescape"
    )
    config = parse_config(data, PATH, REGIONS)
    assert [str(p) for b in config.broken for p in b.problems] == [
        f"{PATH}:4: aws_log_groups is not valid UTF-8; save the file as UTF-8"
    ]


def test_a_utf16_file_is_refused_with_its_encoding() -> None:
    """A UTF-16 file (which the manager reads as garbage) is refused, saying so."""
    data = codecs.BOM_UTF16_LE + wodle_conf("").encode("utf-16-le")
    with pytest.raises(ConfigError) as caught:
        parse_config(data, PATH, REGIONS)
    assert [str(p) for p in caught.value.problems] == [
        f"{PATH}:1: the file is UTF-16; the manager reads only UTF-8: save it as UTF-8"
    ]


def test_element_outside_ossec_config() -> None:
    """A top-level element other than ossec_config is an error with its line."""
    found = problems('<ossec_config/>\n\n<wodle name="aws-s3"/>\n')
    assert found == [f"{PATH}:3: unexpected element <wodle> outside <ossec_config>"]


WODLE_ERRORS = [
    ("<disabled>maybe</disabled>", "invalid disabled 'maybe': expected yes or no"),
    ("<disabled>YES</disabled>", "invalid disabled 'YES': expected yes or no in lower case"),
    ("<disabled> no </disabled>", "invalid disabled ' no ': expected yes or no in lower case"),
    ("<run_on_start>1</run_on_start>", "invalid run_on_start '1': expected yes or no"),
    ("<skip_on_error>true</skip_on_error>", "invalid skip_on_error 'true': expected yes or no"),
    ("<interval>abc</interval>", "invalid interval 'abc': expected a positive number"),
    ("<interval>0</interval>", "invalid interval '0': must be greater than 0"),
    ("<interval>-1</interval>", "invalid interval '-1': it is 4294967295 in 32 bits"),
    ("<interval>08</interval>", "invalid interval '08': must be greater than 0"),
    ("<interval>5x</interval>", "invalid interval '5x': unknown suffix 'x'"),
    ("<interval>5 m</interval>", "invalid interval '5 m': unknown suffix ' '"),
    ("<day>32</day>", "invalid day '32': expected a day of the month from 1 to 31"),
    ("<day>0</day>", "invalid day '0': expected a day of the month from 1 to 31"),
    ("<day> 5</day>", "invalid day ' 5': expected a day of the month from 1 to 31"),
    ("<wday>funday</wday>", "invalid wday 'funday': expected a weekday"),
    ("<time>24:00</time>", "invalid time '24:00': expected hh:mm from 00:00 to 23:59"),
    ("<time>12:60</time>", "invalid time '12:60': expected hh:mm from 00:00 to 23:59"),
    ("<time>noon</time>", "invalid time 'noon': expected hh:mm from 00:00 to 23:59"),
    ("<frequency>1</frequency>", "unknown option <frequency> in aws-s3 wodle"),
    ("<remove_from_bucket>y</remove_from_bucket>", "invalid remove_from_bucket 'y'"),
    ("<service><aws_log_groups>g</aws_log_groups></service>", "<service> needs a type attribute"),
    (
        '<service type="fakeservice"><aws_log_groups>g</aws_log_groups></service>',
        "unknown service type 'fakeservice': the manager knows cloudwatchlogs, inspector",
    ),
    ('<service type="CloudWatchLogs"/>', "unknown service type 'CloudWatchLogs'"),
    ('<service type=" cloudwatchlogs"/>', "unknown service type ' cloudwatchlogs'"),
    (
        '<service kind="x" type="cloudwatchlogs"/>',
        "the first attribute of <service> must be type, not 'kind'",
    ),
    ('<service type="inspector"><colour>x</colour></service>', "unknown option <colour>"),
    (
        '<service type="inspector"><discard_regex>x</discard_regex></service>',
        "discard_regex of an inspector service needs a field attribute",
    ),
    ('<bucket type="cloudtrail"><colour>x</colour></bucket>', "unknown option <colour> in bucket"),
    ('<bucket type="s3"><name>b</name></bucket>', "unknown bucket type 's3'"),
    ('<bucket type="waf"><name></name></bucket>', "name of a bucket is empty"),
    ("<bucket></bucket>", "<bucket> without a type attribute needs a bucket name"),
    ('<subscriber type="sqs"><sqs_name>q</sqs_name></subscriber>', "unknown subscriber type"),
    (
        '<subscriber type="security_lake"><discard_regex field="a">x</discard_regex></subscriber>',
        "discard_regex is not available for security_lake",
    ),
]


@pytest.mark.parametrize(("line", "message"), WODLE_ERRORS)
def test_wodle_option_errors(line: str, message: str) -> None:
    """Each wodle option the manager refuses is one error on its own line (line 3)."""
    found = problems(wodle_conf(line))
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:3: {message}")


def test_the_manager_refuses_a_wodle_without_a_name() -> None:
    """A <wodle> without a name attribute, or with another attribute first, is an error."""
    assert problems("<ossec_config>\n  <wodle><x/></wodle>\n</ossec_config>\n") == [
        f'{PATH}:2: <wodle> needs a name attribute (e.g. name="aws-s3")'
    ]
    assert problems('<ossec_config><wodle id="1" name="aws-s3"/></ossec_config>') == [
        f"{PATH}:1: the first attribute of <wodle> must be name, not 'id'"
    ]


def test_wodle_names_as_the_manager_reads_them() -> None:
    """aws-cloudtrail is read as aws-s3 with a warning; a name with spaces is another module."""
    config = parse(wodle_conf("").replace('"aws-s3"', '"aws-cloudtrail"'))
    assert len(config.wodles) == 1
    assert [str(w) for w in config.warnings] == [
        f"{PATH}:2: wodle name aws-cloudtrail is deprecated: rename it aws-s3"
    ]
    config = parse(wodle_conf("").replace('"aws-s3"', '" aws-s3 "'))
    assert config.wodles == ()
    assert [str(w) for w in config.warnings] == [
        f"{PATH}:2: <wodle name=' aws-s3 '> is ignored, as the manager ignores it: "
        "spaces count in the name"
    ]


def test_bucket_without_options_is_not_checked_but_a_subscriber_type_is() -> None:
    """As the manager does, an empty bucket is not checked further; a subscriber's type is."""
    config = parse(wodle_conf('<bucket type="anything"/>', '<subscriber type="buckets"/>'))
    assert len(config.wodles[0].services) == 1


SCHEDULE_WARNINGS = [
    (
        ("<day>1</day>", "<interval>1d</interval>"),
        Monthly(day=1),
        "interval '1d' ignored: with <day> the interval counts months (e.g. 1M)",
    ),
    (
        ("<wday>mon</wday>", "<interval>10d</interval>"),
        Weekly(weekday=0),
        "interval '10d' ignored: with <wday> the interval counts whole weeks (e.g. 1w)",
    ),
    (
        ("<wday>mon</wday>", "<interval>1M</interval>"),
        Weekly(weekday=0),
        "interval '1M' ignored: with <wday> the interval counts whole weeks",
    ),
    (
        ("<time>01:00</time>", "<interval>36h</interval>"),
        Daily(at=time(1, 0)),
        "interval '36h' ignored: with <time> the interval counts whole days (e.g. 1d)",
    ),
    (
        ("<time>01:00</time>", "<interval>1M</interval>"),
        Daily(at=time(1, 0)),
        "interval '1M' ignored: with <time> the interval counts whole days",
    ),
    (
        ("<interval>1m</interval>", "<interval>2m</interval>"),
        Interval(seconds=120),
        "<interval> is set again (first on line 3); the last one is used, as the manager does",
    ),
    (
        ("<interval>3M</interval>", "<!-- -->"),
        Monthly(day=1, every=3),
        "interval '3M' without <day>: runs on day 1 of the month at 00:00",
    ),
    (
        ("<interval>10min</interval>", "<!-- -->"),
        Interval(seconds=600),
        "interval '10min': 'in' after the unit is ignored, as the manager ignores it",
    ),
]


@pytest.mark.parametrize(("lines", "expected", "message"), SCHEDULE_WARNINGS)
def test_schedules_the_manager_adjusts(
    lines: tuple[str, ...], expected: Schedule, message: str
) -> None:
    """Where the manager replaces an interval that does not fit, so do we, with a warning."""
    config = parse(wodle_conf(*lines))
    assert config.wodles[0].schedule == expected
    found = [str(w) for w in config.warnings]
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:")
    assert message in found[0]


def test_day_and_wday_together_are_refused() -> None:
    """<day> and <wday> together is an error on the later one, as the manager refuses it."""
    assert problems(wodle_conf("<day>1</day>", "<wday>mon</wday>")) == [
        f"{PATH}:4: <day> and <wday> cannot be used together"
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (("<day>15</day>",), Monthly(day=15)),
        (
            ("<day>1</day>", "<time>02:05</time>", "<interval>3M</interval>"),
            Monthly(day=1, at=time(2, 5), every=3),
        ),
        (("<wday>TUE</wday>",), Weekly(weekday=1)),
        (("<wday>Sundays</wday>",), Weekly(weekday=6)),
        (
            ("<wday>friday</wday>", "<interval>1209600</interval>"),
            Weekly(weekday=4, every=2),
        ),
        (("<time>23:59</time>",), Daily(at=time(23, 59))),
        (("<time>7:00</time>", "<interval>48h</interval>"), Daily(at=time(7, 0), every=2)),
        (("<interval>90</interval>",), Interval(seconds=90)),
        (("<interval> 2h </interval>",), Interval(seconds=7200)),
        (("<interval>+2h</interval>",), Interval(seconds=7200)),
    ],
)
def test_schedule_values(lines: tuple[str, ...], expected: Schedule) -> None:
    """Valid schedule combinations give the expected schedule kind, defaults filled."""
    config = parse(wodle_conf(*lines))
    assert config.wodles[0].schedule == expected
    assert config.warnings == ()


def test_wodle_without_entries() -> None:
    """A wodle with no service, bucket or subscriber is an error on the wodle's line."""
    found = problems(
        '<ossec_config>\n\n  <wodle name="aws-s3">\n    <interval>1m</interval>\n'
        "  </wodle>\n</ossec_config>\n"
    )
    assert found == [
        f"{PATH}:3: aws-s3 wodle needs at least one <service>, <bucket> or <subscriber>"
    ]


SERVICE_ERRORS = [
    (
        "<remove_log_streams>si</remove_log_streams>",
        "invalid remove_log_streams 'si': expected yes or no",
    ),
    (
        "<remove_log_streams></remove_log_streams>",
        "invalid remove_log_streams '': expected yes or no",
    ),
    (
        "<remove_log_streams>Yes</remove_log_streams>",
        "invalid remove_log_streams 'Yes': expected yes or no in lower case",
    ),
    ("<aws_account_id></aws_account_id>", "aws_account_id is empty"),
    ("<log_group>g</log_group>", "unknown option <log_group> in cloudwatchlogs service"),
]


@pytest.mark.parametrize(("line", "message"), SERVICE_ERRORS)
def test_service_option_errors(line: str, message: str) -> None:
    """Each service option the manager refuses is an error on its own line (line 5)."""
    found = problems(service_conf("<aws_log_groups>g</aws_log_groups>", line))
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:5: {message}")


BROKEN_SERVICES = [
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
    ("<aws_account_id> </aws_account_id>", "aws_account_id is empty"),
    (
        "<discard_regex>(unclosed</discard_regex>",
        "invalid discard_regex '(unclosed': missing ), unterminated subpattern",
    ),
    ('<discard_regex field="a..b">x</discard_regex>', "invalid discard_regex field 'a..b'"),
    ("<aws_profile><name>x</name></aws_profile>", "<aws_profile> must hold a value"),
]


@pytest.mark.parametrize(("line", "message"), BROKEN_SERVICES)
def test_values_only_the_old_script_fails_on_break_that_service(line: str, message: str) -> None:
    """A value the manager passes on but the old script fails on breaks that service only."""
    config = parse(service_conf("<aws_log_groups>g</aws_log_groups>", line))
    assert config.wodles[0].services == ()
    (service,) = config.broken
    assert service.line == 3
    found = [str(problem) for problem in service.problems]
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:5: {message}")


SERVICE_WARNINGS = [
    (
        "<only_logs_after></only_logs_after>",
        "only_logs_after is empty and ignored: the first collection of a log group starts "
        "at 00:00 UTC of that day",
    ),
    (
        "<only_logs_after/>",
        "only_logs_after is empty and ignored: the first collection of a log group starts "
        "at 00:00 UTC of that day",
    ),
    (
        "<regions/>",
        "regions is empty and ignored: every region of the credentials' partition is searched",
    ),
    ("<discard_regex/>", "No value was provided for 'discard_regex'. No event will be skipped."),
    ('<discard_regex field="a"></discard_regex>', "No value was provided for 'discard_regex'."),
    ("<aws_profile> </aws_profile>", "aws_profile is empty and ignored, as the manager ignores it"),
    ("<aws_account_alias/>", "aws_account_alias is empty and ignored"),
    ("<iam_role_duration/>", "iam_role_duration is empty and ignored"),
    (
        '<discard_regex field="">x</discard_regex>',
        "the field attribute of discard_regex is empty and ignored, as the manager ignores it: "
        "the regex is matched against the whole message",
    ),
    ('<discard_regex x="1">y</discard_regex>', ""),
    (
        "<aws_log_groups>h</aws_log_groups>",
        "<aws_log_groups> is set again (first on line 4); the last one is used",
    ),
]


@pytest.mark.parametrize(("line", "message"), SERVICE_WARNINGS)
def test_service_values_the_manager_ignores_are_warnings(line: str, message: str) -> None:
    """What the manager ignores with (or without) a warning is a warning; the service runs."""
    config = parse(service_conf("<aws_log_groups>g</aws_log_groups>", line))
    assert len(config.wodles[0].services) == 1
    assert config.broken == ()
    found = [str(w) for w in config.warnings]
    if not message:
        assert found == []
        return
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:5: {message}")


def test_an_empty_only_logs_after_is_ignored() -> None:
    """An empty <only_logs_after/> leaves the default start, as the manager ignores it."""
    config = parse(service_conf("<aws_log_groups>g</aws_log_groups>", "<only_logs_after/>"))
    assert config.wodles[0].services[0].only_logs_after is None


def test_the_last_of_repeated_options_is_used() -> None:
    """A repeated service option takes its last value, as the manager does."""
    config = parse(
        service_conf("<aws_log_groups>g</aws_log_groups>", "<aws_log_groups>h</aws_log_groups>")
    )
    assert config.wodles[0].services[0].log_groups == ("h",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("<aws_log_groups></aws_log_groups>", "aws_log_groups is empty"),
        ("<aws_log_groups/>", "aws_log_groups is empty"),
    ],
)
def test_empty_log_groups_are_refused(line: str, message: str) -> None:
    """An empty aws_log_groups is refused by the manager, so it is an error here."""
    assert problems(service_conf(line)) == [f"{PATH}:4: {message}"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("<aws_log_groups>a, ,b</aws_log_groups>", "aws_log_groups has an empty entry: 'a, ,b'"),
        ("<aws_log_groups>a,</aws_log_groups>", "aws_log_groups has an empty entry: 'a,'"),
        ("<aws_log_groups> </aws_log_groups>", "aws_log_groups is empty"),
    ],
)
def test_log_group_entries_that_break_the_service(line: str, message: str) -> None:
    """Empty entries (or a blank list, which the manager passes on) break that service."""
    assert broken(service_conf(line)) == [f"{PATH}:4: {message}"]


def test_prefixes_and_arns_of_other_accounts_are_accepted() -> None:
    """Entries may end in * (a prefix) or be log group ARNs, with or without the trailing
    :*: the manager passes them on as text, and the summary says what each selects."""
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/web"
    config = parse(service_conf(f"<aws_log_groups>app, /aws/lambda/*, {arn}:*</aws_log_groups>"))
    [service] = config.wodles[0].services
    assert service.log_groups == ("app", "/aws/lambda/*", f"{arn}:*")
    text = summary(config)
    assert "    log groups: app\n" in text
    assert "log groups starting with /aws/lambda/: /aws/lambda/* (listed in each region)" in text
    assert "log group /ecs/web of account 111122223333, region eu-west-1 (cross-account" in text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("a*b", "invalid log group 'a*b': a * may only end an entry"),
        ("arn:aws:logs:eu-west-1:12:log-group:x", "invalid log group ARN"),
        ("arn:aws:logs:mars-1:111122223333:log-group:x", "unknown region 'mars-1' for CloudWatch"),
    ],
)
def test_entries_that_name_no_group_break_the_service(entry: str, message: str) -> None:
    """A misplaced *, an ARN that is not a log group's, or one of an unknown region: the
    manager accepts the text, the service is not collected, with the line."""
    [problem] = broken(service_conf(f"<aws_log_groups>{entry}</aws_log_groups>"))
    assert problem.startswith(f"{PATH}:4: {message}"), problem


def test_remove_log_streams_does_not_apply_to_groups_named_by_arn() -> None:
    """DeleteLogStream takes no ARN: a warning says another account's streams are kept."""
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:x"
    found = warnings_of(
        service_conf(
            f"<aws_log_groups>{arn}</aws_log_groups>",
            "<remove_log_streams>yes</remove_log_streams>",
        )
    )
    assert found == [
        f"{PATH}:4: remove_log_streams does not apply to '{arn}': DeleteLogStream takes no ARN, "
        "so the streams of a group named by ARN are kept"
    ]


def test_log_groups_required() -> None:
    """A service without aws_log_groups (the manager starts) breaks, on the service's line."""
    assert broken(service_conf("<regions>us-east-1</regions>")) == [
        f"{PATH}:3: cloudwatchlogs service needs <aws_log_groups>"
    ]


def test_role_duration_needs_role() -> None:
    """iam_role_duration without iam_role_arn, or out of range, breaks that service."""
    assert broken(
        service_conf(
            "<aws_log_groups>g</aws_log_groups>", "<iam_role_duration>900</iam_role_duration>"
        )
    ) == [f"{PATH}:5: iam_role_duration needs iam_role_arn"]
    found = broken(
        service_conf(
            "<aws_log_groups>g</aws_log_groups>",
            "<iam_role_arn>arn:aws-us-gov:iam::123456789012:role/r</iam_role_arn>",
            "<iam_role_duration>4000</iam_role_duration>",
        )
    )
    assert found == [f"{PATH}:6: invalid iam_role_duration '4000': expected seconds, 900 to 3600"]


def test_one_broken_service_does_not_stop_the_others() -> None:
    """A bad date or region breaks its own service; the valid ones around it are kept."""
    config = parse(
        """
        <ossec_config>
          <wodle name="aws-s3">
            <service type="cloudwatchlogs">
              <aws_log_groups>first</aws_log_groups>
            </service>
            <service type="cloudwatchlogs">
              <aws_log_groups>bad</aws_log_groups>
              <only_logs_after>2024-13-45</only_logs_after>
              <regions>mars-1</regions>
            </service>
          </wodle>
          <wodle name="aws-cloudtrail">
            <service type="cloudwatchlogs"><aws_log_groups>third</aws_log_groups></service>
          </wodle>
        </ossec_config>
        """
    )
    first, second = config.wodles
    assert [s.log_groups for s in first.services] == [("first",)]
    assert [s.log_groups for s in second.services] == [("third",)]
    (bad,) = first.broken
    assert config.broken == (bad,)
    assert bad.line == 6
    assert [str(p) for p in bad.problems] == [
        f"{PATH}:8: invalid only_logs_after '2024-13-45': "
        "expected YYYY-MMM-DD (e.g. 2024-JAN-31) or an ISO date",
        f"{PATH}:9: unknown region 'mars-1' for CloudWatch Logs",
    ]
    assert "cloudwatchlogs service at line 6: not collected (errors on lines 8, 9)" in (
        summary(config)
    )


def test_all_errors_are_collected_in_line_order() -> None:
    """Every error of the file, broken services' included, is reported at once, by line."""
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


def test_weekday_names_in_any_case() -> None:
    """Weekday names are read in any case, as the manager reads them."""
    config = parse(wodle_conf("<disabled>yes</disabled>", "<wday>Wed</wday>"))
    assert config.wodles[0].disabled is True
    assert config.wodles[0].schedule == Weekly(weekday=2)


def test_parse_interval_units() -> None:
    """Every suffix multiplies as documented; M counts months."""
    assert parse_interval("30") == (30, None)
    assert parse_interval("30s") == (30, None)
    assert parse_interval("5m") == (300, None)
    assert parse_interval("2h") == (7200, None)
    assert parse_interval("1d") == (86400, None)
    assert parse_interval("1w") == (604800, None)
    assert parse_interval("6M") == (None, 6)
    assert parse_interval("10min") == (600, None)
    assert parse_interval("99999999999d") == (99999999999 % 2**32 * 86400 % 2**32, None)
    for bad in ("", "m", "1.5h", "1 h", "١٢", "1_000", "-1"):
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
    assert not rule.discards('"REJECT"')
    numbers = DiscardRule(re.compile("40"), "status")
    assert numbers.discards('{"status": 404}')
    nested = DiscardRule(re.compile(r"\{"), "a")
    assert nested.discards('{"a": {"b": 1}}')


def test_discard_rule_with_a_field_matches_text_messages_whole() -> None:
    """With a field, a message that is not JSON is matched as a whole, as the old module does."""
    rule = DiscardRule(re.compile("REJ"), "data.action")
    assert rule.discards("REJECT plain text")
    assert rule.matched_in("REJECT plain text") == "message"
    assert rule.matched_in('{"data": {"action": "REJECT"}}') == "field"
    assert not rule.discards("plain text REJECT")
    assert not rule.discards("{not json, REJECT")


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


def test_profiles_missing_from_the_service_users_files_are_warned_about(tmp_path: Path) -> None:
    """An aws_profile in neither <home>/.aws/credentials nor <home>/.aws/config is named,
    with both paths and the fix; profiles found in either file are not."""
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[from-credentials]\naws_access_key_id = AKIA\n")
    (aws / "config").write_text("[profile from-config]\nregion = us-east-1\n[bare]\n")
    text = "".join(
        f'<service type="cloudwatchlogs"><aws_log_groups>g</aws_log_groups>'
        f"<aws_profile>{name}</aws_profile></service>\n    "
        for name in ("from-credentials", "from-config", "bare", "default")
    )
    config = parse(wodle_conf(text))
    found = [str(w) for w in profile_warnings(config, str(tmp_path))]
    assert [w.split(": ", 1)[1].split(" /", 1)[0] for w in found] == [
        "aws_profile 'bare' is in neither",
        "aws_profile 'default' is in neither",
    ]
    assert found[0] == (
        f"{PATH}:5: aws_profile 'bare' is in neither {aws / 'credentials'} nor {aws / 'config'}, "
        f"the files the service reads (it runs as the manager's user, home {tmp_path}); "
        "copy the profile there (e.g. from /root/.aws/) and make both files readable by that user"
    )


def test_no_aws_files_at_all_warns_for_each_profile(tmp_path: Path) -> None:
    """Without any file under <home>/.aws, every configured profile is warned about; a service
    without aws_profile is not."""
    config = parse(
        wodle_conf(
            '<service type="cloudwatchlogs"><aws_log_groups>h</aws_log_groups></service>',
            '<service type="cloudwatchlogs"><aws_log_groups>i</aws_log_groups>'
            "<aws_profile>prod</aws_profile></service>",
        )
    )
    (found,) = profile_warnings(config, str(tmp_path))
    assert (found.line, found.message.split(",")[0]) == (
        4,
        f"aws_profile 'prod' is in neither {tmp_path}/.aws/credentials nor {tmp_path}/.aws/config",
    )


def test_reading_the_configuration_loads_no_xml_library(tmp_path: Path) -> None:
    """The reader is our own: loading a file imports neither lxml nor Python's xml package."""
    target = tmp_path / "ossec.conf"
    target.write_text(FULL)
    code = (
        "import sys\n"
        "from aws_wodle.config import load_config\n"
        f"load_config({str(target)!r}, ['us-east-1'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lxml', 'xml')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout == "[]\n", result.stderr


def test_skip_on_error_is_stated_the_same_way_everywhere() -> None:
    """One statement of skip_on_error's default and meaning: summary, legacy --help, README."""
    from aws_wodle.config import SKIP_ON_ERROR
    from aws_wodle.runtime.legacy import parser

    def flat(text: str) -> str:
        return " ".join(text.split())

    meaning = SKIP_ON_ERROR.removeprefix("default no; ")
    assert meaning != SKIP_ON_ERROR
    assert f"skip_on_error: yes ({SKIP_ON_ERROR})" in summary(parse(FULL))
    assert flat(SKIP_ON_ERROR) in flat(parser().format_help())
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"| `skip_on_error` | `yes` / `no` | `no`; {meaning} |" in readme
