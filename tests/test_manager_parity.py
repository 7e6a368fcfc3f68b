"""Regression tests: ossec.conf texts read as the manager's own readers read them."""

from __future__ import annotations

import pytest

from aws_wodle.cloudwatch import known_regions
from aws_wodle.config import Config, parse_config
from aws_wodle.errors import ConfigError

REGIONS = known_regions()
PATH = "/var/ossec/etc/ossec.conf"
SERVICE = '<service type="cloudwatchlogs"><aws_log_groups>app</aws_log_groups></service>'


def parse(text: str) -> Config:
    """Parse a config the manager accepts."""
    return parse_config(text.encode(), PATH, REGIONS)


def refused(text: str) -> list[str]:
    """Parse a config the manager refuses; return the messages of its problems."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text.encode(), PATH, REGIONS)
    return [problem.message for problem in caught.value.problems]


def wodle(body: str, name: str = "aws-s3") -> str:
    """One wodle block in its own root."""
    return f'<ossec_config>\n<wodle name="{name}">\n{body}\n</wodle>\n</ossec_config>\n'


def test_a_later_aws_s3_wodle_replaces_the_first() -> None:
    """Of several aws-s3 wodles (across roots) only the last is kept, with a warning."""
    config = parse(wodle("<interval>1h</interval>" + SERVICE) + wodle(SERVICE))
    (kept,) = config.wodles
    assert kept.line == 7
    assert any("replaces the one on line 2" in w.message for w in config.warnings)


def test_aws_cloudtrail_wodles_add_and_aws_s3_replaces_the_first() -> None:
    """An aws-cloudtrail wodle adds one; a later aws-s3 one replaces the first of all."""
    text = wodle(SERVICE, "aws-cloudtrail") + wodle(SERVICE, "aws-cloudtrail") + wodle(SERVICE)
    assert [w.line for w in parse(text).wodles] == [12, 7]
