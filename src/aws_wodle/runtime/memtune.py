"""Memory settings for a collector that handles pages of a few megabytes.

A FilterLogEvents page of 10,000 events arrives as one body of about 3 MB, decoded once
more as text. glibc serves blocks that large from the heap once it has seen a few freed,
and keeps that heap resident afterwards, so the collector's peak would follow the largest
page it ever read. With a fixed mmap threshold every block of 128 KiB or more is mapped on
its own and given back to the system as soon as it is freed.

Python's cyclic garbage collector walks every container object at each full collection, and
again when the interpreter exits. What start-up made (modules, botocore's data files, the
configuration) lives as long as the process; walking it is pure cost, a few hundred
milliseconds in a collection of 250,000 events. ``set_aside_startup`` moves it out of the
collector's sight once start-up is done.
"""

from __future__ import annotations

import ctypes
import gc
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


def set_aside_startup() -> int:
    """Move every object alive now out of the cyclic collector's reach (``gc.freeze``):
    later collections, and the one at exit, no longer walk them. Objects made later are
    collected as before. Returns how many were set aside. Call it once, when start-up is
    done. An object set aside is still freed when its last reference goes; one caught in a
    reference cycle is never freed, which costs nothing for start-up's objects (modules,
    botocore's data, the configuration), as they live as long as the process."""
    gc.freeze()
    return gc.get_freeze_count()
