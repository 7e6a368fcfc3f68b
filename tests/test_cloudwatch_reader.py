"""The FilterLogEvents reader against a real moto server: what a page holds, and what it
keeps in memory."""

from __future__ import annotations

from aws_wodle.cloudwatch import AwsAccess
from aws_wodle.config import CloudWatchService
from conftest import MotoServer, seed

GROUP = "reader-group"


def test_a_page_keeps_event_ids_only_when_asked_and_one_string_per_stream(
    moto: MotoServer,
) -> None:
    """Without ``ids`` every event's id is empty and nothing else changes; with them (the
    envelope's case) each event has moto's id; the events of one stream share one name
    string."""
    seed(moto.client("logs"), GROUP, {"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2"]})
    service = CloudWatchService(
        line=1,
        log_groups=(GROUP,),
        regions=("us-east-1",),
        only_logs_after=None,
        access_key="testing",
        secret_key="testing",
        service_endpoint=moto.url,
    )
    logs = AwsAccess(service).logs("us-east-1")
    with_ids = logs.filter(GROUP, start=0).events
    without = logs.filter(GROUP, start=0, ids=False).events
    assert sorted(e.message for e in with_ids) == ["a1", "a2", "a3", "b1", "b2"]
    assert all(e.event_id for e in with_ids)
    assert [e.event_id for e in without] == [""] * 5
    assert [e._replace(event_id="") for e in with_ids] == without
    alphas = [e.stream for e in without if e.stream == "alpha"]
    assert len(alphas) == 3
    assert all(name is alphas[0] for name in alphas)
