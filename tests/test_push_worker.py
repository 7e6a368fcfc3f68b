"""The push worker's coordinating loop in-process: an unexpected failure in one round is
logged and the round tried again, never the end of the source's collection."""

from __future__ import annotations

import logging
import threading

import pytest

from aws_wodle.push.leases import Lease
from aws_wodle.push.source import KinesisSource
from aws_wodle.push.worker import PushWorker


class Stumbling(PushWorker):
    """A worker whose lease table read fails unexpectedly once, then answers empty."""

    def __init__(self) -> None:
        source = KinesisSource(stream="s", region="us-east-1", lease_table="t", lease_period=3)
        super().__init__(source, lambda _s: (None, None), forwarder=None)  # type: ignore[arg-type]
        self.rounds = 0
        self.again = threading.Event()

    def _renew(self) -> None:
        pass

    def _observe(self) -> list[Lease]:
        self.rounds += 1
        if self.rounds == 1:
            raise KeyError("leaseCounter")  # an answer of a shape never seen
        self.again.set()
        return []

    def _sync_shards(self, leases: list[Lease]) -> list[Lease]:
        return leases

    def _balance(self, leases: list[Lease]) -> None:
        pass


def test_an_unexpected_failure_is_logged_and_the_round_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Stumbling()
    caplog.set_level(logging.ERROR)
    thread = threading.Thread(target=worker._loop, daemon=True)
    thread.start()
    try:
        assert worker.again.wait(10)
    finally:
        worker.stop_event.set()
        thread.join(10)
    assert not thread.is_alive()
    failures = [r for r in caplog.records if "unexpected failure" in r.getMessage()]
    assert len(failures) == 1
    assert "trying again in 1 s" in failures[0].getMessage()
