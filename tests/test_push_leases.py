"""The lease table on moto's DynamoDB (push.leases, push.shards): conditional writes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from aws_wodle.push.leases import SHARD_END, TRIM_HORIZON, Lease, LeaseLost, LeaseTable
from aws_wodle.push.reader import Held
from aws_wodle.push.shards import Shard, add_new, gone, list_shards, ready
from pushsupport import PushMoto


def table(push: PushMoto, name: str = "leases") -> LeaseTable:
    return LeaseTable(push.client("dynamodb"), name)


def all_refused(*writes: Callable[[], object]) -> None:
    for write in writes:
        with pytest.raises(LeaseLost):
            write()


def test_table_is_created_once_on_demand(push: PushMoto) -> None:
    """The first worker creates the table (on-demand billing); later ones find it ACTIVE."""
    assert table(push).ensure() is True
    assert table(push).ensure() is False
    described = push.client("dynamodb").describe_table(TableName="leases")["Table"]
    assert described["TableStatus"] == "ACTIVE"
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_a_lease_is_created_once_free_from_the_start(push: PushMoto) -> None:
    """A new shard's lease is free, read from TRIM_HORIZON, with its parents."""
    leases = table(push)
    leases.ensure()
    assert leases.create("shardId-2", ["shardId-0", "shardId-1"]) is True
    assert leases.create("shardId-2") is False
    assert leases.leases() == [
        Lease("shardId-2", None, 0, TRIM_HORIZON, ("shardId-0", "shardId-1"), 0)
    ]


