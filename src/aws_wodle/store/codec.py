"""How our values sit in columns: a group's key as three columns, a boundary's digests as
a JSON list, an integer that may be empty."""

from __future__ import annotations

import json

from ..model import Boundary, GroupKey

GROUP_WHERE = "account = ? AND region = ? AND log_group = ?"


def gk(key: GroupKey) -> tuple[str, str, str]:
    return key.account, key.region, key.group


def as_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def boundary(ts: object, digests: object) -> Boundary:
    return Boundary(as_int(ts), tuple(json.loads(str(digests))))


def digests(mark: Boundary) -> str:
    return json.dumps(list(mark.digests))
