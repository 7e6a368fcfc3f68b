"""The settings file (aws-wodle.toml): its keys, its errors with file and line, the merge
with the flags, per-group rules, and the aws_log_groups entries they apply to."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from aws_wodle.aws.budget import DEFAULT_RATES
from aws_wodle.config.settings import (
    SettingsFile,
    describe,
    load_settings,
    merge,
    parse_duration,
    parse_settings,
)
from aws_wodle.config.settingskinesis import KINESIS_KEYS
from aws_wodle.config.settingsrules import GROUP_KEYS, TOP_KEYS
from aws_wodle.config.tomllines import key_lines
from aws_wodle.errors import ConfigError
from aws_wodle.poll.groups import (
    GroupArn,
    GroupName,
    GroupOptions,
    GroupPrefix,
    GroupRule,
    GroupRules,
    parse_entry,
)

ROOT = Path(__file__).resolve().parent.parent
PATH = "/etc/aws-wodle.toml"


def parse(text: str) -> SettingsFile:
    return parse_settings(textwrap.dedent(text).encode(), PATH)


def problems(text: str) -> list[str]:
    """Every problem a settings text gives, as printed."""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(p) for p in caught.value.problems]


def test_every_key_is_read() -> None:
    """Durations (text or seconds), metrics, log options, rates and [[group]] sections."""
    settings = parse(
        """
        lookback = "20m"
        settle = 5
        remove_idle = "1h"
        discover_every = "0"
        metrics = "127.0.0.1:9300"
        log_level = "DEBUG"
        log_format = "json"

        [rates]
        FilterLogEvents = 2.5
        DescribeLogGroups = 1

        [[group]]
        match = "/aws/lambda/*"
        include_streams = ["2024/", "2025/"]
        exclude_streams = ["x"]
        envelope = true

        [[group]]
        match = "app"
        """
    )
    assert settings.found
    assert (settings.lookback, settings.settle, settings.remove_idle) == (1200.0, 5.0, 3600.0)
    assert settings.discover_every == 0.0
    assert settings.metrics == ("127.0.0.1", 9300)
    assert (settings.log_level, settings.log_format) == ("debug", "json")
    assert settings.rates == {"FilterLogEvents": 2.5, "DescribeLogGroups": 1.0}
    assert settings.groups == GroupRules(
        (
            GroupRule("/aws/lambda/*", GroupOptions(("2024/", "2025/"), ("x",), True), 14),
            GroupRule("app", GroupOptions(), 20),
        )
    )


def test_an_empty_file_and_a_missing_default_file_mean_the_defaults(tmp_path: Path) -> None:
    """Nothing said: every option takes its default; the default file may be missing."""
    assert parse("") == SettingsFile(PATH, found=True)
    missing = str(tmp_path / "aws-wodle.toml")
    assert load_settings(missing, required=False) == SettingsFile(missing)


def test_a_missing_file_named_on_the_command_line_is_an_error(tmp_path: Path) -> None:
    """--settings FILE that does not exist: FILE and the reason, no line."""
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, required=True)
    assert [str(p) for p in caught.value.problems] == [
        f"{missing}: cannot read the file: No such file or directory"
    ]


def test_a_directory_is_an_error_even_by_default(tmp_path: Path) -> None:
    """A default path that exists but cannot be read is reported, not taken as absent."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(str(tmp_path), required=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('lookback = "15 minutes"', "1: lookback: invalid duration '15 minutes'"),
        ("lookback = -1", "1: lookback: must not be negative, got -1"),
        ("settle = true", "1: settle: expected a duration"),
        ('metrics = "0.0.0.0:9109"', "1: metrics: metrics address '0.0.0.0:9109' is not a"),
        ("metrics = 9109", '1: metrics: expected "ADDR:PORT"'),
        ('log_level = "loud"', "1: log_level: invalid log_level 'loud'"),
        ('log_format = "xml"', "1: log_format: invalid log_format 'xml'"),
        ('colour = "blue"', "1: unknown setting 'colour' (known: lookback,"),
        ("\n\n[rates]\nGetLogEvents = 0", "4: rates.GetLogEvents: invalid rate 0"),
        ("[rates]\nGetLogEvents = true", "2: rates.GetLogEvents: invalid rate True"),
        ("[rates]\nListThings = 1", "2: unknown operation 'ListThings' in [rates]"),
        ('rates = "fast"', "1: rates must be a table"),
        ("[group]\nmatch = 'a'", "1: group must be written [[group]]"),
        ("[[group]]\nenvelope = true", "1: [[group]] needs a match"),
        ("[[group]]\nmatch = 'a*b'", "2: [[group]] match: invalid match 'a*b'"),
        ("[[group]]\nmatch = ''", "2: [[group]] match: match is empty"),
        ("[[group]]\nmatch = 'arn:aws:logs:x'", "2: [[group]] match: invalid match"),
        ("[[group]]\nmatch = 'a'\nenvelope = 'yes'", "3: [[group]] envelope: expected true or"),
        ("[[group]]\nmatch = 'a'\ninclude_streams = 'web-'", "3: [[group]] include_streams:"),
        ("[[group]]\nmatch = 'a'\nexclude_streams = ['']", "3: [[group]] exclude_streams:"),
        ("[[group]]\nmatch = 'a'\nstreams = ['x']", "3: unknown option 'streams' in [[group]]"),
        ("lookback = \n", "1: TOML syntax error: Invalid value (column 12)"),
        ("lookback = ", "1: TOML syntax error: Invalid value (at the end of the file)"),
        ('x = "unclosed', "1: TOML syntax error:"),
        ("a = 1\na = 2", "2: TOML syntax error:"),
    ],
)
def test_each_bad_value_names_file_and_line(text: str, expected: str) -> None:
    """A bad value, an unknown key or a syntax error: one line naming the file, the line
    of the key, and what is wrong."""
    [problem] = problems(text)
    assert problem.startswith(f"{PATH}:{expected}"), problem


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    """Several problems: each with its own line, sorted, none hiding another."""
    found = problems(
        """
        colour = 1
        [rates]
        GetLogEvents = -2
        [[group]]
        match = "ok"
        [[group]]
        match = "ok2"
        envelope = 1
        """
    )
    assert [p.split(":")[1] for p in found] == ["2", "4", "9"]


