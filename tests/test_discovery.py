"""A service's entries in-process: prefixes listed at a bounded cost, groups that come and
go, and other accounts' groups by ARN, over the fake CloudWatch Logs and a real state file."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aws_wodle.config import CloudWatchService
from aws_wodle.errors import AccessDenied, RegionUnavailable
from aws_wodle.model import GroupInfo, GroupKey
from aws_wodle.poll.collector import ServicePass
from aws_wodle.poll.groups import GroupOptions, GroupRule, GroupRules
from aws_wodle.poll.pipeline import Context, Tally
from aws_wodle.store.state import StateStore
from support.fakelogs import FakeLogs, ListSink

ACCOUNT = "123456789012"
OTHER = "111122223333"
SHARED_ARN = f"arn:aws:logs:eu-west-1:{OTHER}:log-group:shared"
SETTLE = 10_000
MINUTE = 60_000


class Unlisted(FakeLogs):
    """A region whose credentials may not call DescribeLogGroups."""

    def log_groups(self, prefix: str) -> Iterator[GroupInfo]:  # noqa: ARG002 - refused
        raise AccessDenied(
            "access denied: the credentials' policy does not allow logs:DescribeLogGroups",
            "AccessDeniedException",
            "DescribeLogGroups",
        )


class Disabled(FakeLogs):
    """An opt-in region the account has not enabled."""

    def log_groups(self, prefix: str) -> Iterator[GroupInfo]:  # noqa: ARG002 - refused
        raise RegionUnavailable("the region refused the credentials", "OptInRequired", "Describe")


class FakeAccess:
    """The credentials of a service over fake regions sharing one AWS clock."""

    label = "fake-credentials"
    identity_lifetime = 3600.0

    def __init__(self, regions: dict[str, FakeLogs]) -> None:
        self.regions = regions
        self.clock = next(iter(regions.values()))

    key_id: str | None = "AKIAFAKEFAKEFAKE0001"
    asked = 0

    def caller_identity(self) -> tuple[str, str]:
        self.asked += 1
        return ACCOUNT, "aws"

    def credential_id(self) -> str | None:
        return self.key_id

    def aws_now(self) -> float:
        return self.clock.now / 1000

    def partition_regions(self, partition: str) -> list[str]:  # noqa: ARG002 - one partition
        return sorted(self.regions)

    def logs(self, region: str, budget: object = None) -> FakeLogs:  # noqa: ARG002 - unbudgeted
        return self.regions[region]

    def advance(self, ms: int) -> None:
        for logs in self.regions.values():
            logs.advance(ms)


class Rig:
    """One service over fake regions, a state file and a list sink: a cycle at a time."""

    def __init__(self, tmp: Path, groups: str, regions: dict[str, FakeLogs], **ctx: object) -> None:
        self.access = FakeAccess(regions)
        self.sink = ListSink()
        self.state = StateStore(tmp / "state.db", lock=False)
        self.ctx = Context(
            state=self.state,
            forwarder=self.sink,  # type: ignore[arg-type]
            settle=SETTLE / 1000,
            clock=self.access.aws_now,
            **ctx,  # type: ignore[arg-type]
        )
        self.service = CloudWatchService(
            line=3,
            log_groups=tuple(g.strip() for g in groups.split(",")),
            regions=("us-east-1",) if "us-east-1" in regions and len(regions) == 1 else (),
            only_logs_after=None,
            aws_account_id=ACCOUNT,
        )

    def cycle(self) -> Tally:
        self.access.advance(SETTLE + 1)
        return ServicePass(self.service, self.access, self.ctx).run()  # type: ignore[arg-type]

    def calls(self, operation: str) -> int:
        return sum(logs.calls[operation] for logs in self.access.regions.values())


def test_a_prefix_selects_its_groups_and_lists_them_at_most_every_discover_every(
    tmp_path: Path,
) -> None:
    """Every group with the prefix is read, no other; the listing (one DescribeLogGroups
    per 50 groups) is made again only once discover_every has passed, and then finds the
    group created meanwhile."""
    logs = FakeLogs()
    for i in range(120):
        logs.put(f"/aws/lambda/f{i:03d}", "s", logs.now - 1000, f"f{i:03d}")
    logs.put("/other", "s", logs.now - 1000, "other")
    rig = Rig(tmp_path, "/aws/lambda/*", {"us-east-1": logs}, discover_every=600.0)
    assert rig.cycle().failures == []
    assert logs.calls["DescribeLogGroups"] == 3
    assert sorted(rig.sink.messages()) == [f"f{i:03d}" for i in range(120)]
    logs.put("/aws/lambda/late", "s", logs.now, "late")
    logs.calls.clear()
    rig.access.advance(4 * MINUTE)
    rig.cycle()
    assert logs.calls["DescribeLogGroups"] == 0
    assert logs.calls["FilterLogEvents"] == 120
    assert "late" not in rig.sink.messages()
    rig.access.advance(6 * MINUTE)
    rig.cycle()
    assert logs.calls["DescribeLogGroups"] == 3
    assert rig.sink.messages().count("late") == 1


def test_a_group_new_under_a_prefix_is_collected_from_its_creation(tmp_path: Path) -> None:
    """A group created after the prefix's first listing starts at its creation: created
    before midnight (UTC) and found after it, none of its events is left out; a group there
    from the start begins, as any, at 00:00 UTC of the day it was first collected."""
    logs = FakeLogs()  # 2023-11-14 22:13:20 UTC
    logs.put("/aws/lambda/old", "s", logs.now - 3 * 3_600_000, "before the first day")
    rig = Rig(tmp_path, "/aws/lambda/*", {"us-east-1": logs})
    rig.cycle()
    assert rig.sink.messages() == ["before the first day"]  # 19:13, the same day
    logs.put("/aws/lambda/new", "s", logs.now, "created at 22:13")
    rig.access.advance(2 * 3_600_000)  # past midnight, past discover_every
    rig.cycle()
    assert rig.sink.messages() == ["before the first day", "created at 22:13"]


def test_a_group_that_disappears_ends_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A group deleted between listings: one line says so, no failure is counted, it is
    not asked again, and its position stays in the state."""
    logs = FakeLogs()
    logs.put("/aws/lambda/a", "s", logs.now - 1000, "a")
    logs.put("/aws/lambda/b", "s", logs.now - 1000, "b")
    rig = Rig(tmp_path, "/aws/lambda/*", {"us-east-1": logs})
    rig.cycle()
    logs.delete_group("/aws/lambda/a")
    caplog.set_level(logging.INFO)
    tallies = [rig.cycle() for _ in range(3)]
    rig.access.advance(11 * MINUTE)
    tallies += [rig.cycle() for _ in range(2)]
    assert [t.failures for t in tallies] == [[]] * 5
    gone = [r.getMessage() for r in caplog.records if "/aws/lambda/a" in r.getMessage()]
    assert len(gone) == 1
    assert "the group is gone; no longer read (its position is kept)" in gone[0]
    assert rig.state.cursor(GroupKey(ACCOUNT, "us-east-1", "/aws/lambda/a")) is not None
    assert sorted(rig.sink.messages()) == ["a", "b"]


