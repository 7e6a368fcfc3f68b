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
- Every answer is bounded as it is read (``pagejson`` holds AWS's limits): a page's body
  at 45 MiB, its events at 10,000, an event at 1 MB of message (about 6 MB of text, were it
  all escapes), any other answer at 4 MiB. Past a bound the answer is ``OversizedAnswer``,
  which names the request's stream and position and which botocore does not retry: an
  endpoint that sends it once sends it again. The connection is closed, not drained.
- ``before-parse`` hands the LogEvents to the parsed answer; when the body was read whole
  after all (no HTTP session to use) it decodes them from it.

Every other field, and every error answer, is parsed by botocore as usual.
"""

from __future__ import annotations

import contextlib
import json
import operator
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    HTTPClientError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError

from ..model import Columns, LogEvent
from .pagejson import (
    MESSAGE_BYTES,
    PAGE_BYTES,
    PAGE_EVENTS,
    TooLarge,
    Unstreamable,
    capped,
    decode_events,
    decode_events_fast,
    fast,
    in_chunks,
)

OPERATIONS = ("GetLogEvents", "FilterLogEvents")
# Where the parsed answer carries its events, taken out before botocore's parse.
RAW_EVENTS = "aws_wodle_raw_events"
# Bytes asked of the connection at a time, as botocore's own reads ask.
READ_BYTES = 64 * 1024
# Any other answer: an error, or a page of at most 50 streams or groups, each under 16 KiB
# at its longest (names, ARNs and the rest escaped at worst): under 800 KiB; 4 MiB allowed.
OTHER_BYTES = 4 * 1024 * 1024
# A token shown in an error line is cut to this many characters (AWS's run to a few hundred).
SHOWN_TOKEN = 120

_new = tuple.__new__
_MESSAGE = operator.itemgetter(1)  # a LogEvent's message, at C speed

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


@contextmanager
def columns_wanted() -> Iterator[None]:
    """Within this block, this thread's reads give a page's events as ``Columns`` where
    every element of the page is a whole event and orjson decodes it (else as LogEvents)."""
    _calling.columns = True
    try:
        yield
    finally:
        _calling.columns = False


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


# An event's members, picked at C speed from the objects orjson makes.
_PICK_TIMESTAMP = operator.itemgetter("timestamp")
_PICK_MESSAGE = operator.itemgetter("message")
_PICK_INGESTED = operator.itemgetter("ingestionTime")
_PICK_STREAM = operator.itemgetter("logStreamName")
_PICK_ID = operator.itemgetter("eventId")


def _picked(values: list[Any], names: dict[str, str], ids: bool) -> Columns:
    """A window's elements as columns, member by member, each a loop in C, sharing one
    string per stream name through ``names``; KeyError or TypeError when an element lacks
    a member AWS sends (its id only with ``ids``) or is not an object."""
    streams = list(map(_PICK_STREAM, values))
    return Columns(
        list(map(_PICK_TIMESTAMP, values)),
        list(map(_PICK_MESSAGE, values)),
        list(map(_PICK_INGESTED, values)),
        list(map(names.setdefault, streams, streams)),
        list(map(_PICK_ID, values)) if ids else None,
    )


def _converter(
    names: dict[str, str], ids: bool, hook: Callable[[dict[str, Any]], Any]
) -> Callable[[list[Any]], list[Any]]:
    """For the orjson path: a window's elements as LogEvents, as ``hook`` makes them
    (``names`` and ``ids`` are the hook's). A window whose elements are all objects with
    every member AWS sends goes through ``_picked``; any other window goes through ``hook``
    element by element (its objects; any other value is left for ``_as_event`` to refuse).
    The hook sees the elements only, not objects nested in them: no event of AWS's has
    any."""

    def convert(values: list[Any]) -> list[Any]:
        try:
            return _picked(values, names, ids).events()
        except (KeyError, TypeError):
            # A member missing (the hook gives it its empty value, or leaves the object
            # for _as_event), or an element that is not an object.
            return [hook(v) if isinstance(v, dict) else v for v in values]

    return convert


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


def _within_limits(events: list[LogEvent]) -> list[LogEvent]:
    """The events of a page, unless it holds more than AWS sends in one, or an event whose
    message is over 1 MB of UTF-8."""
    _check_messages(list(map(_MESSAGE, events)))
    return events


def _within_a_page(held: int) -> None:
    """Refuse a page of more events than AWS sends in one."""
    if held > PAGE_EVENTS:
        raise TooLarge(f"more than {PAGE_EVENTS:,} events in one page")


def _check_messages(messages: list[Any]) -> None:
    """Refuse a page of more messages than AWS sends in one, or with one over 1 MB of
    UTF-8. Only a message of over a quarter of that in characters can be: the longest is
    found at C speed (this runs for every page), and only such messages are measured in
    bytes."""
    _within_a_page(len(messages))
    quarter = MESSAGE_BYTES // 4
    try:
        longest = max(map(len, messages), default=0)
    except TypeError:
        longest = quarter + 1  # a message that is no string (garbled): each one looked at
    if longest <= quarter:
        return
    for message in messages:
        if (
            isinstance(message, str)
            and len(message) > quarter
            and len(message.encode("utf-8", "surrogatepass")) > MESSAGE_BYTES
        ):
            raise TooLarge(f"an event whose message is more than {MESSAGE_BYTES:,} bytes")


class _Gather:
    """The orjson path's conversion when columns are wanted: each window's elements added
    to the page's ``Columns`` member by member, each a loop in C, while every element is a
    whole event; from the first window that holds anything else, the page goes on as
    LogEvents (those gathered so far made into LogEvents too), through ``_converter``.
    It keeps everything itself and holds the page to AWS's 10,000 events as it grows; the
    decoder is handed back nothing."""

    def __init__(self, names: dict[str, str], ids: bool, hook: Callable[[dict[str, Any]], Any]):
        self.columns: Columns | None = Columns([], [], [], [], [] if ids else None)
        self.events: list[Any] = []
        self._names = names
        self._ids = ids
        self._convert = _converter(names, ids, hook)

    def __call__(self, values: list[Any]) -> list[Any]:
        columns = self.columns
        if columns is not None:
            try:
                columns.extend(_picked(values, self._names, self._ids))
            except (KeyError, TypeError):
                # A member missing, or an element that is not an object.
                self.events = columns.events()
                self.columns = None
            else:
                _within_a_page(len(columns))
                return []
        self.events += self._convert(values)
        _within_a_page(len(self.events))
        return []


def _decode(chunks: Iterator[bytes]) -> tuple[list[LogEvent] | Columns, dict[str, Any]]:
    """A page's events (as ``Columns`` where they are wanted and can be) and its other
    fields, except ``searchedLogStreams``: AWS has sent it empty since 2020, nothing reads
    it, and a test double may list every stream there."""
    names: dict[str, str] = {}
    ids = getattr(_calling, "ids", True)
    hook = _to_event(names, ids)
    gather = None
    if fast() and getattr(_calling, "columns", False):
        gather = _Gather(names, ids, hook)
        _, rest = decode_events_fast(chunks, gather)
        items = gather.events
    elif fast():
        items, rest = decode_events_fast(chunks, _converter(names, ids, hook))
    else:
        items, rest = decode_events(chunks, hook)
    rest.pop("searchedLogStreams", None)
    if gather is not None and gather.columns is not None:
        _check_messages(gather.columns.messages)
        return gather.columns, rest
    return _within_limits(_as_events(items)), rest


def _whole(body: bytes) -> tuple[list[LogEvent], dict[str, Any]]:
    """The same from a body in one piece that does not open with its events."""
    whole = json.loads(body, object_hook=_to_event({}, getattr(_calling, "ids", True)))
    if not isinstance(whole, dict):
        raise ValueError("the answer is not a JSON object")
    items = whole.pop("events", [])
    if not isinstance(items, list):
        raise ValueError("the answer's events are not a list")
    whole.pop("searchedLogStreams", None)
    return _within_limits(_as_events(items)), whole


def _read(chunks: Iterator[bytes]) -> tuple[list[LogEvent] | Columns, dict[str, Any]]:
    """A page's events and other fields from the chunks of its body (at most
    ``PAGE_BYTES`` of them): decoded as they arrive when the body opens with its events,
    as AWS's and moto's do, else whole."""
    chunks = capped(chunks, PAGE_BYTES)
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


def _error_body(body: bytes) -> bytes:
    """An error answer, for botocore to parse: whatever it holds, unless its JSON nests
    deeper than Python decodes (botocore's parse would fail with that, not an error)."""
    with contextlib.suppress(ValueError):
        json.loads(body)
    return body


def _invalid(exc: ValueError) -> HTTPClientError:
    """A 200 answer that is not what the call returns: botocore's parse would take it for
    an empty answer (an empty last page, ending the read). It is an error, retried like a
    broken connection."""
    return HTTPClientError(error=f"an answer that is not valid JSON: {exc}")


class OversizedAnswer(BotoCoreError):
    """An answer larger than CloudWatch Logs ever sends, refused as it was read. A
    BotoCoreError that is no connection error: botocore does not retry it."""

    fmt = (
        "answer refused: {reason}, beyond what CloudWatch Logs sends; not read further ({request})"
    )


def _time(ms: Any) -> str:
    """A request's time in ms as an ISO 8601 UTC time, or as given when it is none."""
    try:
        moment = datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ms)
    return moment.isoformat(timespec="milliseconds")


def _position(body: Any) -> str:
    """What a request asked for, as its error line says it: the stream (or streams, or
    prefix), the time range and the token it read from. The group is the caller's to name."""
    try:
        asked = json.loads(body or b"{}")
    except (TypeError, ValueError):
        asked = {}
    if not isinstance(asked, dict):
        asked = {}
    parts = []
    names = asked.get("logStreamNames") or []
    if asked.get("logStreamName"):
        parts.append(f"stream {asked['logStreamName']}")
    elif isinstance(names, list) and names:
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        parts.append(f"streams {names[0]}{more}")
    elif asked.get("logStreamNamePrefix"):
        parts.append(f"streams named {asked['logStreamNamePrefix']}*")
    if "startTime" in asked and "endTime" in asked:
        parts.append(f"events from {_time(asked['startTime'])} to {_time(asked['endTime'])}")
    elif "startTime" in asked:
        parts.append(f"events from {_time(asked['startTime'])} on")
    elif "endTime" in asked:
        parts.append(f"events before {_time(asked['endTime'])}")
    token = str(asked.get("nextToken") or "")
    if token:
        shown = token if len(token) <= SHOWN_TOKEN else token[:SHOWN_TOKEN] + "..."
        parts.append(f"after token {shown}")
    return ", ".join(parts) or "the request names no position"


def _reason(exc: TooLarge | RecursionError) -> str:
    """Why an answer was refused: its size, or JSON nested deeper than Python decodes
    (CloudWatch Logs' answers nest a few levels)."""
    if isinstance(exc, RecursionError):
        return "JSON nested deeper than any answer's"
    return str(exc)


def _refused(exc: TooLarge | RecursionError, request: Any) -> OversizedAnswer:
    """The error of an answer refused as too large, naming what the request asked for."""
    return OversizedAnswer(reason=_reason(exc), request=_position(getattr(request, "body", None)))


def _close(response: Any) -> None:
    """Give up an answer part read: its connection is closed (the rest may be any size,
    so it is not drained for reuse) and handed back to its pool, which reconnects."""
    response.raw.close()
    response.raw.release_conn()


class _Send:
    """The ``before-send`` hook: send through ``http``; read a 200 answer here, the events
    of a page as they arrive."""

    def __init__(self, http: Any) -> None:
        self._http = http

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> Any:
        _calling.streamed = None
        request.stream_output = True
        response = self._http.send(request)
        chunks = response.raw.stream(READ_BYTES)
        try:
            if response.status_code != 200:
                # Read here within bounds; parsed by botocore, as any error answer.
                response._content = _error_body(b"".join(capped(chunks, OTHER_BYTES)))
            elif event_name.rsplit(".", 1)[-1] in OPERATIONS:
                events, rest = _read(chunks)
                response._content = json.dumps(rest).encode()
                _calling.streamed = events
            else:
                response._content = _checked(b"".join(capped(chunks, OTHER_BYTES)))
        except (TooLarge, RecursionError) as exc:
            _close(response)
            raise _refused(exc, request) from exc
        except URLLib3ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
        except (URLLib3Error, OSError) as exc:
            raise ConnectionClosedError(
                error=exc, request=request, endpoint_url=request.url
            ) from exc
        except ValueError as exc:
            # Cut short (the connection closed early) or not JSON at all; what follows is
            # not read (it may be any size): the connection is closed.
            _close(response)
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
        except (TooLarge, RecursionError) as exc:
            raise OversizedAnswer(reason=_reason(exc), request="position not known here") from exc
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


def events_of(page: dict[str, Any]) -> list[LogEvent] | Columns:
    """A parsed page's events: as taken before parsing (as columns, if they were wanted and
    could be), else from botocore's parse."""
    raw = page.get(RAW_EVENTS)
    if isinstance(raw, list | Columns):
        return raw
    return _as_events(page.get("events", []))
