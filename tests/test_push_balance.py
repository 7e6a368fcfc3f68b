"""Which leases a worker takes (push.balance), in-process, with a hand-held clock."""

from __future__ import annotations

from aws_wodle.push.balance import Seen, expired, plan

PERIOD = 10.0


def leases(owners: dict[str, str | None]) -> list[Seen]:
    return [Seen(key, owner, 5) for key, owner in owners.items()]


def test_free_leases_are_taken_up_to_the_share() -> None:
    """Alone, a worker takes every free lease."""
    chosen = plan(leases({"s0": None, "s1": None, "s2": None}), {}, 100.0, PERIOD, "me")
    assert sorted(lease.key for lease in chosen.take) == ["s0", "s1", "s2"]
    assert chosen.steal is None


def test_a_live_owner_is_not_taken_from_while_renewing() -> None:
    """Leases whose counters moved within the period belong to live workers."""
    seen = leases({"s0": "a", "s1": "b"})
    changed = {"s0": 95.0, "s1": 95.0}
    chosen = plan(seen, changed, 100.0, PERIOD, "me")
    assert chosen.leases == ()  # 2 leases, 3 workers: ceil(2/3) = 1, but no one holds 2


def test_expired_leases_go_first_and_only_up_to_the_share() -> None:
    """A dead worker's leases (counters still for a period) are taken, up to the share."""
    seen = leases({"s0": "dead", "s1": "dead", "s2": "live", "s3": "live"})
    changed = {"s0": 80.0, "s1": 80.0, "s2": 99.0, "s3": 99.0}
    chosen = plan(seen, changed, 100.0, PERIOD, "me")
    # Live workers: "live" and me; 4 leases: a share of 2, both from the dead worker.
    assert sorted(lease.key for lease in chosen.take) == ["s0", "s1"]
    assert chosen.steal is None


def test_a_lease_seen_for_the_first_time_is_not_expired() -> None:
    """A worker that just started waits a full period before judging a counter still."""
    lease = Seen("s0", "other", 3)
    assert not expired(lease, {}, 100.0, PERIOD)
    assert expired(lease, {"s0": 89.0}, 100.0, PERIOD)
    assert not expired(lease, {"s0": 90.5}, 100.0, PERIOD)
    assert expired(Seen("s0", None, 3), {"s0": 100.0}, 100.0, PERIOD)


def test_steals_one_lease_from_the_most_loaded_worker() -> None:
    """With nothing expired, a worker below its share steals one lease at a time."""
    seen = leases({"s0": "a", "s1": "a", "s2": "a", "s3": "b"})
    changed = dict.fromkeys(("s0", "s1", "s2", "s3"), 99.0)
    chosen = plan(seen, changed, 100.0, PERIOD, "me")
    assert chosen.take == ()
    assert chosen.steal is not None
    assert chosen.steal.owner == "a"


def test_balanced_workers_do_not_ping_pong() -> None:
    """4 leases on 3 workers settle at 2, 1, 1: nobody steals from that."""
    seen = leases({"s0": "a", "s1": "a", "s2": "b", "s3": "c"})
    changed = dict.fromkeys(("s0", "s1", "s2", "s3"), 99.0)
    for me in ("a", "b", "c"):
        assert plan(seen, changed, 100.0, PERIOD, me).leases == ()


def test_an_idle_worker_lacking_two_steals_from_a_worker_at_its_share() -> None:
    """2, 2, 0: the idle worker (share 2, lacking 2) steals one; then 1, 2, 1 is stable."""
    seen = leases({"s0": "a", "s1": "a", "s2": "b", "s3": "b"})
    changed = dict.fromkeys(("s0", "s1", "s2", "s3"), 99.0)
    chosen = plan(seen, changed, 100.0, PERIOD, "c")
    assert chosen.steal is not None
    after = {lease.key: lease.owner for lease in seen}
    after[chosen.steal.key] = "c"
    again = leases(after)
    for me in ("a", "b", "c"):
        assert plan(again, changed, 100.0, PERIOD, me).leases == ()


def test_simulated_workers_converge_and_cover_every_lease() -> None:
    """Workers applying the plan in turns end with every lease held, none more than its
    share, whatever the order: 7 leases over 3 workers."""
    owners: dict[str, str | None] = {f"s{i}": None for i in range(7)}
    changed: dict[str, float] = {}
    workers = ["a", "b", "c"]
    for step in range(30):
        me = workers[step % 3]
        chosen = plan(leases(owners), changed, float(step), PERIOD, me)
        for lease in chosen.leases:
            owners[lease.key] = me
            changed[lease.key] = float(step)
        for key in owners:
            changed.setdefault(key, float(step))
    counts = {w: sum(1 for o in owners.values() if o == w) for w in workers}
    assert sum(counts.values()) == 7
    assert max(counts.values()) == 3
    assert min(counts.values()) == 2


def test_a_worker_holding_only_finished_shards_counts_as_live() -> None:
    """After a split, a worker whose parent shard ended holds no shard to read, but its
    finished lease (still renewed) keeps it among the live: the children are shared."""
    children = leases({"c0": None, "c1": None, "c2": None, "c3": None})
    finished = [Seen("p0", "me", 9), Seen("p1", "other", 9)]
    changed = {"p0": 99.0, "p1": 99.0}
    alone = plan(children, changed, 100.0, PERIOD, "me")
    shared = plan(children, changed, 100.0, PERIOD, "me", held_elsewhere=finished)
    assert len(alone.take) == 4
    assert len(shared.take) == 2
    # A finished lease whose owner stopped renewing does not count.
    assert len(plan(children, {"p1": 80.0}, 100.0, PERIOD, "me", held_elsewhere=finished).take) == 4
