"""CloudWatch Logs and STS through botocore: with ``streamread``, which reads log events
answers for it, the only module that imports botocore.

It builds sessions from a service's credentials options, pages streams and events, and
translates every botocore error into the tree of ``errors``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from .. import redact
from ..errors import (
    AccessDenied,
    AnswerRefused,
    AwsError,
    CredentialsError,
    GroupNotFound,
    RegionUnavailable,
    Throttled,
    TokenRejected,
)
from ..model import CloudWatchService, GroupInfo, Page, StreamInfo
from . import streamread
from .budget import RegionBudget
from .serverclock import ServerClock

T = TypeVar("T")

# GetLogEvents returns at most 10,000 events (or 1 MB) a page: ask for the most, fewest calls.
EVENTS_PER_PAGE = 10_000
# DescribeLogStreams returns at most 50 streams a page, DescribeLogGroups 50 groups.
STREAMS_PER_PAGE = 50
GROUPS_PER_PAGE = 50
# Attempts per call for transient failures (5xx, resets, timeouts, throttles), with
# botocore's standard retry mode and its jittered exponential backoff. Few: throttling past
# them is handled by the region's shared budget, whose pauses all threads respect, and any
# other failure is retried on the next cycle without loss.
MAX_ATTEMPTS = 4
# Beyond botocore's attempts, a throttled call waits out the region's shared pauses this
# long in all before it fails (and its group is retried next cycle).
MAX_THROTTLED_SECONDS = 600.0
DEFAULT_ROLE_DURATION = 3600

_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "403",
}
_REGION_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "OptInRequired",
    "InvalidSignatureException",
}
_THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


@functools.cache
def _loader_session() -> botocore.session.Session:
    """The process's one session that no credentials or requests go through: it lists
    regions, and its loader of botocore's data files is shared by every other session.
    (A session costs some 20 ms of CPU to make: its handlers and components.)"""
    return botocore.session.get_session()


@functools.cache
def _data_loader() -> Any:
    return _loader_session().get_component("data_loader")


def core_session() -> botocore.session.Session:
    """A new botocore session that shares the process's loader of botocore's data files
    (endpoints, service models): each session would otherwise parse its own copies of
    them, tens of milliseconds of CPU each. Every request it sends first registers the
    credentials that signed it with ``redact``, renewed ones included."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _data_loader())
    session.register("before-send", functools.partial(_remember_credentials, session))
    return session


def _remember_credentials(
    session: botocore.session.Session, request: Any = None, **_kwargs: Any
) -> None:
    """Register the session token a request carries and the secret key of the session's
    credentials, before its answer (which may quote them) comes back. Whatever their
    source (static keys, a profile, the environment, a role), they are the session's, and
    renewed ones are registered on their first use; the token is read from the request
    itself, as credentials renewed since it was signed hold another. Returns None: botocore
    would take anything else for the answer."""
    headers = getattr(request, "headers", None) or {}
    token = headers.get("X-Amz-Security-Token")
    if isinstance(token, bytes):
        token = token.decode("utf-8", "replace")
    try:
        credentials = session.get_credentials()
        frozen = None if credentials is None else credentials.get_frozen_credentials()
    except (ClientError, BotoCoreError, RuntimeError):
        frozen = None  # credentials that fail to renew: the request will fail as well
    if frozen is None:
        redact.remember_resolved((token,))
    else:
        redact.remember_resolved((token, frozen.secret_key, frozen.token))


def known_regions() -> frozenset[str]:
    """Every region that botocore lists for CloudWatch Logs, in every partition."""
    session = _loader_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("logs", partition)
    )


