"""Which log groups a prefix selects, listed at a bounded cost.

A prefix entry (``/aws/lambda/*``) is listed in a region with DescribeLogGroups, 50 groups
a call, at most once every ``discover_every`` (default 10 minutes); between listings the
stored list is read. So a group created now is found within that time plus one interval,
and a listing costs ceil(matching groups / 50) calls. A group that appears in a listing
after the prefix's first is new: it is collected from its creation time (when no
``only_logs_after`` says otherwise), so the wait loses none of its events. A group gone
from a listing (deleted) is no longer read; its position stays in the state.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import GroupInfo, Listing

# How often a prefix is listed in a region (seconds), at most: a new group waits this long
# at worst, and each listing costs ceil(groups / 50) DescribeLogGroups calls.
DEFAULT_DISCOVER_SECONDS = 600.0


def due(listing: Listing | None, now: float, every: float) -> bool:
    """Whether a prefix is to be listed again: never listed, or not for ``every`` seconds
    (or the host clock went back)."""
    if listing is None:
        return True
    age = now - listing.listed_at
    return age >= every or age < 0


def relist(previous: Listing | None, found: Iterable[GroupInfo], now: float) -> Listing:
    """The listing made of ``found`` at ``now``, after ``previous``: groups absent from the
    previous listing are new (a first listing has none)."""
    groups = tuple(sorted(found, key=lambda info: info.name))
    if previous is None:
        return Listing(now, now, groups)
    before = set(previous.names())
    names = {info.name for info in groups}
    new = (previous.new & names) | {name for name in names if name not in before}
    return Listing(now, previous.first_listed_at, groups, frozenset(new))


def gone(previous: Listing | None, current: Listing) -> list[str]:
    """The groups of ``previous`` that ``current`` lacks."""
    if previous is None:
        return []
    names = set(current.names())
    return [name for name in previous.names() if name not in names]
