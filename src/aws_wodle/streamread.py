"""CloudWatch Logs answers read off the connection: log events pages straight into LogEvents.

botocore reads an answer whole before it parses it, and parses 10,000 events shape by shape
into dicts: a page would exist as its chunks, as their joined bytes, as decoded text and as
dicts. Two event hooks on the client do better:

- ``before-send`` sends the request through the client's own HTTP session (its pool, proxy,
  TLS and timeout settings), asking it not to read the answer. A 200 answer to GetLogEvents
  or FilterLogEvents has its ``events`` decoded as its chunks arrive (``pagejson``), each
  event straight into a LogEvent, and is left holding only its other fields; any other 200
  answer is read whole and must be JSON. An answer cut short or not JSON (which botocore
  would parse as an empty one) becomes the botocore error of a broken connection, which
  botocore retries like any other.
- ``before-parse`` hands the LogEvents to the parsed answer; when the body was read whole
  after all (no HTTP session to use) it decodes them from it.

Every other field, and every error answer, is parsed by botocore as usual.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ConnectionClosedError, HTTPClientError, ReadTimeoutError
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError

from .model import LogEvent
from .pagejson import Unstreamable, decode_events, in_chunks

OPERATIONS = ("GetLogEvents", "FilterLogEvents")
# Where the parsed answer carries its events, taken out before botocore's parse.
RAW_EVENTS = "aws_wodle_raw_events"
# Bytes asked of the connection at a time, as botocore's own reads ask.
READ_BYTES = 64 * 1024

_new = tuple.__new__

# botocore sends, reads and parses an answer in the thread that made the call: what a call
# wants (event ids or not) and what its read left for its parse are kept per thread.
_calling = threading.local()


@contextmanager
def ids_wanted(ids: bool) -> Iterator[None]:
    """Within this block, this thread's reads decode event ids only if ``ids``."""
    _calling.ids = ids
    try:
        yield
    finally:
        _calling.ids = True


def _to_event(names: dict[str, str], ids: bool) -> Callable[[dict[str, Any]], Any]:
    """A JSON object hook that turns each event object into a LogEvent as it is decoded,
    sharing one string per stream name, with its event id only if ``ids``."""

    def hook(obj: dict[str, Any]) -> Any:
        if "message" not in obj or "timestamp" not in obj:
            return obj
        stream = obj.get("logStreamName", "")
        # tuple.__new__ directly: the same LogEvent without the Python frame of its
        # constructor, once per event.
        return _new(
            LogEvent,
            (
                obj["timestamp"],
                obj["message"],
                obj.get("ingestionTime", 0),
                names.setdefault(stream, stream),
                obj.get("eventId", "") if ids else "",
            ),
        )

    return hook


def _as_event(item: Any) -> LogEvent:
    """An element of ``events``: a LogEvent from the hook, or an object lacking a field,
    which gets the field's empty value, as botocore's parse would leave it out."""
    if isinstance(item, LogEvent):
        return item
    if not isinstance(item, dict):
        raise ValueError(f"an event that is not an object: {item!r:.80}")
    return LogEvent(
        item.get("timestamp", 0),
        item.get("message", ""),
        item.get("ingestionTime", 0),
        item.get("logStreamName", ""),
        item.get("eventId", ""),
    )


def _as_events(items: list[Any]) -> list[LogEvent]:
    """The elements of ``events`` as LogEvents; as they are when the hook made them all
    (checked at C speed: this runs for every page)."""
    if set(map(type, items)) <= {LogEvent}:
        return items
    return [_as_event(item) for item in items]


def _decode(chunks: Iterator[bytes]) -> tuple[list[LogEvent], dict[str, Any]]:
    """A page's events and its other fields, except ``searchedLogStreams``: AWS has sent it
    empty since 2020, nothing reads it, and a test double may list every stream there."""
    items, rest = decode_events(chunks, _to_event({}, getattr(_calling, "ids", True)))
    rest.pop("searchedLogStreams", None)
    return _as_events(items), rest


