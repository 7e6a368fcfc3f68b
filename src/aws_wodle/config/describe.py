"""Stage 4 of reading ossec.conf: the configuration in words, for ``check-config``."""

from __future__ import annotations

from ..model import CloudWatchService
from ..poll.groups import GroupArn, GroupName, GroupPrefix, parse_entry
from ..schedule import WEEKDAYS, Daily, Interval, Monthly, Schedule, Weekly
from .model import SKIP_ON_ERROR, Config
from .values import DAY, HOUR, MINUTE, WEEK


def summary(config: Config) -> str:
    """What would run, on one screen; no secret is shown. Warnings and errors are not
    repeated here: ``check-config`` prints each of them once, with its file and line."""
    count = len(config.wodles)
    lines = [f"{config.path}: {count} aws-s3 wodle{'s' if count != 1 else ''}"]
    for wodle in config.wodles:
        state = "disabled" if wodle.disabled else "enabled"
        lines.append(f"wodle at line {wodle.line}: {state}")
        lines.append(f"  schedule: {describe_schedule(wodle.schedule)}")
        lines.append(f"  skip_on_error: {_yes(wodle.skip_on_error)} ({SKIP_ON_ERROR})")
        if not wodle.services and not wodle.broken:
            lines.append("  no CloudWatch Logs service: nothing to collect")
        for service in wodle.services:
            lines.extend(_describe_service(service))
        for broken in wodle.broken:
            at = list(dict.fromkeys(problem.line for problem in broken.problems))
            errors = "errors" if len(broken.problems) > 1 else "error"
            where = f"{errors} on line{'s' if len(at) > 1 else ''} {', '.join(map(str, at))}"
            lines.append(f"  cloudwatchlogs service at line {broken.line}: not collected ({where})")
    return "\n".join(lines)


def describe_schedule(schedule: Schedule) -> str:
    """A schedule in words, e.g. ``every 5m, first run at start`` or ``daily at 03:00``."""
    if isinstance(schedule, Interval):
        start = "first run at start" if schedule.run_on_start else "first run after one interval"
        return f"every {_duration(schedule.seconds)}, {start}"
    start = "also at start" if schedule.run_on_start else "first run at the next slot"
    at = f"at {schedule.at.hour:02d}:{schedule.at.minute:02d}"
    if isinstance(schedule, Daily):
        if schedule.every == 1:
            return f"daily {at}, {start}"
        return f"every {schedule.every} days {at}, {start}"
    if isinstance(schedule, Weekly):
        every = f", every {schedule.every} weeks" if schedule.every > 1 else ""
        return f"weekly on {WEEKDAYS[schedule.weekday]} {at}{every}, {start}"
    assert isinstance(schedule, Monthly)
    every = f", every {schedule.every} months" if schedule.every > 1 else ""
    return f"monthly on day {schedule.day} {at}{every}, {start}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _duration(seconds: int) -> str:
    for suffix, size in (("w", WEEK), ("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def _describe_groups(texts: tuple[str, ...]) -> list[str]:
    """The entries of aws_log_groups by kind: names, prefixes, other accounts' groups."""
    entries = [parse_entry(text) for text in texts]
    names = [e.text for e in entries if isinstance(e, GroupName)]
    prefixes = [e for e in entries if isinstance(e, GroupPrefix)]
    arns = [e for e in entries if isinstance(e, GroupArn)]
    lines = []
    if names:
        lines.append(f"    log groups: {', '.join(names)}")
    for prefix in prefixes:
        what = f"starting with {prefix.prefix}" if prefix.prefix else "of the account"
        lines.append(f"    log groups {what}: {prefix.text} (listed in each region)")
    for arn in arns:
        lines.append(
            f"    log group {arn.name} of account {arn.account}, region {arn.region} "
            f"(cross-account, read by ARN; regions do not apply)"
        )
    return lines


def _describe_service(service: CloudWatchService) -> list[str]:
    """Lines describing one service; the secret key is never read here."""
    lines = [f"  cloudwatchlogs service at line {service.line}"]
    lines.extend(_describe_groups(service.log_groups))
    if service.regions:
        lines.append(f"    regions: {', '.join(service.regions)}")
    else:
        lines.append("    regions: all regions of the credentials' partition")
    if service.only_logs_after is None:
        lines.append("    only_logs_after: not set (first run starts at that day's 00:00 UTC)")
    else:
        lines.append(f"    only_logs_after: {service.only_logs_after.isoformat()}")
    if service.aws_profile is not None:
        source = f"profile {service.aws_profile}"
    elif service.access_key is not None:
        source = "static keys (deprecated)"
    else:
        source = "default chain"
    if service.iam_role_arn is not None:
        duration = f", {service.iam_role_duration} s sessions" if service.iam_role_duration else ""
        source = f"role ARN {service.iam_role_arn}{duration}, assumed with {source}"
    lines.append(f"    credentials: {source}")
    if service.sts_endpoint is not None:
        lines.append(f"    sts_endpoint: {service.sts_endpoint}")
    if service.service_endpoint is not None:
        lines.append(f"    service_endpoint: {service.service_endpoint}")
    if service.aws_account_id is not None:
        lines.append(f"    aws_account_id: {service.aws_account_id}")
    if service.aws_account_alias is not None:
        lines.append(f"    aws_account_alias: {service.aws_account_alias}")
    lines.append(f"    remove_log_streams: {_yes(service.remove_log_streams)}")
    if service.discard is None:
        lines.append("    discard: none")
    elif service.discard.field:
        lines.append(
            f"    discard: field {service.discard.field} matching "
            f"{service.discard.pattern.pattern!r} (a message that is not JSON: the whole message)"
        )
    else:
        lines.append(f"    discard: the message matching {service.discard.pattern.pattern!r}")
    return lines
