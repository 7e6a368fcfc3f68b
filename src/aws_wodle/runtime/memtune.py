"""The C allocator's settings for a collector that handles pages of a few megabytes.

A FilterLogEvents page of 10,000 events arrives as one body of about 3 MB, decoded once
more as text. glibc serves blocks that large from the heap once it has seen a few freed,
and keeps that heap resident afterwards, so the collector's peak would follow the largest
page it ever read. With a fixed mmap threshold every block of 128 KiB or more is mapped on
its own and given back to the system as soon as it is freed.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# mallopt's parameter number for the mmap threshold (malloc.h), and the value: glibc's own
# default, which setting it explicitly keeps from rising.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold; False (and nothing changed) on another C library."""
    try:
        # The running program's own symbols, the C library's among them.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    log.debug("mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD_BYTES, done)
    return done
