"""Cross-account reads: an aws_log_groups entry that is another account's log group ARN,
read through logGroupIdentifier from a monitoring account.

moto does not honour logGroupIdentifier across accounts (see tests/crossaccount.py): the
collector here talks to CrossAccountProxy, our translating double in front of moto, which
serves the source account's group to the monitoring account as AWS does, refuses an ARN of
another region than the request's, and records how each call named the group.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from conftest import Setup, now_ms, put, seed
from crossaccount import CrossAccountProxy

MONITORING = "123456789012"  # moto's account for the test credentials
SOURCE = "111122223333"
ARN = f"arn:aws:logs:eu-west-1:{SOURCE}:log-group:shared"


@pytest.fixture
def proxy(setup: Setup) -> Iterator[CrossAccountProxy]:
    server = CrossAccountProxy(setup.moto.url)
    yield server
    server.stop()


def source_client(setup: Setup) -> Any:
    """A client writing to the source account's groups in eu-west-1."""
    client = boto3.client(
        "logs",
        region_name="eu-west-1",
        endpoint_url=setup.moto.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def in_source_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = SOURCE

    client.meta.events.register("before-sign.logs.*", in_source_account)
    return client


def cursors(setup: Setup) -> list[tuple[str, str, str]]:
    with sqlite3.connect(setup.state) as db:
        rows = db.execute("SELECT account, region, log_group FROM cursors ORDER BY 1, 2, 3")
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_another_accounts_group_is_read_by_arn_in_its_region(
    setup: Setup, proxy: CrossAccountProxy
) -> None:
    """The ARN's group (in eu-west-1, while <regions> says us-east-1) is read through
    logGroupIdentifier, not a same-named group of the monitoring account; its state is kept
    under the source account and region; a second run sends only what is new, late events
    included, once."""
    source = source_client(setup)
    first = seed(source, "shared", {"web-1": ["s0", "s1"], "web-2": ["s2"]})
    seed(setup.moto.client(region="eu-west-1"), "shared", {"x": ["monitoring's own"]})
    seed(setup.moto.client(), "app", {"a": ["app0"]})
    service = setup.service(f"app, {ARN}:*").replace(setup.moto.url, proxy.url)
    conf = setup.config(service)
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(4)
    assert sorted(setup.sink.messages()) == ["app0", "s0", "s1", "s2"]
    assert cursors(setup) == [(SOURCE, "eu-west-1", "shared"), (MONITORING, "us-east-1", "app")]
    assert set(proxy.named("shared")) == {("FilterLogEvents", "arn")}
    put(source, "shared", "web-1", ["late"], first - 30_000)
    put(source, "shared", "web-2", ["s3"], now_ms())
    assert setup.once(conf).returncode == 0
    assert setup.once(conf).returncode == 0
    setup.sink.wait_for(6)
    assert sorted(setup.sink.messages()) == ["app0", "late", "s0", "s1", "s2", "s3"]


def test_an_arn_group_with_filterlogevents_denied_is_read_stream_by_stream(
    setup: Setup, proxy: CrossAccountProxy
) -> None:
    """Where FilterLogEvents is denied (remembered in the state), the ARN's streams are
    listed and read with DescribeLogStreams and GetLogEvents, by ARN too."""
    source = source_client(setup)
    seed(source, "shared", {"web-1": ["s0"], "web-2": ["s1"]})
    with sqlite3.connect(setup.state) as db:
        db.executescript(
            "CREATE TABLE IF NOT EXISTS filter_denied (account TEXT NOT NULL, region TEXT NOT "
            "NULL, log_group TEXT NOT NULL, PRIMARY KEY (account, region, log_group));"
        )
        db.execute("INSERT INTO filter_denied VALUES (?, 'eu-west-1', 'shared')", (SOURCE,))
    conf = setup.config(setup.service(ARN).replace(setup.moto.url, proxy.url))
    result = setup.once(conf)
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(2)
    assert sorted(setup.sink.messages()) == ["s0", "s1"]
    assert {op for op, how in proxy.named("shared")} == {"DescribeLogStreams", "GetLogEvents"}
    assert {how for op, how in proxy.named("shared")} == {"arn"}


def test_the_envelope_names_the_source_account_and_region(
    setup: Setup, proxy: CrossAccountProxy
) -> None:
    """A [[group]] matching the ARN with envelope = true: each event carries the source
    account and region, and the stream."""
    seed(source_client(setup), "shared", {"web-1": ["hello"]})
    settings = setup.folder / "aws-wodle.toml"
    settings.write_text(f'[[group]]\nmatch = "{ARN}"\nenvelope = true\n')
    conf = setup.config(setup.service(ARN).replace(setup.moto.url, proxy.url))
    result = setup.once(conf, "--settings", str(settings))
    assert result.returncode == 0, result.stderr
    setup.sink.wait_for(1)
    [datagram] = setup.sink.received
    aws = json.loads(datagram[len(b"1:Wazuh-AWS:") :])["aws"]
    assert aws["message"] == "hello"
    info = aws["log_info"]
    assert (info["aws_account_id"], info["aws_region"]) == (SOURCE, "eu-west-1")
    assert (info["log_group"], info["log_stream"]) == ("shared", "web-1")
    assert info["event_id"]


def test_the_double_refuses_an_arn_of_another_region(
    setup: Setup, proxy: CrossAccountProxy
) -> None:
    """The double is strict where AWS is: a call for an eu-west-1 ARN signed for us-east-1
    is refused (so the tests above show the collector reads in the ARN's region)."""
    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=proxy.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with pytest.raises(client.exceptions.InvalidParameterException, match="is in eu-west-1"):
        client.filter_log_events(logGroupIdentifier=ARN)