def translate(exc: Exception, operation: str) -> AwsError:
    """Turn a botocore error into ours; the one place where that happens.

    Messages name the operation, never the account, region or group: callers add those.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _ACCESS_CODES or status == 403 or "AccessDenied" in message:
            return AccessDenied(
                f"access denied: the credentials' policy does not allow logs:{operation}",
                code or "AccessDenied",
                operation,
            )
        if code == "ResourceNotFoundException":
            return GroupNotFound(message or "not found", code, operation)
        if code in _THROTTLE_CODES:
            return Throttled(f"{operation} throttled past every retry", code, operation)
        if code in _REGION_CODES:
            return RegionUnavailable(
                f"the region refused the credentials ({code}); is it enabled for the account?",
                code,
                operation,
            )
        if code == "InvalidParameterException" and "token" in message.lower():
            return TokenRejected(f"{operation}: {message}", code, operation)
        if code in {"ExpiredToken", "ExpiredTokenException"}:
            return CredentialsError(f"credentials expired: {message}", code, operation)
        return AwsError(f"{operation} failed: {code}: {message}", code, operation)
    if isinstance(exc, streamread.OversizedAnswer):
        return AnswerRefused(f"{operation} {exc}", "AnswerRefused", operation)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ProfileNotFound)):
        return CredentialsError(f"no usable AWS credentials: {exc}", type(exc).__name__, operation)
    if isinstance(exc, BotoConnectionError):
        return RegionUnavailable(
            f"{operation}: cannot reach the endpoint: {exc}", "ConnectionError", operation
        )
    return AwsError(f"{operation} failed: {exc}", type(exc).__name__, operation)


def _guard(operation: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation) from exc


class CloudWatchLogs:
    """The CloudWatch Logs calls the collector makes, for one account and region.

    Thread-safe: one botocore client is shared by every thread reading this region, so its
    connection pool and retry state are shared too. Every answer also tells AWS's clock.
    """

    def __init__(
        self,
        client: Any,
        region: str,
        budget: RegionBudget | None = None,
        clock: ServerClock | None = None,
    ) -> None:
        self._client = client
        self.region = region
        self.budget = budget
        self.clock = clock or ServerClock()

    def now_ms(self) -> int:
        """AWS's clock now, as the answers so far tell it."""
        return self.clock.now_ms()

    def _call(
        self, operation: str, call: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], int]:
        """Make one call within the region's budget; throttling slows it down, and only
        ``MAX_THROTTLED_SECONDS`` of throttling in a row makes it fail. Returns the answer
        and AWS's clock when the (last) request was sent."""
        paused = 0.0
        while True:
            if self.budget is not None:
                self.budget.acquire(operation)
            sent = self.clock.host_ms()
            try:
                result = _guard(operation, call)
            except Throttled:
                if self.budget is None or paused > MAX_THROTTLED_SECONDS:
                    raise
                paused += self.budget.throttled(operation)
                continue
            headers = result.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            self.clock.observe(headers.get("date"), sent, self.clock.host_ms())
            if self.budget is not None:
                self.budget.succeeded(operation)
            return result, self.clock.at(sent)

    def _describe(self, kwargs: dict[str, Any]) -> tuple[list[StreamInfo], str | None]:
        page, _ = self._call(
            "DescribeLogStreams", lambda: self._client.describe_log_streams(**kwargs)
        )
        infos = [
            StreamInfo(
                name=item["logStreamName"],
                creation_time=item.get("creationTime"),
                first_event=item.get("firstEventTimestamp"),
                last_event=item.get("lastEventTimestamp"),
                last_ingestion=item.get("lastIngestionTime"),
            )
            for item in page.get("logStreams", [])
        ]
        return infos, page.get("nextToken") or None

    def streams(self, group: str) -> Iterator[StreamInfo]:
        """Every stream of a group, a DescribeLogStreams page at a time."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {**_group_arg(group), "limit": STREAMS_PER_PAGE}
            if token:
                kwargs["nextToken"] = token
            infos, token = self._describe(kwargs)
            yield from infos
            if not token:
                return

    def oldest_streams(self, group: str, token: str | None) -> tuple[list[StreamInfo], str | None]:
        """One DescribeLogStreams page, the streams with the oldest last event first."""
        kwargs: dict[str, Any] = {
            **_group_arg(group),
            "limit": STREAMS_PER_PAGE,
            "orderBy": "LastEventTime",
            "descending": False,
        }
        if token:
            kwargs["nextToken"] = token
        return self._describe(kwargs)

    def read(
        self, group: str, stream: str, *, start: int, end: int | None = None, token: str | None
    ) -> Page:
        """One GetLogEvents page, oldest first, from ``token`` or from ``start``; the
        token sent coming back marks the stream's end. AWS's answer names no stream: the
        events' ``stream`` is left empty, for the caller (who named it) to fill in."""
        kwargs: dict[str, Any] = {
            **_group_arg(group),
            "logStreamName": stream,
            "startFromHead": True,
            "limit": EVENTS_PER_PAGE,
            "startTime": start,
        }
        if end is not None:
            kwargs["endTime"] = end
        if token:
            kwargs["nextToken"] = token
        page, server_ms = self._call("GetLogEvents", lambda: self._client.get_log_events(**kwargs))
        return Page(streamread.events_of(page), page.get("nextForwardToken") or token, server_ms)

    def filter(
        self,
        group: str,
        *,
        start: int,
        end: int | None = None,
        streams: list[str] | None = None,
        token: str | None = None,
        prefix: str | None = None,
        ids: bool = True,
    ) -> Page:
        """One FilterLogEvents page over the whole group (or the named streams, or those
        whose names start with ``prefix``), by event time from ``start`` up to ``end``
        (exclusive); only a missing token ends a read. Event ids only with ``ids``."""
        kwargs: dict[str, Any] = {
            **_group_arg(group),
            "startTime": start,
            "limit": EVENTS_PER_PAGE,
            # AWS always interleaves now (the flag is deprecated there); moto only on request.
            "interleaved": True,
        }
        if end is not None:
            kwargs["endTime"] = end
        if streams:
            kwargs["logStreamNames"] = streams
        elif prefix:
            # AWS takes one or the other, never both.
            kwargs["logStreamNamePrefix"] = prefix
        if token:
            kwargs["nextToken"] = token
        with streamread.ids_wanted(ids), streamread.columns_wanted():
            page, server_ms = self._call(
                "FilterLogEvents", lambda: self._client.filter_log_events(**kwargs)
            )
        return Page(streamread.events_of(page), page.get("nextToken") or None, server_ms)

    def delete(self, group: str, stream: str) -> None:
        """Delete one stream (DeleteLogStream, which takes a name only: never another
        account's group)."""
        self._call(
            "DeleteLogStream",
            lambda: self._client.delete_log_stream(logGroupName=group, logStreamName=stream),
        )

    def _list_groups(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        page, _ = self._call(
            "DescribeLogGroups", lambda: self._client.describe_log_groups(**kwargs)
        )
        return page

    def log_groups(self, prefix: str) -> Iterator[GroupInfo]:
        """Every log group whose name starts with ``prefix``, a DescribeLogGroups page (50
        groups) at a time."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": GROUPS_PER_PAGE}
            if prefix:
                kwargs["logGroupNamePrefix"] = prefix
            if token:
                kwargs["nextToken"] = token
            page = self._list_groups(kwargs)
            for item in page.get("logGroups", []):
                yield GroupInfo(str(item["logGroupName"]), item.get("creationTime"))
            token = page.get("nextToken") or None
            if not token:
                return


def _group_arg(group: str) -> dict[str, str]:
    """How a call names a group: a log group ARN (another account's group, read from a
    monitoring account) goes as ``logGroupIdentifier``, a name as ``logGroupName``."""
    if group.startswith("arn:"):
        return {"logGroupIdentifier": group}
    return {"logGroupName": group}


class AwsAccess:
    """Sessions and clients for one configured service's credentials.

    Credentials come from, in order: static keys, the named profile, botocore's default chain;
    with ``iam_role_arn`` those assume the role through STS, refreshed before expiry.
    """

    def __init__(self, service: CloudWatchService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._session: botocore.session.Session | None = None
        self._clients: dict[str, CloudWatchLogs] = {}
        self.clock = ServerClock()

    @property
    def label(self) -> str:
        """Names these credentials (never with a secret), for logs and the account cache."""
        s = self.service
        parts = []
        if s.access_key:
            parts.append(f"key:{s.access_key}")
        elif s.aws_profile:
            parts.append(f"profile:{s.aws_profile}")
        else:
            parts.append("default-chain")
        if s.iam_role_arn:
            parts.append(f"role:{s.iam_role_arn}")
        if s.sts_endpoint:
            parts.append(f"sts:{s.sts_endpoint}")
        return " ".join(parts)

    def _base_session(self) -> botocore.session.Session:
        # A botocore session, not boto3's: boto3 adds resources and S3 transfers, which
        # aws-wodle does not use, and costs a tenth of a second of imports at each start.
        # Its clients are botocore's, made the same way; the same credentials chain.
        s = self.service
        core = core_session()
        try:
            if s.access_key and s.secret_key:
                core.set_credentials(s.access_key, s.secret_key)
            elif s.aws_profile:
                core.set_config_variable("profile", s.aws_profile)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "Session") from exc
        return core

    def session(self) -> botocore.session.Session:
        with self._lock:
            if self._session is None:
                base = self._base_session()
                self._session = self._assume(base) if self.service.iam_role_arn else base
            return self._session

    def _sts_region(self) -> str:
        if self.service.regions:
            return self.service.regions[0]
        return "us-east-1"

    def _sts(self, session: botocore.session.Session) -> Any:
        return session.create_client(
            "sts",
            region_name=self._sts_region(),
            endpoint_url=self.service.sts_endpoint,
            config=_client_config(),
        )

    def _assume(self, base: botocore.session.Session) -> botocore.session.Session:
        arn = self.service.iam_role_arn
        duration = self.service.iam_role_duration or DEFAULT_ROLE_DURATION
        sts = self._sts(base)

        def refresh() -> dict[str, str]:
            try:
                answer = sts.assume_role(
                    RoleArn=arn, RoleSessionName="aws-wodle", DurationSeconds=duration
                )
            except (ClientError, BotoCoreError) as exc:
                err = translate(exc, "AssumeRole")
                raise CredentialsError(f"cannot assume role {arn}: {err}") from exc
            creds = answer["Credentials"]
            redact.remember_resolved((creds["SecretAccessKey"], creds["SessionToken"]))
            expiry = creds["Expiration"]
            if isinstance(expiry, datetime):
                expiry = expiry.astimezone(timezone.utc).isoformat()
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": str(expiry),
            }

        core = core_session()
        # botocore has no public setter for refreshable credentials; its own assume-role
        # providers hand them to a session through this attribute.
        # Expiry is on AWS's clock: judged by AWS's time as the answers tell it, a host clock
        # an hour off neither uses expired credentials nor renews them on every call.
        credentials = DeferredRefreshableCredentials(
            refresh_using=refresh, method="assume-role", time_fetcher=self._aws_datetime
        )
        # Renew a third of the way before expiry (at most botocore's 15 and 10 minutes), so
        # that a 15-minute role is not renewed on every call.
        # (botocore reads these attributes; its constructor takes them only for non-deferred
        # credentials.)
        credentials._advisory_refresh_timeout = min(15 * 60, duration // 3)  # type: ignore[attr-defined]
        credentials._mandatory_refresh_timeout = min(10 * 60, duration // 6)  # type: ignore[attr-defined]
        core._credentials = credentials  # type: ignore[attr-defined]
        return core

    def _aws_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, tz=timezone.utc)

    def caller_identity(self) -> tuple[str, str]:
        """The account id and partition of the credentials (STS GetCallerIdentity)."""
        session = self.session()
        sent = self.clock.host_ms()
        answer = _guard("GetCallerIdentity", lambda: self._sts(session).get_caller_identity())
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        self.clock.observe(headers.get("date"), sent, self.clock.host_ms())
        arn = str(answer.get("Arn", "arn:aws:"))
        partition = arn.split(":")[1] if arn.count(":") >= 2 else "aws"
        return str(answer["Account"]), partition or "aws"

    def aws_now(self) -> float:
        """AWS's clock (epoch seconds), as the answers so far tell it."""
        return self.clock.now_ms() / 1000

    def credential_id(self) -> str | None:
        """What names these credentials for good, never a secret: an assumed role's ARN
        (its account is the role's), else the access key id in use (an instance role's
        changes with each renewal); None when there are no credentials yet."""
        if self.service.iam_role_arn:
            return f"role:{self.service.iam_role_arn}"
        try:
            credentials = self.session().get_credentials()
            if credentials is None:
                return None
            return credentials.get_frozen_credentials().access_key or None
        except (ClientError, BotoCoreError):
            return None

    @property
    def identity_lifetime(self) -> float:
        """How long an answer of ``caller_identity`` holds (s): an assumed role's session,
        else an hour (a profile or the default chain may be changed under us)."""
        if self.service.iam_role_arn:
            return float(self.service.iam_role_duration or DEFAULT_ROLE_DURATION)
        return 3600.0

    def partition_regions(self, partition: str) -> list[str]:
        """Every CloudWatch Logs region of a partition, as botocore lists them."""
        return sorted(self.session().get_available_regions("logs", partition_name=partition))

    def logs(self, region: str, budget: RegionBudget | None = None) -> CloudWatchLogs:
        """The shared CloudWatch Logs reader for one region of these credentials, drawing
        on ``budget`` (the account and region's shared request budget)."""
        session = self.session()
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                raw = session.create_client(
                    "logs",
                    region_name=region,
                    endpoint_url=self.service.service_endpoint,
                    config=_client_config(),
                )
                streamread.register(raw)
                client = CloudWatchLogs(raw, region, budget, self.clock)
                self._clients[region] = client
            return client


def _max_attempts() -> int:
    """AWS_MAX_ATTEMPTS, the SDKs' own setting, when the operator set it; else ours."""
    text = os.environ.get("AWS_MAX_ATTEMPTS", "")
    return int(text) if text.isdigit() and int(text) > 0 else MAX_ATTEMPTS


def _client_config() -> BotoConfig:
    return BotoConfig(
        retries={"total_max_attempts": _max_attempts(), "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=32,
        user_agent_extra="aws-wodle",
    )
