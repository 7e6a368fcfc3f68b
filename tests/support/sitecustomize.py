"""Test-only: loaded by a Python started under libfaketime (PYTHONPATH=tests/support).

libfaketime 0.9.10 with a real monotonic clock (FAKETIME_DONT_FAKE_MONOTONIC=1, without
which threading's timed waits never return) makes CPython 3.11's ``time.sleep`` fail with
EINVAL: it sleeps with an absolute ``clock_nanosleep`` on the monotonic clock. Here
``time.sleep`` waits on ``select`` instead, against the real monotonic clock.
"""

from __future__ import annotations

import os
import select
import time

if os.environ.get("FAKETIME") is not None:
    _monotonic = time.monotonic

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = _monotonic() + seconds
        while True:
            left = deadline - _monotonic()
            if left <= 0:
                return
            select.select([], [], [], left)

    time.sleep = _sleep
