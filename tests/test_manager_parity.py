"""Regression tests: ossec.conf texts read as the manager's own readers read them."""

from __future__ import annotations

import pytest

from aws_wodle.aws.cloudwatch import known_regions
from aws_wodle.config import Config, parse_config
from aws_wodle.errors import ConfigError
from aws_wodle.schedule import Interval, Monthly

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


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [("7102w", 7102 * 604800 % 2**32), ("4000d", 4000 * 86400), ("-5", 2**32 - 5)],
)
def test_intervals_beyond_our_old_limits_are_taken_with_the_manager_value(
    interval: str, seconds: int
) -> None:
    """Huge or negative intervals are taken, wrapped at 2**32 as the manager wraps them."""
    config = parse(wodle(f"<interval>{interval}</interval>" + SERVICE))
    assert config.wodles[0].schedule.seconds == seconds  # type: ignore[union-attr]
    assert any(w.message.startswith(f"interval '{interval}'") for w in config.warnings)


def test_months_and_a_huge_day_are_taken_as_the_manager_reads_them() -> None:
    """121M is taken; day 4294967297 is 1 (a C int); both with a warning."""
    config = parse(wodle("<day>4294967297</day><interval>121M</interval>" + SERVICE))
    assert config.wodles[0].schedule == Monthly(day=1, every=121)
    assert len(config.warnings) == 2


@pytest.mark.parametrize(("interval", "seconds"), [("010", 8), ("0x10", 16), (" +0X1f", 31)])
def test_intervals_in_octal_and_hex(interval: str, seconds: int) -> None:
    """A leading 0 is octal and 0x hexadecimal, as C's strtoul reads them with base 0."""
    config = parse(wodle(f"<interval>{interval}</interval>" + SERVICE))
    assert config.wodles[0].schedule == Interval(seconds=seconds)


def test_an_interval_after_one_in_months_counts_months() -> None:
    """After 2M, 2d is read as 172800 months, since the manager stays in months."""
    config = parse(wodle("<interval>2M</interval><interval>2d</interval>" + SERVICE))
    assert config.wodles[0].schedule == Monthly(day=1, every=2 * 86400)


def service(*options: str) -> str:
    """A wodle with one cloudwatchlogs service holding ``options``."""
    return wodle('<service type="cloudwatchlogs">' + "".join(options) + "</service>")


def test_white_space_of_a_discard_regex_is_part_of_it() -> None:
    """<discard_regex> ERROR</discard_regex> keeps its space, and a wrapped value its lines."""
    groups = "<aws_log_groups>app</aws_log_groups>"
    config = parse(service(groups, "<discard_regex> ERROR</discard_regex>"))
    assert config.wodles[0].services[0].discard.pattern.pattern == " ERROR"  # type: ignore[union-attr]
    config = parse(service(groups, "<discard_regex>\n  ^x\n</discard_regex>"))
    assert config.wodles[0].services[0].discard.pattern.pattern == "\n  ^x\n"  # type: ignore[union-attr]


def test_only_ascii_white_space_is_trimmed() -> None:
    """A unit separator or a no-break space around a value stays, as in the manager."""
    config = parse(
        service(
            "<aws_log_groups>app</aws_log_groups>",
            "<aws_profile>\x1fprod</aws_profile><aws_account_alias>\u00a0a </aws_account_alias>",
        )
    )
    (found,) = config.wodles[0].services
    assert (found.aws_profile, found.aws_account_alias) == ("\x1fprod", "\u00a0a")


def test_an_empty_copy_of_an_option_keeps_the_earlier_value() -> None:
    """<regions>eu-west-1</regions><regions/> keeps eu-west-1, with a warning saying so."""
    config = parse(
        service(
            "<aws_log_groups>app</aws_log_groups>",
            "<regions>eu-west-1</regions><regions/>",
            "<discard_regex>x</discard_regex><discard_regex></discard_regex>",
        )
    )
    (found,) = config.wodles[0].services
    assert found.regions == ("eu-west-1",)
    assert found.discard is not None
    assert found.discard.pattern.pattern == "x"
    assert sum("is kept, as the manager keeps it" in w.message for w in config.warnings) == 2


def test_a_discard_field_goes_on_to_a_later_discard_regex_without_one() -> None:
    """A later discard_regex without field keeps the field of the earlier one."""
    config = parse(
        service(
            "<aws_log_groups>app</aws_log_groups>",
            '<discard_regex field="a">x</discard_regex><discard_regex>y</discard_regex>',
        )
    )
    discard = config.wodles[0].services[0].discard
    assert discard is not None
    assert (discard.field, discard.pattern.pattern) == ("a", "y")


@pytest.mark.parametrize("subscriber", ['<subscriber type="nosuch"/>', "<subscriber/>"])
def test_a_subscriber_type_is_checked_even_without_children(subscriber: str) -> None:
    """The manager checks a subscriber's type before looking inside it."""
    assert refused(wodle(SERVICE + subscriber))


def test_an_interval_that_wraps_to_zero_is_refused() -> None:
    """33554432w is 0 s in 32 bits: the manager's modules daemon would exit on it."""
    (message,) = refused(wodle("<interval>33554432w</interval>" + SERVICE))
    assert "is 0 s once wrapped" in message
