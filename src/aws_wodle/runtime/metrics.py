"""Prometheus metrics on a loopback address: events, bytes, calls, throttles, lag, failures."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from .. import redact
from ..aws.budget import Budgets
from ..poll.pipeline import LATENESS_BUCKETS, Tally
from ..push.stats import PushStats
from ..store.state import StateStore
from .metricserver import MetricServer, show

log = logging.getLogger(__name__)


class Metrics:
    """Counters added up over cycles, and the live figures of budgets and state."""

    def __init__(self, budgets: Budgets, state: StateStore, push: PushStats | None = None) -> None:
        self.budgets = budgets
        self.state = state
        self.push = push
        self._lock = threading.Lock()
        self.events = 0
        self.bytes = 0
        self.discarded = 0
        self.truncated = 0
        self.deleted = 0
        self.cycles = 0
        self.failures: Counter[str] = Counter()
        self.lateness: Counter[float] = Counter()

    def add_cycle(self, tally: Tally) -> None:
        with self._lock:
            self.events += tally.events
            self.bytes += tally.bytes
            self.discarded += tally.discarded
            self.truncated += tally.truncated
            self.deleted += tally.deleted
            self.cycles += 1
            self.failures.update(tally.reasons)
            self.lateness.update(tally.lateness)

    def render(self) -> str:
        """The metrics in Prometheus' text format."""
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        pushed_events, pushed_bytes = self.push.totals() if self.push else (0, 0)
        with self._lock:
            for name, (poll, push), text in (
                (
                    "events_forwarded",
                    (self.events, pushed_events),
                    "Events forwarded to the manager, by source (poll: the aws-s3 wodles, push: "
                    "the [[kinesis]] sources).",
                ),
                (
                    "bytes_forwarded",
                    (self.bytes, pushed_bytes),
                    "Bytes of datagrams forwarded, by source.",
                ),
            ):
                family(f"aws_wodle_{name}_total", "counter", text)
                out.append(f'aws_wodle_{name}_total{{source="poll"}} {poll}')
                out.append(f'aws_wodle_{name}_total{{source="push"}} {push}')
            for name, value, text in (
                ("events_discarded", self.discarded, "Events dropped by discard_regex."),
                ("events_truncated", self.truncated, "Events cut to the manager's limit."),
                ("streams_deleted", self.deleted, "Log streams deleted."),
                ("cycles", self.cycles, "Collection cycles run."),
            ):
                family(f"aws_wodle_{name}_total", "counter", text)
                out.append(f"aws_wodle_{name}_total {value}")
            family("aws_wodle_failures_total", "counter", "Failed collections, by reason.")
            for reason, count in sorted(self.failures.items()):
                out.append(f'aws_wodle_failures_total{{reason="{_label(reason)}"}} {count}')
            family(
                "aws_wodle_event_lateness_seconds",
                "histogram",
                "How long after its timestamp each forwarded event was ingested; events later "
                "than --lookback are not seen, so a tail near it means: raise --lookback.",
            )
            total = 0
            for bound in (*LATENESS_BUCKETS, float("inf")):
                total += self.lateness.get(bound, 0)
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                out.append(f'aws_wodle_event_lateness_seconds_bucket{{le="{le}"}} {total}')
            out.append(f"aws_wodle_event_lateness_seconds_count {total}")
        budgets = self.budgets.all()
        where = {key: f'account="{_label(key[0])}",region="{_label(key[1])}"' for key in budgets}
        family("aws_wodle_api_calls_total", "counter", "CloudWatch Logs requests, by operation.")
        for key, budget in sorted(budgets.items()):
            for operation, count in sorted(budget.calls.items()):
                out.append(
                    f'aws_wodle_api_calls_total{{{where[key]},operation="{operation}"}} {count}'
                )
        family("aws_wodle_throttles_total", "counter", "Requests answered ThrottlingException.")
        for key, budget in sorted(budgets.items()):
            for operation, count in sorted(budget.throttled_calls.items()):
                out.append(
                    f'aws_wodle_throttles_total{{{where[key]},operation="{operation}"}} {count}'
                )
        family(
            "aws_wodle_lag_seconds",
            "gauge",
            "How far each group's collection is behind now (the last fence's age).",
        )
        for account, region, group, lag in self.state.group_lags(int(time.time() * 1000)):
            labels = (
                f'account="{_label(account)}",region="{_label(region)}",group="{_label(group)}"'
            )
            out.append(f"aws_wodle_lag_seconds{{{labels}}} {lag / 1000:.3f}")
        family(
            "aws_wodle_events_held",
            "gauge",
            "Events each group's last read saw ingested inside the --settle margin and left "
            "for the next read.",
        )
        for account, region, group, held in self.state.group_held():
            labels = (
                f'account="{_label(account)}",region="{_label(region)}",group="{_label(group)}"'
            )
            out.append(f"aws_wodle_events_held{{{labels}}} {held}")
        if self.push is not None:
            self.push.render(out, family, _label)
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    """A label value, masked and escaped as Prometheus' text format asks."""
    value = redact.mask(value)
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serve(address: tuple[str, int], render: Callable[[], str]) -> MetricServer:
    """Serve ``render()`` at /metrics in a background thread; returns the server."""
    server = MetricServer(address, render)
    server.start()
    log.info("metrics served at http://%s/metrics", show((address[0], server.server_address[1])))
    return server
