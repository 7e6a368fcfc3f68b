"""aws-wodle.toml and the flags in words, for ``check-config``: each run option with where
it comes from (a flag, the file's line, or the default), each ``[[group]]`` rule and each
``[[kinesis]]`` source (never a secret)."""

from __future__ import annotations

from ..poll.groups import GroupOptions
from ..push.source import KinesisSource
from .settingsmodel import DURATIONS, RunOptions
from .settingsvalues import show_duration


def describe(options: RunOptions) -> str:
    """The run options in words, with where each comes from, for ``check-config``."""
    settings = options.settings
    state = "" if settings.found else " (not found: the defaults)"
    lines = [f"settings: {settings.path}{state}"]
    src = options.sources
    for name in DURATIONS:
        lines.append(f"  {name}: {show_duration(getattr(options, name))} ({src[name]})")
    metrics = "off" if options.metrics is None else "{}:{}".format(*options.metrics)
    lines.append(f"  metrics: {metrics} ({src['metrics']})")
    lines.append(f"  log_level: {options.log_level} ({src['log_level']})")
    log_format = options.log_format or "plain on a terminal, else syslog"
    lines.append(f"  log_format: {log_format} ({src['log_format']})")
    rates = ", ".join(
        f"{name}={options.rates[name]:g}/s ({src[f'rates.{name}']})"
        for name in sorted(options.rates)
    )
    lines.append(f"  rates: {rates}")
    for rule in options.groups.rules:
        what = _describe_options(rule.options)
        lines.append(f"  [[group]] at line {rule.line}: match {rule.match}: {what}")
    lines.append("  any other group: raw messages, every stream")
    for source in settings.kinesis:
        lines.append(f"  [[kinesis]] at line {source.line}: {describe_source(source)}")
    return "\n".join(lines)


def describe_source(source: KinesisSource) -> str:
    """A ``[[kinesis]]`` source in words (never a secret), for ``check-config``."""
    parts = [f"stream {source.stream} in {source.region}", f"lease table {source.lease_table}"]
    parts.append(f"lease period {show_duration(source.lease_period)}")
    parts.append(f"worker id {source.worker_id or 'HOST:PID:RANDOM'}")
    parts.append(f"batch {source.batch} records")
    parts.append("envelope (JSON with the source)" if source.envelope else "raw messages")
    if source.access_key:
        parts.append(f"access key {source.access_key}")
    elif source.aws_profile:
        parts.append(f"profile {source.aws_profile}")
    else:
        parts.append("default credentials chain")
    if source.iam_role_arn:
        duration = source.iam_role_duration or 3600
        parts.append(f"role {source.iam_role_arn} ({duration} s)")
    for name in ("sts_endpoint", "kinesis_endpoint", "dynamodb_endpoint"):
        value = getattr(source, name)
        if value:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


def _describe_options(options: GroupOptions) -> str:
    parts = ["envelope (JSON with the source)" if options.envelope else "raw messages"]
    if options.include_streams:
        parts.append("only streams starting with " + " or ".join(options.include_streams))
    if options.exclude_streams:
        parts.append("not streams starting with " + " or ".join(options.exclude_streams))
    if not options.filters_streams:
        parts.append("every stream")
    return ", ".join(parts)
