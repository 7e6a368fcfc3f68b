"""Which leases a worker takes next, from the leases as it last saw them; pure.

The rule is the Kinesis Client Library's. A lease is expired when it has no owner, or when
its counter (which its owner raises at every renewal) has not changed for longer than the
lease period by this worker's own monotonic clock: clocks of different hosts are never
compared. Live workers are the owners of unexpired leases, and this one. Each aims at
``ceil(leases / live workers)``; below that, a worker takes expired leases first, and when
there are none, steals one lease at a time from the most loaded worker, only when that
worker holds more than its share (or exactly its share while this one lacks two or more),
so that leases do not ping-pong between workers once balanced.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    """A lease as observed: its shard, owner (None: free) and counter."""

    key: str
    owner: str | None
    counter: int


@dataclass(frozen=True)
class Plan:
    """What to take: expired leases (a race for each is settled by a conditional write),
    and at most one lease to steal from a live worker."""

    take: tuple[Seen, ...] = ()
    steal: Seen | None = None

    @property
    def leases(self) -> tuple[Seen, ...]:
        return (*self.take, self.steal) if self.steal is not None else self.take


def expired(lease: Seen, changed_at: Mapping[str, float], now: float, period: float) -> bool:
    """Whether a lease may be taken: it has no owner, or its counter has not been seen to
    change for longer than ``period`` (a lease never seen before counts as changed now)."""
    if lease.owner is None:
        return True
    return now - changed_at.get(lease.key, now) > period


def _spread(me: str, key: str) -> bytes:
    # Each worker tries expired leases in its own order: fewer lost races when several
    # workers find the same expired leases at once.
    return hashlib.blake2b(f"{me}\0{key}".encode(), digest_size=8).digest()


def plan(
    leases: Sequence[Seen],
    changed_at: Mapping[str, float],
    now: float,
    period: float,
    me: str,
    *,
    held_elsewhere: Sequence[Seen] = (),
) -> Plan:
    """The leases ``me`` should take now (see the module). ``leases``: the leases to share
    (shards finished or waiting for their parents left out); ``changed_at``: when each
    lease's counter was last seen to change, on this worker's monotonic clock;
    ``held_elsewhere``: leases not to share (finished shards, still held), whose live
    owners count as workers, so that a worker between shards is not taken for gone."""
    if not leases:
        return Plan()
    dead = [
        lease for lease in leases if lease.owner != me and expired(lease, changed_at, now, period)
    ]
    dead_keys = {lease.key for lease in dead}
    counts: Counter[str] = Counter(
        lease.owner for lease in leases if lease.owner is not None and lease.key not in dead_keys
    )
    for lease in held_elsewhere:
        if lease.owner is not None and not expired(lease, changed_at, now, period):
            counts.setdefault(lease.owner, 0)
    counts.setdefault(me, 0)
    target = -(-len(leases) // len(counts))
    needed = target - counts[me]
    if needed <= 0:
        return Plan()
    if dead:
        dead.sort(key=lambda lease: (lease.owner is not None, _spread(me, lease.key)))
        return Plan(take=tuple(dead[:needed]))
    loads = [(count, owner) for owner, count in counts.items() if owner != me]
    if not loads:
        return Plan()
    most, victim = max(loads, key=lambda item: (item[0], item[1]))
    if most < target + (0 if needed > 1 else 1):
        return Plan()
    theirs = sorted(
        (lease for lease in leases if lease.owner == victim),
        key=lambda lease: _spread(me, lease.key),
    )
    return Plan(steal=theirs[0])