def _whole(body: bytes) -> tuple[list[LogEvent], dict[str, Any]]:
    """The same from a body in one piece that does not open with its events."""
    whole = json.loads(body, object_hook=_to_event({}, getattr(_calling, "ids", True)))
    if not isinstance(whole, dict):
        raise ValueError("the answer is not a JSON object")
    items = whole.pop("events", [])
    if not isinstance(items, list):
        raise ValueError("the answer's events are not a list")
    whole.pop("searchedLogStreams", None)
    return _as_events(items), whole


def _read(chunks: Iterator[bytes]) -> tuple[list[LogEvent], dict[str, Any]]:
    """A page's events and other fields from the chunks of its body: decoded as they
    arrive when the body opens with its events, as AWS's and moto's do, else whole."""
    try:
        return _decode(chunks)
    except Unstreamable as exc:
        return _whole(exc.consumed + b"".join(chunks))


def _checked(body: bytes) -> bytes:
    """Another operation's 200 answer, if it is a JSON object (or empty, as a call without
    results may answer)."""
    if body.strip() and not isinstance(json.loads(body), dict):
        raise ValueError("the answer is not a JSON object")
    return body


def _invalid(exc: ValueError) -> HTTPClientError:
    """A 200 answer that is not what the call returns: botocore's parse would take it for
    an empty answer (an empty last page, ending the read). It is an error, retried like a
    broken connection."""
    return HTTPClientError(error=f"an answer that is not valid JSON: {exc}")


class _Send:
    """The ``before-send`` hook: send through ``http``; read a 200 answer here, the events
    of a page as they arrive."""

    def __init__(self, http: Any) -> None:
        self._http = http

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> Any:
        _calling.streamed = None
        request.stream_output = True
        response = self._http.send(request)
        if response.status_code != 200:
            # Read whole and parsed by botocore, as any error answer.
            return response
        chunks = response.raw.stream(READ_BYTES)
        try:
            if event_name.rsplit(".", 1)[-1] in OPERATIONS:
                events, rest = _read(chunks)
                response._content = json.dumps(rest).encode()
                _calling.streamed = events
            else:
                response._content = _checked(b"".join(chunks))
        except URLLib3ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
        except (URLLib3Error, OSError) as exc:
            raise ConnectionClosedError(
                error=exc, request=request, endpoint_url=request.url
            ) from exc
        except ValueError as exc:
            # Cut short (the connection closed early) or not JSON at all.
            response.raw.drain_conn()
            raise _invalid(exc) from exc
        return response


def _take_events(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """The ``before-parse`` hook: the events read as they arrived, or decoded from the
    body now, go to the parsed answer; botocore parses the rest."""
    streamed = getattr(_calling, "streamed", None)
    _calling.streamed = None
    if response_dict.get("status_code") != 200:
        return
    if streamed is None:
        try:
            streamed, rest = _read(in_chunks(response_dict["body"]))
        except ValueError as exc:
            raise _invalid(exc) from exc
        response_dict["body"] = json.dumps(rest).encode()
    customized_response_dict[RAW_EVENTS] = streamed


def register(client: Any) -> None:
    """Hook a CloudWatch Logs client's answers. Without an HTTP session to reach (a
    botocore that hides it) they are read whole by botocore, and a page's events decoded at
    the parse, where a broken answer still fails the call (but is not retried by botocore)."""
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if http is not None and callable(getattr(http, "send", None)):
        client.meta.events.register("before-send.cloudwatch-logs", _Send(http))
    for operation in OPERATIONS:
        client.meta.events.register(f"before-parse.cloudwatch-logs.{operation}", _take_events)


def events_of(page: dict[str, Any]) -> list[LogEvent]:
    """A parsed page's events: as taken before parsing, else from botocore's parse."""
    raw = page.get(RAW_EVENTS)
    if isinstance(raw, list):
        return raw
    return _as_events(page.get("events", []))
