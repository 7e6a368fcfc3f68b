"""The opt-in envelope: its JSON, its size limit, the raw default, and the shipped rules."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aws_wodle.manager.envelope import Envelope, iso_ms
from aws_wodle.manager.forward import HEADER, MAX_DATAGRAM
from aws_wodle.model import LogEvent
from aws_wodle.poll.outgoing import frame_page

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "etc" / "rules" / "aws-wodle_rules.xml"
ENVELOPE = Envelope("123456789012", "eu-west-1", "/aws/lambda/payments")


def body(datagram: bytes) -> dict[str, object]:
    """The JSON object of a datagram, after checking its header."""
    assert datagram.startswith(HEADER)
    value = json.loads(datagram[len(HEADER) :].decode("utf-8"))
    assert isinstance(value, dict)
    return value


def test_an_enveloped_event_names_its_source() -> None:
    """The object nests the message and its source under ``aws``, as the manager's aws
    module does for its other services, with times in ISO 8601 UTC."""
    event = LogEvent(
        1_700_000_000_007, "line one", 1_700_000_001_250, "2023/11/14/[$LATEST]ab", "37"
    )
    data, cut = ENVELOPE.frame(event)
    assert not cut
    assert body(data) == {
        "integration": "aws",
        "aws": {
            "source": "cloudwatchlogs",
            "log_info": {
                "log_group": "/aws/lambda/payments",
                "log_stream": "2023/11/14/[$LATEST]ab",
                "aws_account_id": "123456789012",
                "aws_region": "eu-west-1",
                "event_id": "37",
                "timestamp": "2023-11-14T22:13:20.007Z",
                "ingestion_time": "2023-11-14T22:13:21.250Z",
            },
            "message": "line one",
        },
    }


def test_without_an_event_id_the_key_is_left_out() -> None:
    """GetLogEvents gives no event id: the envelope then has no event_id key."""
    data, _ = ENVELOPE.frame(LogEvent(0, "m", 0, "s"))
    info = body(data)["aws"]["log_info"]  # type: ignore[index]
    assert "event_id" not in info
    assert info["timestamp"] == iso_ms(0) == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "unit",
    ["a", "é", "日", "🦆", '"', "\\", "\x01", "\n"],
    ids=["ascii", "2-byte", "3-byte", "4-byte", "quote", "backslash", "control", "newline"],
)
def test_a_message_too_long_is_cut_inside_and_the_datagram_stays_json(unit: str) -> None:
    """A 1 MB message of characters of every UTF-8 length and JSON escape: the datagram is
    at most 65,535 bytes, nearly full, valid JSON, and says the message was cut and its size."""
    message = "start:" + unit * (1_048_576 // len(unit.encode()))
    data, cut = ENVELOPE.frame(LogEvent(1, message, 2, "s", "e"))
    assert cut
    assert MAX_DATAGRAM - 7 < len(data) <= MAX_DATAGRAM
    aws = body(data)["aws"]
    assert isinstance(aws, dict)
    assert message.startswith(aws["message"])
    assert aws["log_info"]["truncated"] is True
    assert aws["log_info"]["message_bytes"] == len(message.encode("utf-8"))


def test_a_message_that_just_fits_is_not_cut() -> None:
    """A datagram of exactly 65,535 bytes goes whole, with no truncation fields."""
    empty, _ = ENVELOPE.frame(LogEvent(1, "", 2, "s", "e"))
    message = "x" * (MAX_DATAGRAM - len(empty))
    data, cut = ENVELOPE.frame(LogEvent(1, message, 2, "s", "e"))
    assert (len(data), cut) == (MAX_DATAGRAM, False)
    assert "truncated" not in body(data)["aws"]["log_info"]  # type: ignore[index]
    _, cut = ENVELOPE.frame(LogEvent(1, message + "x", 2, "s", "e"))
    assert cut


def test_an_unpaired_surrogate_stays_valid_json() -> None:
    """A lone UTF-16 surrogate (possible through the JSON API) is sent as a JSON escape."""
    data, _ = ENVELOPE.frame(LogEvent(1, "a\udc80b", 2, "s"))
    assert body(data)["aws"]["message"] == "a\udc80b"  # type: ignore[index]


def test_the_raw_default_is_byte_exact() -> None:
    """Without the envelope, a page's datagrams are the header and the raw UTF-8 message,
    exactly as the old module sends them."""
    messages = ['{"eventType": "test", "seq": 0}', "plain text", "café ☕ 日本語"]
    out = frame_page([LogEvent(i, m, i, "s") for i, m in enumerate(messages)], None, "g")
    assert out.wire == [HEADER + m.encode("utf-8") for m in messages]


def test_frame_page_counts_an_enveloped_event_cut_to_fit(caplog: pytest.LogCaptureFixture) -> None:
    """Through the page framer, a cut enveloped event is counted and warned about."""
    events = [LogEvent(1, "y" * 200_000, 2, "s", "e"), LogEvent(2, "small", 3, "s", "f")]
    out = frame_page(events, None, "account 1, region r, log group g", ENVELOPE)
    assert [len(d) <= MAX_DATAGRAM for d in out.wire] == [True, True]
    assert out.tally.truncated == 1
    assert out.tally.events == 2
    assert body(out.wire[1])["aws"]["message"] == "small"  # type: ignore[index]
    assert any("sent truncated" in r.getMessage() for r in caplog.records)


def flatten(value: object, prefix: str = "") -> dict[str, str]:
    """The fields the manager's JSON decoder makes of an object: dotted names, text values."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    text = json.dumps(value) if not isinstance(value, str) else value
    return {prefix[:-1]: text}


def test_the_shipped_rules_are_well_formed_and_read_the_envelopes_fields() -> None:
    """etc/rules parses as XML; each rule hangs off the manager's aws rule 80200 or one of
    its own; every field it reads is one the envelope fills, and the parent rule's pattern
    matches what an enveloped event carries."""
    root = ET.parse(RULES).getroot()
    assert root.tag == "group"
    rules = root.findall("rule")
    ids = [int(rule.get("id", "0")) for rule in rules]
    assert len(set(ids)) == len(ids)
    assert all(100000 <= i < 120000 for i in ids)
    data, _ = ENVELOPE.frame(LogEvent(1, "z" * 70_000, 2, "s", "e"))
    fields = flatten(body(data))
    for rule in rules:
        parents = [int(sid.text or "0") for sid in rule.findall("if_sid")]
        assert parents, rule.get("id")
        assert all(p == 80200 or p in ids for p in parents), rule.get("id")
        for wanted in rule.findall("field"):
            assert wanted.get("name") in fields, wanted.get("name")
        assert rule.findtext("description")
    parent = rules[0].find("field")
    assert parent is not None
    assert parent.get("name") == "aws.source"
    assert re.search(parent.text or "", fields["aws.source"])
    assert fields["integration"] == "aws"  # what the manager's rule 80200 asks for
    truncated = root.find("rule[@id='100503']/field")
    assert truncated is not None
    assert re.search(truncated.text or "", fields[truncated.get("name", "")])


def test_the_readmes_envelope_example_has_the_real_shape() -> None:
    """The envelope shown in README.md has exactly the keys an enveloped event has."""
    readme = (ROOT / "README.md").read_text()
    [example] = re.findall(r'```json\n(\{"integration".*?)```', readme, re.DOTALL)
    data, _ = ENVELOPE.frame(LogEvent(1, "m", 2, "s", "e"))
    assert set(flatten(json.loads(example))) == set(flatten(body(data)))
