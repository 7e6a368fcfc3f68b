"""AWS's clock as the client sees it: the host's clock corrected by the answers' ``Date``.

Ingestion times, and so the fences of every read, are on AWS's clock; the host's can be
wrong by any amount. Each answer's HTTP ``Date`` (whole seconds) was written between the
request's sending and the answer's arrival, which bounds the host's offset from AWS:
``date - received <= offset <= date + 1 s - sent``. The offset kept is the last one moved
just enough to fall within the newest such bounds, so a right host clock stays exact and a
wrong one is corrected to within a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

_DATE_RESOLUTION_MS = 1000


class ServerClock:
    """Thread-safe estimate of AWS's clock (ms since the epoch)."""

    def __init__(self, host: Callable[[], float] = time.time) -> None:
        self._host = host
        self._offset_ms = 0
        self._lock = threading.Lock()

    def host_ms(self) -> int:
        return int(self._host() * 1000)

    def now_ms(self) -> int:
        """AWS's clock now."""
        with self._lock:
            return self.host_ms() + self._offset_ms

    def at(self, host_ms: int) -> int:
        """AWS's clock at a moment of the host's clock."""
        with self._lock:
            return host_ms + self._offset_ms

    def observe(self, date: str | None, sent_ms: int, received_ms: int) -> None:
        """Learn from one answer's ``Date`` header, for a request sent and answered at
        these host times."""
        if not date:
            return
        try:
            server_ms = int(parsedate_to_datetime(date).timestamp() * 1000)
        except (TypeError, ValueError, OverflowError):
            return
        low = server_ms - received_ms
        high = server_ms + _DATE_RESOLUTION_MS - sent_ms
        if low > high:
            return
        with self._lock:
            self._offset_ms = min(max(self._offset_ms, low), high)
