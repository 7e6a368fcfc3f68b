"""Prometheus metrics on a loopback address: events, bytes, calls, throttles, lag, failures."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .budget import Budgets
from .pipeline import LATENESS_BUCKETS, Tally
from .state import StateStore

log = logging.getLogger(__name__)


def parse_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` on a loopback address (metrics are never exposed beyond the host)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid metrics address '{text}': expected ADDR:PORT")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"metrics address '{text}' is not a loopback address")
    return host, int(port)


class Metrics:
    """Counters added up over cycles, and the live figures of budgets and state."""

    def __init__(self, budgets: Budgets, state: StateStore) -> None:
        self.budgets = budgets
        self.state = state
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

        with self._lock:
            for name, value, text in (
                ("events_forwarded", self.events, "Events forwarded to the manager."),
                ("bytes_forwarded", self.bytes, "Bytes of datagrams forwarded."),
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
        family("aws_wodle_api_calls_total", "counter", "CloudWatch Logs requests, by operation.")
        family("aws_wodle_throttles_total", "counter", "Requests answered ThrottlingException.")
        for (account, region), budget in sorted(budgets.items()):
            where = f'account="{_label(account)}",region="{_label(region)}"'
            for operation, count in sorted(budget.calls.items()):
                out.append(f'aws_wodle_api_calls_total{{{where},operation="{operation}"}} {count}')
            for operation, count in sorted(budget.throttled_calls.items()):
                out.append(f'aws_wodle_throttles_total{{{where},operation="{operation}"}} {count}')
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
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serve(address: tuple[str, int], render: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve ``render()`` at /metrics in a background thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics served at http://%s:%d/metrics", address[0], server.server_address[1])
    return server