def test_a_listing_refused_keeps_reading_what_was_listed(tmp_path: Path) -> None:
    """Without logs:DescribeLogGroups, each cycle counts a failure naming the permission,
    and the groups listed before are still read."""
    logs = FakeLogs()
    logs.put("/aws/lambda/a", "s", logs.now - 1000, "a")
    rig = Rig(tmp_path, "/aws/lambda/*", {"us-east-1": logs}, discover_every=0.0)
    rig.cycle()
    denied = Unlisted(now=logs.now, groups=logs.groups, group_created=logs.group_created)
    rig.access = FakeAccess({"us-east-1": denied})
    denied.put("/aws/lambda/a", "s", denied.now, "a2")
    tally = rig.cycle()
    assert len(tally.failures) == 1
    assert "add logs:DescribeLogGroups to the policy" in tally.failures[0]
    assert rig.sink.messages() == ["a", "a2"]


def test_without_regions_a_prefix_is_listed_everywhere_and_disabled_regions_skipped(
    tmp_path: Path,
) -> None:
    """No <regions>: each region of the partition is listed; one without the prefix's groups
    is no failure; a region not enabled is skipped and asked again only later."""
    east = FakeLogs()
    east.put("/aws/lambda/a", "s", east.now - 1000, "east")
    west = FakeLogs(region="eu-west-1", now=east.now)
    optin = Disabled(region="ap-east-2", now=east.now)
    rig = Rig(tmp_path, "/aws/lambda/*", {"us-east-1": east, "eu-west-1": west,
                                          "ap-east-2": optin}, discover_every=0.0)  # fmt: skip
    assert rig.cycle().failures == []
    assert rig.sink.messages() == ["east"]
    assert rig.state.absent_until(GroupKey(ACCOUNT, "ap-east-2", "/aws/lambda/*")) is not None
    assert rig.cycle().failures == []
    assert (east.calls["DescribeLogGroups"], west.calls["DescribeLogGroups"]) == (2, 2)


def test_a_group_named_and_found_by_a_prefix_is_read_once(tmp_path: Path) -> None:
    """An entry that names a group also found by a prefix: the group is read once a cycle."""
    logs = FakeLogs()
    logs.put("app", "s", logs.now - 1000, "once")
    rig = Rig(tmp_path, "app, ap*", {"us-east-1": logs})
    rig.cycle()
    assert rig.sink.messages() == ["once"]
    assert logs.calls["FilterLogEvents"] == 1