def test_a_group_match_repeated_is_warned_about() -> None:
    """Two [[group]] with one match: the second can never be used, which is said, with its
    line."""
    settings = parse("[[group]]\nmatch = 'a'\n[[group]]\nmatch = 'a'\nenvelope = true\n")
    assert [str(w) for w in settings.warnings] == [
        f"{PATH}:3: [[group]] match 'a' is also at line 1: the first one fitting a group is "
        "used, so this one never is"
    ]


def test_not_utf8_and_too_large_files_are_refused() -> None:
    """Bytes that are not UTF-8 give their line; a file over 1 MiB is refused whole."""
    with pytest.raises(ConfigError, match=r":2: not UTF-8"):
        parse_settings(b"a = 1\nb = '\xff'\n", PATH)
    with pytest.raises(ConfigError, match="file too large"):
        parse_settings(b"#" * (1024 * 1024 + 1), PATH)


def test_a_flag_overrides_the_file_which_overrides_the_default() -> None:
    """Each run option comes from its flag if given, else the file, else the default, and
    says which."""
    settings = parse('lookback = "20m"\nsettle = "1m"\n[rates]\nGetLogEvents = 3\n')
    flags = {"lookback": 60.0, "settle": None, "remove_idle": None, "metrics": None}
    options = merge(settings, flags, {"FilterLogEvents": 1.0})
    assert (options.lookback, options.settle, options.remove_idle) == (60.0, 60.0, 600.0)
    assert options.rates == dict(DEFAULT_RATES, GetLogEvents=3.0, FilterLogEvents=1.0)
    assert options.sources["lookback"] == "--lookback"
    assert options.sources["settle"] == f"{PATH}:2"
    assert options.sources["remove_idle"] == "default"
    assert options.sources["rates.GetLogEvents"] == f"{PATH}:4"
    assert options.sources["rates.FilterLogEvents"] == "--rate"
    text = describe(options)
    assert "  lookback: 1m (--lookback)" in text
    assert f"  settle: 1m ({PATH}:2)" in text
    assert "  remove_idle: 10m (default)" in text
    assert "GetLogEvents=3/s" in text


