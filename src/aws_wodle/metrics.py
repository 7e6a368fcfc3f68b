"""Prometheus metrics on a loopback address: events, bytes, calls, throttles, lag, failures."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

from . import redact
from .budget import Budgets
from .metricserver import MetricServer, family, show
from .pipeline import LATENESS_BUCKETS, Tally
from .push.stats import PushStats
from .state import StateStore

log = logging.getLogger(__name__)


def parse_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` on a loopback address this host can bind (metrics are never exposed
    beyond the host): ``127.0.0.1:9101``, ``[::1]:9101`` or ``localhost:9101``. Returns
    the numeric address to bind, ``localhost`` resolved."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid metrics address '{text}': expected ADDR:PORT")
    if host == "localhost" and not bracketed:
        candidates = _localhost(text)
    else:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"metrics address '{text}' is not a loopback address") from None
        if bracketed != (ip.version == 6):
            raise ValueError(
                f"invalid metrics address '{text}': an IPv6 address goes in brackets "
                "([::1]:PORT), an IPv4 address without (127.0.0.1:PORT)"
            )
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # bound as the IPv4 address it stands for
        if not ip.is_loopback:
            raise ValueError(f"metrics address '{text}' is not a loopback address")
        candidates = [str(ip)]
    problems = []
    for candidate in candidates:
        problem = _bind_problem(candidate)
        if problem is None:
            return candidate, int(port)
        problems.append(f"{candidate}: {problem}")
    raise ValueError(
        f"metrics address '{text}' cannot be bound on this host ({'; '.join(problems)})"
    )


def _localhost(text: str) -> list[str]:
    """The addresses ``localhost`` resolves to, in the resolver's order; each must be a
    loopback address."""
    try:
        found = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"metrics address '{text}': cannot resolve localhost: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        if not ipaddress.ip_address(address.partition("%")[0]).is_loopback:
            raise ValueError(
                f"metrics address '{text}': localhost resolves to {address}, not a loopback address"
            )
    return addresses


def _bind_problem(host: str) -> str | None:
    """Why a socket of the address's family cannot bind it (on a port of the kernel's
    choice), or None when it can."""
    try:
        with socket.socket(family(host), socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


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
