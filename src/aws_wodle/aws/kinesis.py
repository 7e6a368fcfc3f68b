"""Kinesis and DynamoDB clients, and their errors translated: the push path's boundary.

Sessions (profile, static keys, an assumed role renewed before expiry) come from
``cloudwatch.AwsAccess``, so the push path and the polling path read credentials alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import AccessDenied, AwsError, CredentialsError, Throttled

T = TypeVar("T")

# DynamoDB calls: botocore's standard retries (jittered backoff) for 5xx and throttling.
# A failed condition is never retried by botocore; it means the lease is someone else's.
TABLE_ATTEMPTS = 4
# Kinesis calls: one attempt each. The reader retries every failure itself, with its own
# capped backoff and from its own position, so a throttled shard waits where it is.
STREAM_ATTEMPTS = 1

_THROTTLE_CODES = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class ConditionFailed(AwsError):
    """A conditional DynamoDB write found the item changed: the lease is not ours."""


class NotFound(AwsError):
    """The stream, shard or table does not exist (ResourceNotFoundException)."""


class InUse(AwsError):
    """The table is being created or already exists (ResourceInUseException)."""


class IteratorExpired(AwsError):
    """A shard iterator is older than five minutes (ExpiredIteratorException)."""


def translate(exc: Exception, operation: str) -> AwsError:
    """A botocore error as ours, naming the operation (``kinesis:GetRecords``...)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ConditionalCheckFailedException":
            return ConditionFailed(f"{operation}: the lease changed", code, operation)
        if code in _THROTTLE_CODES:
            return Throttled(f"{operation} throttled: {message or code}", code, operation)
        if code == "ExpiredIteratorException":
            return IteratorExpired(f"{operation}: {message or code}", code, operation)
        if code == "ResourceNotFoundException":
            return NotFound(f"{operation}: {message or 'not found'}", code, operation)
        if code == "ResourceInUseException":
            return InUse(f"{operation}: {message or code}", code, operation)
        if code in _ACCESS_CODES or status == 403:
            return AccessDenied(
                f"access denied: the credentials' policy does not allow {operation}",
                code or "AccessDenied",
                operation,
            )
        if code in {"ExpiredToken", "ExpiredTokenException"}:
            return CredentialsError(f"credentials expired: {message}", code, operation)
        return AwsError(f"{operation} failed: {code}: {message}", code, operation)
    if isinstance(exc, BotoConnectionError):
        return AwsError(f"{operation}: cannot reach the endpoint: {exc}", "ConnectionError")
    return AwsError(f"{operation} failed: {exc}", type(exc).__name__, operation)


def guard(operation: str, call: Callable[[], T]) -> T:
    """Make one call; every botocore error comes out translated."""
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation) from exc


def _config(attempts: int) -> BotoConfig:
    text = os.environ.get("AWS_MAX_ATTEMPTS", "")
    if attempts > 1 and text.isdigit() and int(text) > 0:
        attempts = int(text)
    return BotoConfig(
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=32,
        user_agent_extra="aws-wodle",
    )


def clients(
    session: Any, region: str, kinesis_endpoint: str | None, dynamodb_endpoint: str | None
) -> tuple[Any, Any]:
    """A Kinesis and a DynamoDB client of a botocore session, for one region."""
    kinesis = session.create_client(
        "kinesis",
        region_name=region,
        endpoint_url=kinesis_endpoint,
        config=_config(STREAM_ATTEMPTS),
    )
    dynamodb = session.create_client(
        "dynamodb",
        region_name=region,
        endpoint_url=dynamodb_endpoint,
        config=_config(TABLE_ATTEMPTS),
    )
    return kinesis, dynamodb
