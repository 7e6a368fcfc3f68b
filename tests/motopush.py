"""moto's server for the push path's tests, made to behave as AWS does where they rely on it.

Run as ``python motopush.py`` (with ``tests/`` importable); it prints ``{"port": N}`` once
it serves on a loopback port, and serves until killed. Two differences from plain moto:

- **One request at a time.** moto's DynamoDB checks a write's condition and applies it in
  two steps, with no lock: two workers racing for a lease can both win, which DynamoDB
  never allows (tests/test_push_leases.py shows the race). moto's Kinesis ``put_record``
  is not safe under concurrent puts either. A lock around each request gives every call
  AWS's atomicity.
- **Resharding as AWS does it.** moto routes new records to the first shard whose hash
  range fits, closed ones included, so a split parent keeps receiving writes; it re-puts a
  split parent's records and copies merged parents' records into the child; and a closed
  shard never ends (its iterator always continues). Here records go to open shards only, a
  closed shard keeps what it holds (readable until it ages out), and GetRecords at the end
  of a closed shard answers no ``NextShardIterator``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.kinesis import models
from moto.kinesis.exceptions import InvalidArgumentError
from moto.kinesis.utils import compose_shard_iterator, decompose_shard_iterator
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class OneAtATime:
    """WSGI middleware: each request answered whole before the next one starts."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            answer = self.app(environ, start_response)
            body = b"".join(answer)
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        return [body]


def _open_shard_for_key(
    self: models.Stream, partition_key: str, explicit_hash_key: str
) -> models.Shard | None:
    if explicit_hash_key:
        key = int(explicit_hash_key)
    else:
        key = int(models.md5_hash(partition_key.encode("utf-8")).hexdigest(), 16)
    for shard in self.shards.values():
        if shard.is_open and shard.starting_hash <= key <= shard.ending_hash:
            return shard
    return None


def _next_id(self: models.Stream) -> int:
    return max(shard._shard_id for shard in self.shards.values()) + 1


def _split(self: models.Stream, shard_to_split: str, new_starting_hash_key: str) -> None:
    shard = self.shards[shard_to_split]
    middle = int(new_starting_hash_key)
    if not shard.is_open or not shard.starting_hash < middle < shard.ending_hash:
        raise InvalidArgumentError(message=f"cannot split {shard_to_split} at {middle}")
    first = _next_id(self)
    for index, (lo, hi) in enumerate(
        ((shard.starting_hash, middle - 1), (middle, shard.ending_hash))
    ):
        child = models.Shard(first + index, lo, hi, parent=shard.shard_id)
        self.shards[child.shard_id] = child
    shard.is_open = False


def _merge(self: models.Stream, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
    one, two = self.shards[shard_to_merge], self.shards[adjacent_shard_to_merge]
    if one.ending_hash + 1 != two.starting_hash:
        raise InvalidArgumentError(adjacent_shard_to_merge)
    child = models.Shard(
        _next_id(self),
        one.starting_hash,
        two.ending_hash,
        parent=one.shard_id,
        adjacent_parent=two.shard_id,
    )
    self.shards[child.shard_id] = child
    one.is_open = False
    two.is_open = False


def _get_records(
    self: models.KinesisBackend, stream_arn: str | None, shard_iterator: str, limit: int | None
) -> tuple[str | None, list[Any], int]:
    stream_name, shard_id, last = decompose_shard_iterator(shard_iterator)
    stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    shard = stream.get_shard(shard_id)
    records, reached, behind = shard.get_records(last, limit)
    if not shard.is_open and reached >= shard.get_max_sequence_number():
        return None, records, behind
    return compose_shard_iterator(stream_name, shard, reached), records, behind


def patch() -> None:
    models.Stream.get_shard_for_key = _open_shard_for_key  # type: ignore[method-assign]
    models.Stream.split_shard = _split  # type: ignore[method-assign]
    models.Stream.merge_shards = _merge  # type: ignore[method-assign]
    models.KinesisBackend.get_records = _get_records  # type: ignore[method-assign,assignment]


def main() -> None:
    patch()
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