def test_the_example_file_is_valid_and_says_every_key() -> None:
    """etc/aws-wodle.toml.example parses, and names every top-level key and group option."""
    path = ROOT / "etc" / "aws-wodle.toml.example"
    settings = load_settings(str(path), required=True)
    assert settings.groups.rules
    text = path.read_text()
    for key in ("lookback", "settle", "remove_idle", "discover_every", "metrics", "log_level",
                "log_format", "[rates]", "[[group]]", "match", "include_streams",
                "exclude_streams", "envelope"):  # fmt: skip
        assert key in text, key


def test_the_example_file_uncommented_sets_every_key_the_reader_knows() -> None:
    """etc/aws-wodle.toml.example with every commented-out key line uncommented parses
    without a problem, and sets every key the settings reader knows: top level, rates,
    [[group]] and [[kinesis]]."""
    text = (ROOT / "etc" / "aws-wodle.toml.example").read_text()
    assignment = re.compile(r"^# ?(\[\[kinesis\]\]|[a-z_]+ = .*)$")
    lines = [assignment.sub(r"\1", line) for line in text.splitlines()]
    uncommented = "\n".join(lines) + "\n"
    settings = parse_settings(uncommented.encode(), "aws-wodle.toml.example")
    [source] = settings.kinesis
    assert source.stream_name == "siem-logs"
    assert source.worker_id
    assert source.envelope
    document = tomllib.loads(uncommented)
    assert set(document) == set(TOP_KEYS)
    assert set(document["rates"]) == set(DEFAULT_RATES)
    assert set().union(*document["group"]) == set(GROUP_KEYS)
    assert set(document["kinesis"][0]) == set(KINESIS_KEYS)


def test_key_lines_follow_tables_arrays_and_multiline_strings() -> None:
    """The line finder places top-level keys, [table] keys, the keys of each [[array]]
    entry, and skips multi-line strings."""
    text = textwrap.dedent(
        '''\
        a = 1
        note = """
        fake = 2
        """
        [rates]
        "GetLogEvents" = 3
        [[group]]
        match = "x"
        [[group]]
          match = "y"   # indented
        '''
    )
    lines = key_lines(text)
    assert lines[("a",)] == 1
    assert ("fake",) not in lines
    assert lines[("rates", "GetLogEvents")] == 6
    assert lines[("group", 0, "match")] == 8
    assert lines[("group", 1)] == 9
    assert lines[("group", 1, "match")] == 10