def test_two_workers_racing_for_a_lease_exactly_one_wins(push: PushMoto) -> None:
    """Two workers that observed the same free lease both try to take it, at once, 30
    times over: each time exactly one of them holds it."""
    first, second = table(push), table(push)
    first.ensure()
    keys = [f"shardId-{i:03d}" for i in range(30)]
    for key in keys:
        first.create(key)
    observed = first.leases()
    wins: dict[str, list[str]] = {key: [] for key in keys}
    barrier = threading.Barrier(2)

    def race(leases: LeaseTable, me: str) -> None:
        for lease in observed:
            barrier.wait()
            try:
                leases.take(lease, me)
                wins[lease.key].append(me)
            except LeaseLost:
                pass

    threads = [
        threading.Thread(target=race, args=(first, "a")),
        threading.Thread(target=race, args=(second, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(len(winners) == 1 for winners in wins.values()), wins
    owners = {lease.key: lease.owner for lease in first.leases()}
    assert owners == {key: winners[0] for key, winners in wins.items()}


def test_a_lease_taken_away_refuses_its_old_owner(push: PushMoto) -> None:
    """Once another worker took the lease, the old owner's renewal, checkpoint and release
    all fail, and the checkpoint stays where the new owner found it."""
    leases = table(push)
    leases.ensure()
    leases.create("s")
    mine = leases.take(leases.leases()[0], "a")
    mine = leases.checkpoint(mine, "a", "49000000000000000001")
    assert mine.counter == 1  # a checkpoint does not move the counter
    mine = leases.renew(mine, "a")
    assert mine.counter == 2
    theirs = leases.take(leases.leases()[0], "b")
    assert (theirs.owner, theirs.counter, theirs.owner_switches) == ("b", 3, 2)
    all_refused(
        lambda: leases.renew(mine, "a"),
        lambda: leases.checkpoint(mine, "a", "49000000000000000099"),
        lambda: leases.release(mine, "a"),
    )
    assert leases.leases()[0].checkpoint == "49000000000000000001"
    # A take from an outdated observation fails too.
    with pytest.raises(LeaseLost):
        leases.take(mine, "c")
    freed = leases.release(theirs, "b")
    assert freed.owner is None
    assert leases.take(freed, "c").owner == "c"


def test_a_batch_is_sent_only_under_a_lease_renewed_within_half_a_period(push: PushMoto) -> None:
    """Before a batch goes out, a lease last renewed more than half a period ago is renewed
    by the reader itself; one taken meanwhile by another worker refuses that renewal, and
    the batch is not sent."""
    leases = table(push)
    leases.ensure()
    leases.create("s")
    now = [100.0]
    held = Held(leases, leases.take(leases.leases()[0], "a"), "a", period=3.0, clock=lambda: now[0])
    counter = held.lease.counter
    now[0] += 1.5  # half a period: still fresh
    held.fresh()
    assert held.lease.counter == counter
    now[0] += 0.1
    held.fresh()
    assert held.lease.counter == counter + 1
    assert held.renewed_at == now[0]
    leases.take(leases.leases()[0], "b")  # taken over as expired by another worker
    now[0] += 2.0
    with pytest.raises(LeaseLost):
        held.fresh()
    assert held.lost.is_set()


def test_a_lease_asked_for_is_handed_over_only_by_its_owner(push: PushMoto) -> None:
    """A worker asks for a lease held by another: the owner sees the request at its next
    write and hands the lease over, counter and switches raised; the old owner can write
    no more. One request at a time; none of a free lease; a take drops a request."""
    leases = table(push)
    leases.ensure()
    leases.create("s")
    mine = leases.take(leases.leases()[0], "a")
    mine = leases.checkpoint(mine, "a", "49000000000000000001")
    with pytest.raises(LeaseLost):
        leases.hand_over(mine, "a")  # nobody asked
    asked = leases.request(leases.leases()[0], "b")
    assert (asked.owner, asked.wanted_by, asked.counter) == ("a", "b", mine.counter)
    with pytest.raises(LeaseLost):
        leases.request(leases.leases()[0], "c")  # b asked first
    mine = leases.renew(mine, "a")  # the request does not disturb the owner's writes
    assert mine.wanted_by == "b"
    with pytest.raises(LeaseLost):
        leases.hand_over(mine, "b")  # only the owner hands over
    given = leases.hand_over(mine, "a")
    assert (given.owner, given.wanted_by) == ("b", None)
    assert (given.counter, given.owner_switches) == (mine.counter + 1, 2)
    assert given.checkpoint == "49000000000000000001"
    all_refused(
        lambda: leases.renew(mine, "a"),
        lambda: leases.checkpoint(mine, "a", "49000000000000000099"),
        lambda: leases.hand_over(mine, "a"),
    )
    theirs = leases.take(leases.leases()[0], "b")
    leases.request(theirs, "c")
    freed = leases.release(leases.renew(theirs, "b"), "b")
    assert (freed.owner, freed.wanted_by) == (None, None)
    with pytest.raises(LeaseLost):
        leases.request(freed, "c")  # nobody to ask
    leases.request(leases.take(freed, "d"), "c")
    taken = leases.take(leases.leases()[0], "c")
    assert (taken.owner, taken.wanted_by) == ("c", None)


def test_parents_first_and_finished_leases_removed(push: PushMoto) -> None:
    """A child is ready once every parent is at SHARD_END or gone from the stream; a
    finished lease of a shard gone is deleted, and nothing else."""
    kinesis = push.client("kinesis")
    kinesis.create_stream(StreamName="s", ShardCount=2)
    leases = table(push)
    leases.ensure()
    shards = list_shards(kinesis, "s")
    assert [shard.id for shard in shards] == ["shardId-000000000000", "shardId-000000000001"]
    assert add_new(leases, shards, set()) == [shard.id for shard in shards]
    assert add_new(leases, shards, set()) == []
    kinesis.merge_shards(
        StreamName="s",
        ShardToMerge="shardId-000000000000",
        AdjacentShardToMerge="shardId-000000000001",
    )
    shards = list_shards(kinesis, "s")
    child = next(shard for shard in shards if shard.parents)
    assert child == Shard(
        "shardId-000000000002", ("shardId-000000000000", "shardId-000000000001"), False
    )
    assert [shard.closed for shard in shards] == [True, True, False]
    add_new(leases, shards, {lease.key for lease in leases.leases()})
    listed = {shard.id for shard in shards}
    by_key = {lease.key: lease for lease in leases.leases()}
    assert not ready(by_key[child.id], by_key, listed)
    for key in ("shardId-000000000000", "shardId-000000000001"):
        held = leases.take(by_key[key], "a")
        leases.checkpoint(held, "a", SHARD_END)
    by_key = {lease.key: lease for lease in leases.leases()}
    assert ready(by_key[child.id], by_key, listed)
    # The first parent has aged out of the stream: its lease goes, and the child stays ready.
    listed.discard("shardId-000000000000")
    finished = gone(by_key.values(), listed)
    assert [lease.key for lease in finished] == ["shardId-000000000000"]
    assert leases.delete(finished[0]) is True
    assert leases.delete(by_key[child.id]) is False  # not finished: kept
    by_key = {lease.key: lease for lease in leases.leases()}
    assert ready(by_key[child.id], by_key, listed)
