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


@pytest.mark.parametrize(
    "section", ["<foo><bar>1</bar></foo>", "<global/>", "<localfile></localfile>"]
)
def test_sections_the_manager_refuses_at_its_dispatch(section: str) -> None:
    """An unknown section, or an empty one read only with elements, refuses the file."""
    text = f"<ossec_config>\n{section}\n</ossec_config>\n" + wodle(SERVICE)
    assert len(refused(text)) == 1


def test_sections_the_manager_takes_empty_or_not() -> None:
    """Known sections pass, empty or not, without being checked inside."""
    text = "<ossec_config>\n<logging/><cluster></cluster><global><x/></global>\n</ossec_config>\n"
    assert len(parse(text + wodle(SERVICE)).wodles) == 1


def test_var_is_skipped_and_its_elements_join_the_element_before_it() -> None:
    """<var> is skipped with a warning; the elements in it become the previous element's."""
    body = '<service type="cloudwatchlogs"><aws_log_groups>app</aws_log_groups></service>'
    body += '<var name="x"><regions>eu-west-1</regions></var><var name="y">1</var>'
    config = parse(wodle(body))
    assert config.wodles[0].services[0].regions == ("eu-west-1",)
    assert sum("<var> is a variable" in w.message for w in config.warnings) == 2


def test_var_elements_are_checked_where_they_land() -> None:
    """An element inside <var> that its new parent does not know refuses the file."""
    assert refused(wodle(SERVICE + "<var><interval>1h</interval></var>"))
