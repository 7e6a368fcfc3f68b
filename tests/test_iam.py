"""Least privilege, for real: moto enforcing IAM on the documented policies' actions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import MotoServer, Setup, Sink, cli_env, seed

# The read-only policy of our users' documentation, and ours, which adds FilterLogEvents.
READ_ONLY = ["logs:DescribeLogStreams", "logs:GetLogEvents"]
RECOMMENDED = [*READ_ONLY, "logs:FilterLogEvents"]
WITH_DELETE = [*RECOMMENDED, "logs:DeleteLogStream"]


def policy(actions: list[str]) -> str:
    # moto authorizes CloudWatch Logs calls against "*" only (see cloudwatch-facts.md).
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
    )


class IamWorld:
    """A moto server that enforces IAM, with an admin, a reader and a remover user."""

    def __init__(self) -> None:
        self.server = MotoServer({"INITIAL_NO_AUTH_ACTION_COUNT": "100000"})
        iam = self.server.client("iam")
        self.keys: dict[str, dict[str, str]] = {}
        users = (
            ("admin", ["*"]),
            ("reader", READ_ONLY),
            ("filterer", RECOMMENDED),
            ("remover", WITH_DELETE),
        )
        for user, actions in users:
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy(actions))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            self.keys[user] = {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
        self.server.post("/moto-api/reset-auth", b"0")

    def client(self, user: str) -> Any:
        key = self.keys[user]
        return self.server.client(
            "logs", aws_access_key_id=key["id"], aws_secret_access_key=key["secret"]
        )

    def credentials_file(self, folder: Path) -> Path:
        path = folder / "credentials"
        path.write_text(
            "".join(
                f"[{user}]\naws_access_key_id = {k['id']}\naws_secret_access_key = {k['secret']}\n"
                for user, k in self.keys.items()
            )
        )
        return path


@pytest.fixture(scope="module")
def iam_world() -> Iterator[IamWorld]:
    world = IamWorld()
    yield world
    world.server.stop()


@pytest.fixture
def iam_setup(
    tmp_path: Path, sink: Sink, iam_world: IamWorld
) -> tuple[Setup, IamWorld, dict[str, str]]:
    env = cli_env(AWS_SHARED_CREDENTIALS_FILE=str(iam_world.credentials_file(tmp_path)))
    # No default keys: only the configured profile may be used.
    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    return Setup(tmp_path, sink, iam_world.server), iam_world, env


def test_enforcement_is_on(iam_world: IamWorld) -> None:
    """The reader really is refused what its policy lacks (so the tests below mean something)."""
    with pytest.raises(Exception, match="not authorized"):
        iam_world.client("reader").create_log_group(logGroupName="nope")


def test_read_only_policy_collects(iam_setup: tuple[Setup, IamWorld, dict[str, str]]) -> None:
    """DescribeLogStreams and GetLogEvents alone are enough to collect, through a profile."""
    setup, world, env = iam_setup
    seed(world.client("admin"), "ro-app", {"s1": ["r1", "r2"], "s2": ["r3"]})
    conf = setup.config(setup.service("ro-app", aws_profile="reader"))
    result = setup.once(conf, env=env)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(3)
    assert sorted(setup.sink.messages()) == ["r1", "r2", "r3"]


def test_recommended_policy_reads_the_group_whole(
    iam_setup: tuple[Setup, IamWorld, dict[str, str]],
) -> None:
    """With logs:FilterLogEvents added, the group is read whole, with no fallback."""
    setup, world, env = iam_setup
    seed(world.client("admin"), "rec-app", {f"s{i}": [f"f{i}"] for i in range(5)})
    conf = setup.config(setup.service("rec-app", aws_profile="filterer"))
    result = setup.once(conf, env=env)
    assert result.returncode == 0, result.stderr
    assert "FilterLogEvents is not allowed" not in result.stderr
    setup.sink.wait_for(5)
    assert sorted(setup.sink.messages()) == [f"f{i}" for i in range(5)]


def test_removal_without_delete_permission_names_it(
    iam_setup: tuple[Setup, IamWorld, dict[str, str]],
) -> None:
    """With remove_log_streams but no DeleteLogStream, events still arrive, streams stay,
    and the error names the missing permission."""
    setup, world, env = iam_setup
    admin = world.client("admin")
    seed(admin, "ro-remove", {"s1": ["d1"], "s2": ["d2"]})
    conf = setup.config(setup.service("ro-remove", aws_profile="reader", remove_log_streams="yes"))
    result = setup.once(conf, "--remove-idle", "0", env=env)
    assert result.returncode == 1
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["d1", "d2"]
    assert "logs:DeleteLogStream" in result.stderr
    assert len(admin.describe_log_streams(logGroupName="ro-remove")["logStreams"]) == 2


def test_deletion_policy_removes_streams(
    iam_setup: tuple[Setup, IamWorld, dict[str, str]],
) -> None:
    """With the deletion policy, collected idle streams are removed."""
    setup, world, env = iam_setup
    admin = world.client("admin")
    seed(admin, "rm-app", {"s1": ["e1"], "s2": ["e2"]})
    conf = setup.config(setup.service("rm-app", aws_profile="remover", remove_log_streams="yes"))
    result = setup.once(conf, "--remove-idle", "0", env=env)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["e1", "e2"]
    assert admin.describe_log_streams(logGroupName="rm-app")["logStreams"] == []


def test_filter_denied_falls_back_to_each_stream_and_remembers(
    iam_setup: tuple[Setup, IamWorld, dict[str, str]],
) -> None:
    """Without logs:FilterLogEvents, many small streams are read one by one, with one
    informative line, and the next run does not ask for FilterLogEvents again."""
    setup, world, env = iam_setup
    admin = world.client("admin")
    seed(admin, "ro-many", {f"s{i:02d}": [f"m{i}"] for i in range(15)})
    conf = setup.config(setup.service("ro-many", aws_profile="reader"))
    result = setup.once(conf, env=env)
    assert result.returncode == 0, result.stderr
    notes = [
        line for line in result.stderr.splitlines() if "FilterLogEvents is not allowed" in line
    ]
    assert len(notes) == 1
    assert "ERROR" not in result.stderr
    setup.sink.wait_for(15)
    assert sorted(setup.sink.messages()) == sorted(f"m{i}" for i in range(15))
    seed(admin, "ro-many", {f"t{i:02d}": [f"n{i}"] for i in range(15)})
    again = setup.once(conf, env=env)
    assert again.returncode == 0, again.stderr
    assert "FilterLogEvents" not in again.stderr
    setup.sink.wait_for(30)
    assert len(setup.sink.received) == 30
