"""A ``[[kinesis]]`` source of the settings file: a stream, its lease table, credentials."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

from ..model import CloudWatchService

# The lease period: a worker that has not renewed its leases for this long is taken to be
# gone, and its shards are taken over. The Kinesis Client Library's failover time is 10 s.
DEFAULT_LEASE_PERIOD = 10.0
# GetRecords' largest answer: 10,000 records.
DEFAULT_BATCH = 10_000
LEASE_TABLE_PREFIX = "aws-wodle-"


def default_worker_id() -> str:
    """``HOST:PID:RANDOM``: unique per process, and readable in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class KinesisSource:
    """One ``[[kinesis]]`` table: where to read, where the leases are, and as whom."""

    stream: str  # a name, or the stream's ARN
    region: str
    lease_table: str
    line: int = 0
    aws_profile: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    iam_role_arn: str | None = None
    iam_role_duration: int | None = None
    sts_endpoint: str | None = None
    kinesis_endpoint: str | None = None
    dynamodb_endpoint: str | None = None
    lease_period: float = DEFAULT_LEASE_PERIOD
    worker_id: str | None = None
    batch: int = DEFAULT_BATCH
    envelope: bool = False

    @property
    def stream_name(self) -> str:
        return stream_name(self.stream)

    def credentials(self) -> CloudWatchService:
        """The credentials options as a service's, for ``cloudwatch.AwsAccess``: the push
        path builds its sessions (profile, keys, role renewed before expiry) the same way."""
        return CloudWatchService(
            line=self.line,
            log_groups=(),
            regions=(self.region,),
            only_logs_after=None,
            aws_profile=self.aws_profile,
            access_key=self.access_key,
            secret_key=self.secret_key,
            iam_role_arn=self.iam_role_arn,
            iam_role_duration=self.iam_role_duration,
            sts_endpoint=self.sts_endpoint,
        )


def stream_name(stream: str) -> str:
    """The name of a stream given by name or ARN (``arn:aws:kinesis:R:A:stream/NAME``)."""
    if stream.startswith("arn:"):
        return stream.rsplit("/", 1)[-1]
    return stream


def arn_region(stream: str) -> str | None:
    """The region of a stream ARN, None for a name."""
    if not stream.startswith("arn:"):
        return None
    parts = stream.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None