def test_an_arn_is_read_in_its_region_and_kept_under_its_account(tmp_path: Path) -> None:
    """A group of another account by ARN: read in the ARN's region whatever <regions>
    says, its state under the ARN's account, region and name; a [[group]] matching the ARN
    gives it the envelope, which names the source account and region."""
    east = FakeLogs()
    west = FakeLogs(region="eu-west-1", now=east.now)
    west.put(SHARED_ARN, "web-1", west.now - 1000, "from the source account")
    west.put("shared", "web-1", west.now - 1000, "a same-named group of ours")
    rules = GroupRules((GroupRule(SHARED_ARN, GroupOptions(envelope=True)),))
    rig = Rig(tmp_path, SHARED_ARN + ":*", {"us-east-1": east, "eu-west-1": west},
              group_rules=rules)  # fmt: skip
    rig.service = CloudWatchService(
        line=3, log_groups=(SHARED_ARN,), regions=("us-east-1",), only_logs_after=None,
        aws_account_id=ACCOUNT,
    )  # fmt: skip
    assert rig.cycle().failures == []
    [datagram] = rig.sink.received
    info = json.loads(datagram[len(b"1:Wazuh-AWS:") :])["aws"]["log_info"]
    assert (info["aws_account_id"], info["aws_region"], info["log_group"]) == (
        OTHER, "eu-west-1", "shared",
    )  # fmt: skip
    assert rig.state.cursor(GroupKey(OTHER, "eu-west-1", "shared")) is not None
    assert east.calls["FilterLogEvents"] == 0


def many_regions(count: int) -> dict[str, FakeLogs]:
    """The group in us-east-1 only, among ``count`` regions sharing one clock."""
    east = FakeLogs()
    east.put("app", "s", east.now - 1000, "east")
    regions: dict[str, FakeLogs] = {"us-east-1": east}
    for i in range(count - 1):
        regions[f"xx-region-{i:02d}"] = FakeLogs(region=f"xx-region-{i:02d}", now=east.now)
    return regions


def test_without_regions_an_idle_cycle_asks_one_region_lacking_the_group_at_most(
    tmp_path: Path,
) -> None:
    """No <regions>, the group in 1 of 34 regions, a cycle every 5 minutes for 8 hours:
    after the first, no cycle makes more than 2 calls (the group's read, one region lacking
    it); each such region is asked again, no sooner than an hour after the last time; STS is
    asked once for the whole run, the access key being the same."""
    regions = many_regions(34)
    rig = Rig(tmp_path, "app", regions)
    rig.service = replace(rig.service, aws_account_id="")
    rig.cycle()
    assert all(logs.calls["FilterLogEvents"] == 1 for logs in regions.values())
    asked: dict[str, list[int]] = {name: [0] for name in regions if name != "us-east-1"}
    per_cycle = []
    for minute in range(5, 8 * 60, 5):
        before = {name: sum(logs.calls.values()) for name, logs in regions.items()}
        rig.access.advance(5 * MINUTE - SETTLE - 1)
        assert rig.cycle().failures == []
        made = {name: sum(logs.calls.values()) - before[name] for name, logs in regions.items()}
        per_cycle.append(sum(made.values()))
        for name, count in made.items():
            if name != "us-east-1" and count:
                asked[name].append(minute)
    assert max(per_cycle) <= 2
    gaps = [b - a for times in asked.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 60
    assert all(len(times) >= 2 for times in asked.values())  # none forgotten
    assert rig.access.asked == 1
    assert rig.sink.messages() == ["east"]


def test_the_caller_identity_is_asked_again_only_for_other_credentials(tmp_path: Path) -> None:
    """With the same access key STS is asked once, across days and across a restart (a new
    state handle on the same file); a new key is asked once; credentials that do not say
    their key id are asked again after the identity's lifetime."""
    rig = Rig(tmp_path, "app", many_regions(2))
    rig.service = replace(rig.service, aws_account_id="")
    for _ in range(3):
        rig.cycle()
        rig.access.advance(24 * 3_600_000)
    assert rig.access.asked == 1
    rig.state.close()
    rig.state = StateStore(tmp_path / "state.db", lock=False)
    rig.ctx.state = rig.state
    rig.cycle()
    assert rig.access.asked == 1
    rig.access.key_id = "AKIAFAKEFAKEFAKE0002"
    rig.cycle()
    rig.cycle()
    assert rig.access.asked == 2
    rig.access.key_id = None
    rig.cycle()
    assert rig.access.asked == 2
    rig.access.advance(3_600_000)
    rig.cycle()
    assert rig.access.asked == 3
    rig.cycle()
    assert rig.access.asked == 3
