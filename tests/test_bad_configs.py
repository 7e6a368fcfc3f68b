"""Corpora of ossec.conf files: the broken ones give FILE:LINE: message and exit 2, never a
traceback; the ones the manager accepts pass."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from conftest import Sink, run_cli


def wodle(*service_lines: str, head: str = "") -> str:
    service = "\n".join(f"    {line}" for line in service_lines)
    return (
        "<ossec_config>\n"  # line 1
        '  <wodle name="aws-s3">\n'  # line 2
        f"{head}"
        '  <service type="cloudwatchlogs">\n'
        f"{service}\n"
        "  </service>\n"
        "  </wodle>\n"
        "</ossec_config>\n"
    )


GROUP = "<aws_log_groups>g</aws_log_groups>"

# (name, file content, line of the first error, words the message must hold)
CORPUS: list[tuple[str, bytes, int, str]] = [
    # The manager's reader notices the missing </regions> where </service> comes.
    ("unclosed tag", wodle(GROUP, "<regions>us-east-1").encode(), 6, "XML syntax error"),
    ("unclosed root", b'<ossec_config>\n<wodle name="aws-s3">\n', 3, "XML syntax error"),
    ("mismatched tags", wodle(GROUP, "<regions>us-east-1</region>").encode(), 5, "mismatch"),
    ("unknown service tag", wodle(GROUP, "<colour>blue</colour>").encode(), 5, "unknown option"),
    (
        "unknown wodle tag",
        wodle(GROUP, head="  <frequency>5m</frequency>\n").encode(),
        3,
        "unknown option",
    ),
    (
        "bad interval word",
        wodle(GROUP, head="  <interval>often</interval>\n").encode(),
        3,
        "interval",
    ),
    ("zero interval", wodle(GROUP, head="  <interval>0</interval>\n").encode(), 3, "interval"),
    ("bad interval unit", wodle(GROUP, head="  <interval>5y</interval>\n").encode(), 3, "interval"),
    (
        "interval of 2**32 - 1",
        wodle(GROUP, head="  <interval>-1</interval>\n").encode(),
        3,
        "interval",
    ),
    (
        "bad date",
        wodle(GROUP, "<only_logs_after>2024-13-45</only_logs_after>").encode(),
        5,
        "only_logs_after",
    ),
    (
        "bad month name",
        wodle(GROUP, "<only_logs_after>2024-JAM-01</only_logs_after>").encode(),
        5,
        "only_logs_after",
    ),
    ("bad region", wodle(GROUP, "<regions>us-east-1,mars-1</regions>").encode(), 5, "mars-1"),
    ("empty groups", wodle("<aws_log_groups></aws_log_groups>").encode(), 4, "aws_log_groups"),
    ("empty group entry", wodle("<aws_log_groups>a,,b</aws_log_groups>").encode(), 4, "empty"),
    ("no groups", wodle("<regions>us-east-1</regions>").encode(), 3, "aws_log_groups"),
    (
        "role duration too short",
        wodle(
            GROUP,
            "<iam_role_arn>arn:aws:iam::123456789012:role/r</iam_role_arn>",
            "<iam_role_duration>600</iam_role_duration>",
        ).encode(),
        6,
        "iam_role_duration",
    ),
    (
        "role duration too long",
        wodle(
            GROUP,
            "<iam_role_arn>arn:aws:iam::123456789012:role/r</iam_role_arn>",
            "<iam_role_duration>7200</iam_role_duration>",
        ).encode(),
        6,
        "iam_role_duration",
    ),
    (
        "role duration without role",
        wodle(GROUP, "<iam_role_duration>900</iam_role_duration>").encode(),
        5,
        "iam_role_arn",
    ),
    (
        "discard regex that does not compile",
        wodle(GROUP, "<discard_regex>([a-z</discard_regex>").encode(),
        5,
        "discard_regex",
    ),
    (
        "two roots of different kinds",
        (wodle(GROUP) + "<agent_config>\n</agent_config>\n").encode(),
        8,
        "outside",
    ),
    (
        "BOM and a bad value",
        codecs.BOM_UTF8 + wodle(GROUP, "<remove_log_streams>maybe</remove_log_streams>").encode(),
        5,
        "remove_log_streams",
    ),
    ("UTF-16 file", codecs.BOM_UTF16_LE + wodle(GROUP).encode("utf-16-le"), 1, ""),
    ("bad yes/no", wodle(GROUP, head="  <disabled>perhaps</disabled>\n").encode(), 3, "disabled"),
    (
        "day and wday together",
        wodle(GROUP, head="  <day>3</day>\n  <wday>monday</wday>\n").encode(),
        4,
        "wday",
    ),
    ("bad time", wodle(GROUP, head="  <time>25:61</time>\n").encode(), 3, "time"),
    (
        "service without type",
        b'<ossec_config>\n<wodle name="aws-s3">\n<service>\n'
        + GROUP.encode()
        + b"\n</service>\n</wodle>\n</ossec_config>\n",
        3,
        "type",
    ),
    (
        "bad account id",
        wodle(GROUP, "<aws_account_id>12ab</aws_account_id>").encode(),
        5,
        "aws_account_id",
    ),
    (
        "keys half given",
        wodle(GROUP, "<access_key>AKIAEXAMPLE</access_key>").encode(),
        5,
        "secret_key",
    ),
    (
        "huge file",
        b"<ossec_config>\n<!--" + b"x" * (17 * 1024 * 1024) + b"-->\n</ossec_config>\n",
        0,
        "too large",
    ),
    (
        "a service type the manager does not know",
        wodle(GROUP).replace("cloudwatchlogs", "fakeservice").encode(),
        3,
        "unknown service type 'fakeservice'",
    ),
    (
        "yes in capitals",
        wodle(GROUP, "<remove_log_streams>YES</remove_log_streams>").encode(),
        5,
        "lower case",
    ),
    (
        "comment never closed",
        wodle(GROUP).replace("</ossec_config>", "<!--").encode(),
        8,
        "comment",
    ),
    ("closing tag first", b"</ossec_config>\n", 1, "no element is open"),
    ("unquoted attribute", wodle(GROUP).replace('"aws-s3"', "aws-s3").encode(), 2, "not quoted"),
    (
        "attribute set twice",
        wodle(GROUP).replace('name="aws-s3"', 'name="aws-s3" name="x"').encode(),
        2,
        "set twice",
    ),
    ("XML declaration", b'<?xml version="1.0"?>\n' + wodle(GROUP).encode(), 1, "XML syntax"),
    (
        "wodle without a name",
        b"<ossec_config>\n<wodle>\n<x/></wodle>\n</ossec_config>\n",
        2,
        "name",
    ),
    (
        "unknown option in a bucket",
        wodle(GROUP, head='  <bucket type="cloudtrail"><nme>b</nme></bucket>\n').encode(),
        3,
        "<nme> in bucket",
    ),
    (
        "an empty account id",
        wodle(GROUP, "<aws_account_id></aws_account_id>").encode(),
        5,
        "aws_account_id is empty",
    ),
    (
        "a broken service beside a valid one",
        wodle(
            GROUP,
            head='  <service type="cloudwatchlogs"><aws_log_groups>ok</aws_log_groups></service>\n',
        )
        .replace("</service>\n  </wodle>", "<regions>mars-1</regions></service>\n  </wodle>")
        .encode(),
        6,
        "mars-1",
    ),
]

# Files the manager starts with, each holding what a stricter reader (or our earlier one)
# refused: check-config exits 0.
ACCEPTED: list[tuple[str, bytes]] = [
    (
        "a literal & in another section",
        b"<ossec_config>\n<localfile>\n<log_format>full_command</log_format>\n"
        b"<command>test -f /etc/x && cat /etc/x</command>\n</localfile>\n</ossec_config>\n"
        + wodle(GROUP).encode(),
    ),
    (
        "an entity kept as text",
        wodle(GROUP, '<discard_regex field="a">x&amp;y</discard_regex>').encode(),
    ),
    (
        "an escaped less-than",
        wodle(GROUP, '<discard_regex field="a">\\<b</discard_regex>').encode(),
    ),
    ("an empty only_logs_after", wodle(GROUP, "<only_logs_after/>").encode()),
    ("an empty discard_regex", wodle(GROUP, "<discard_regex></discard_regex>").encode()),
    ("an empty aws_profile", wodle(GROUP, "<aws_profile></aws_profile>").encode()),
    ("a repeated option", wodle(GROUP, GROUP).encode()),
    ("text and comments between roots", b"<!-- a -->\nnotes\n" + wodle(GROUP).encode() + b"tail\n"),
    ("a byte that is not UTF-8 in a comment", b"<!-- caf\xe9 -->\n" + wodle(GROUP).encode()),
    (
        "a day with an interval in days",
        wodle(GROUP, head="  <day>3</day>\n  <interval>1d</interval>\n").encode(),
    ),
    ("a months interval alone", wodle(GROUP, head="  <interval>2M</interval>\n").encode()),
    (
        "an interval with a longer unit",
        wodle(GROUP, head="  <interval>10min</interval>\n").encode(),
    ),
    ("the deprecated name", wodle(GROUP).replace("aws-s3", "aws-cloudtrail").encode()),
]


def test_the_corpus_is_large_enough() -> None:
    """At least 40 broken configurations, and 12 the manager accepts, are checked."""
    assert len(CORPUS) >= 40
    assert len(ACCEPTED) >= 12


@pytest.mark.parametrize(("name", "content", "line", "words"), CORPUS, ids=[c[0] for c in CORPUS])
def test_broken_config_gives_file_line_and_exit_2(
    tmp_path: Path, name: str, content: bytes, line: int, words: str
) -> None:
    """check-config names the file and line of the first problem and exits 2, no traceback."""
    conf = tmp_path / "ossec.conf"
    conf.write_bytes(content)
    result = run_cli("check-config", "--config", str(conf))
    assert result.returncode == 2, (name, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{conf}:{line}: " if line else f"{conf}: "), first
    assert words.lower() in first.lower(), first


@pytest.mark.parametrize(("name", "content"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_what_the_manager_accepts_passes(tmp_path: Path, name: str, content: bytes) -> None:
    """check-config exits 0 for a file the manager starts with, and summarises the service."""
    conf = tmp_path / "ossec.conf"
    conf.write_bytes(content)
    result = run_cli("check-config", "--config", str(conf), "--ossec-home", str(tmp_path))
    assert result.returncode == 0, (name, result.stderr)
    assert "cloudwatchlogs service at line" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout


def test_run_refuses_each_broken_config_the_same_way(tmp_path: Path, sink: Sink) -> None:
    """run --once gives the same FILE:LINE: message and exit 2 as check-config."""
    for name, content, line, _ in CORPUS[:3]:
        conf = tmp_path / "ossec.conf"
        conf.write_bytes(content)
        result = run_cli(
            "run", "--once", "--config", str(conf), "--queue", sink.path,
            "--state", str(tmp_path / "state.db"),
        )  # fmt: skip
        assert result.returncode == 2, name
        first = re.sub(r"^<\d>", "", result.stderr.splitlines()[0])  # the journal's priority
        assert first.startswith(f"{conf}:{line}: ")
        assert "Traceback" not in result.stderr