def test_durations() -> None:
    """Durations: a whole number and an optional unit."""
    assert [parse_duration(t) for t in ("0", "90", "90s", "15m", "2h", "1d", "1w")] == [
        0, 90, 90, 900, 7200, 86400, 604800,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("1.5m")


# The entries of aws_log_groups, and the groups a [[group]] fits.


def test_entries_are_names_prefixes_or_arns() -> None:
    """A name, a prefix ending in *, or a log group ARN (the trailing :* of AWS's resource
    ARNs dropped: logGroupIdentifier refuses it)."""
    assert parse_entry("app") == GroupName("app")
    assert parse_entry("/aws/lambda/*") == GroupPrefix("/aws/lambda/")
    assert parse_entry("*") == GroupPrefix("")
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/web"
    expected = GroupArn(arn, "aws", "eu-west-1", "111122223333", "/ecs/web")
    assert parse_entry(arn) == expected
    assert parse_entry(arn + ":*") == expected
    assert parse_entry("arn:aws-cn:logs:cn-north-1:111122223333:log-group:a").partition == (
        "aws-cn"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a*b", "a * may only end an entry"),
        ("arn:aws:logs:eu-west-1:1111:log-group:a", "invalid log group ARN"),
        ("arn:aws:s3:::bucket", "invalid log group ARN"),
        ("arn:aws:logs:eu-west-1:111122223333:log-group:/aws/*", "a prefix (*) is for groups"),
        ("arn:aws:logs:eu-west-1:111122223333:log-group:a b", "invalid log group name 'a b'"),
        ("/bad prefix/*", "invalid log group prefix"),
    ],
)
def test_bad_entries_say_why(text: str, message: str) -> None:
    """Entries that can name no group are refused with the reason."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_entry(text)


def test_the_first_fitting_group_rule_gives_the_options() -> None:
    """Rules by name, prefix and ARN (of one group or a prefix in one account and region);
    the first that fits wins, and a group no rule fits gets the defaults."""
    envelope = GroupOptions(envelope=True)
    only_web = GroupOptions(include_streams=("web/",))
    rules = GroupRules(
        (
            GroupRule("arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/*", only_web),
            GroupRule("/aws/lambda/*", envelope),
            GroupRule("app", only_web),
            GroupRule("/aws/lambda/x", GroupOptions()),
        )
    )
    assert rules.for_group("123456789012", "us-east-1", "/aws/lambda/x") == envelope
    assert rules.for_group("123456789012", "us-east-1", "app") == only_web
    assert rules.for_group("111122223333", "eu-west-1", "/ecs/web") == only_web
    assert rules.for_group("111122223333", "us-east-1", "/ecs/web") == GroupOptions()
    assert rules.for_group("123456789012", "us-east-1", "apps") == GroupOptions()


def test_stream_filters() -> None:
    """A stream is kept when it starts with an included prefix (if any) and with no
    excluded one; one included prefix is also handed to FilterLogEvents."""
    options = GroupOptions(include_streams=("web-", "api-"), exclude_streams=("api-internal",))
    kept = [s for s in ("web-1", "api-1", "api-internal-1", "db-1") if options.keeps(s)]
    assert kept == ["web-1", "api-1"]
    assert options.server_prefix is None
    assert GroupOptions(include_streams=("web-",)).server_prefix == "web-"
    assert GroupOptions(exclude_streams=("x",)).keeps("y")
    assert not GroupOptions().filters_streams


def test_the_readmes_settings_example_is_valid() -> None:
    """The settings file shown in README.md parses, with its [[group]] sections."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert blocks
    for block in blocks:
        settings = parse_settings(block.encode(), "README.md")
        assert settings.groups.rules


def test_every_run_option_from_log_level_down_has_a_settings_key() -> None:
    """Each flag of `run` from --log-level down can be set in aws-wodle.toml, under its
    own name (--rate as [rates]), and the example file shows each."""
    from aws_wodle.runtime.cli import _parser

    commands = next(a for a in _parser()._actions if a.dest == "command")
    run = commands.choices["run"]  # type: ignore[index]
    dests = [action.dest for action in run._actions]
    below = dests[dests.index("log_level") :]
    example = (ROOT / "etc" / "aws-wodle.toml.example").read_text()
    for dest in below:
        key = "rates" if dest == "rate" else dest
        assert key in TOP_KEYS, dest
        assert key in example, key
    assert parse('queue_wait = "30s"\n').queue_wait == 30.0


def test_an_unknown_array_table_is_placed_at_its_line() -> None:
    """A misspelt [[grop]] names its file and line, as every other unknown key does."""
    text = 'lookback = "15m"\n\n[[grop]]\nmatch = "app"\n'
    assert problems(text) == [f"{PATH}:3: unknown setting 'grop' (known: {', '.join(TOP_KEYS)})"]
