"""Memory settings (pure logic, in process): start-up's objects set aside from the cyclic
garbage collector, and a cycle made afterwards still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from aws_wodle.runtime import memtune


class Node:
    """An object that can sit in a reference cycle and be watched with a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def thawed() -> Iterator[None]:
    """Whatever a test sets aside is given back to the collector after it."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_startup_objects_are_set_aside_and_later_cycles_still_collected(thawed: None) -> None:
    before = Node()
    before.other = before
    watch_before = weakref.ref(before)
    count = memtune.set_aside_startup()
    # The count is taken at the call; objects set aside are still freed by reference
    # counting afterwards (a test runner's own bookkeeping among them), so it can only fall.
    assert 0 < gc.get_freeze_count() <= count
    del before
    gc.collect()
    # Set aside: a cycle made before the call is no longer collected...
    assert watch_before() is not None
    later = Node()
    later.other = later
    watch_later = weakref.ref(later)
    del later
    gc.collect()
    # ...one made after it is.
    assert watch_later() is None
