"""One request budget per account and region: token buckets that back off when AWS throttles.

CloudWatch Logs' quotas are per account and region and shared by every client of the
account, so every thread and every wodle reading one account and region draws from the same
buckets. A throttle halves that operation's rate and makes every caller of the region wait
out a shared, jittered, growing pause (not each thread on its own schedule); successes then
raise the rate again slowly, up to the configured ceiling.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# Requests per second per account and region, from CloudWatch Logs' quota table:
# GetLogEvents 10, FilterLogEvents 5, DescribeLogStreams 5, DescribeLogGroups 5 (prefix
# listings), DeleteLogStream 5 (not listed among the read quotas; 5 keeps deletions gentle).
DEFAULT_RATES = {
    "GetLogEvents": 10.0,
    "FilterLogEvents": 5.0,
    "DescribeLogStreams": 5.0,
    "DescribeLogGroups": 5.0,
    "DeleteLogStream": 5.0,
}
# Never slow an operation below this, however often AWS throttles it.
MIN_RATE = 0.2
# Shared pause after a throttle: starts here, doubles per throttle in a row, capped.
FIRST_PAUSE = 0.25
MAX_PAUSE = 20.0
# Each success gives back this share of the ceiling, so a halved rate recovers in ~20 calls.
RECOVERY = 0.05


_EPSILON = 1e-9  # float dust must not make a full token look short of one
_MIN_SLEEP = 0.001


@dataclass
class _Bucket:
    ceiling: float
    rate: float
    tokens: float
    stamp: float


@dataclass
class RegionBudget:
    """The shared budget of one account and region."""

    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    calls: Counter[str] = field(default_factory=Counter)
    throttled_calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _paused_until: float = 0.0
    _streak: int = 0

    def _bucket(self, operation: str) -> _Bucket | None:
        bucket = self._buckets.get(operation)
        if bucket is None:
            ceiling = self.rates.get(operation)
            if ceiling is None or ceiling <= 0:
                return None
            bucket = _Bucket(ceiling, ceiling, max(ceiling, 1.0), self.clock())
            self._buckets[operation] = bucket
        return bucket

    def acquire(self, operation: str) -> float:
        """Wait until ``operation`` may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                delay = self._paused_until - now
                if delay <= 0:
                    bucket = self._bucket(operation)
                    if bucket is None:
                        return waited
                    bucket.tokens = min(
                        max(bucket.rate, 1.0), bucket.tokens + (now - bucket.stamp) * bucket.rate
                    )
                    bucket.stamp = now
                    if bucket.tokens >= 1.0 - _EPSILON:
                        bucket.tokens -= 1.0
                        return waited
                    delay = max(_MIN_SLEEP, (1.0 - bucket.tokens) / bucket.rate)
            self.sleep(delay)
            waited += delay

    def succeeded(self, operation: str) -> None:
        """A call went through: end the throttle streak and raise the rate a little."""
        with self._lock:
            self._streak = 0
            self.calls[operation] += 1
            bucket = self._bucket(operation)
            if bucket is not None and bucket.rate < bucket.ceiling:
                bucket.rate = min(bucket.ceiling, bucket.rate + bucket.ceiling * RECOVERY)

    def throttled(self, operation: str) -> float:
        """AWS throttled a call: halve its rate and pause every caller; returns the pause."""
        with self._lock:
            self.calls[operation] += 1
            self.throttled_calls[operation] += 1
            bucket = self._bucket(operation)
            if bucket is not None:
                bucket.rate = max(MIN_RATE, bucket.rate / 2)
                bucket.tokens = min(bucket.tokens, 0.0)
            pause = min(MAX_PAUSE, FIRST_PAUSE * 2.0**self._streak)
            pause *= 0.5 + self.rng.random() / 2
            self._streak += 1
            self._paused_until = max(self._paused_until, self.clock() + pause)
            return pause

    def set_rates(self, rates: dict[str, float]) -> None:
        """Change the ceilings: a rate above its new ceiling comes down to it at once."""
        with self._lock:
            self.rates = dict(rates)
            for operation, bucket in self._buckets.items():
                ceiling = self.rates.get(operation)
                if ceiling is None or ceiling <= 0:
                    continue
                bucket.ceiling = ceiling
                bucket.rate = min(bucket.rate, ceiling)

    def rate(self, operation: str) -> float | None:
        """The current rate of an operation (for logs and metrics)."""
        with self._lock:
            bucket = self._bucket(operation)
            return None if bucket is None else bucket.rate


class Budgets:
    """Every account and region's budget, created on first use, shared by all wodles."""

    def __init__(self, rates: dict[str, float] | None = None) -> None:
        self.rates = dict(DEFAULT_RATES, **(rates or {}))
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], RegionBudget] = {}

    def all(self) -> dict[tuple[str, str], RegionBudget]:
        """Every budget so far, by (account, region)."""
        with self._lock:
            return dict(self._budgets)

    def set_rates(self, rates: dict[str, float]) -> None:
        """New ceilings (a reload): budgets made from now on use them, and each existing
        budget's operations are capped at, or may grow back to, the new ceilings."""
        with self._lock:
            self.rates = dict(DEFAULT_RATES, **rates)
            budgets = list(self._budgets.values())
        for budget in budgets:
            budget.set_rates(self.rates)

    def get(self, account: str, region: str) -> RegionBudget:
        with self._lock:
            budget = self._budgets.get((account, region))
            if budget is None:
                budget = RegionBudget(rates=dict(self.rates))
                self._budgets[(account, region)] = budget
            return budget
