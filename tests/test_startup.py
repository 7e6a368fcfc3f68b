"""What a start costs in imports: the collector's modules reach AWS through botocore alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aws_wodle

PROBE = """
import sys
import aws_wodle.runtime.cli, aws_wodle.runtime.daemon, aws_wodle.runtime.probe
import aws_wodle.poll.collector, aws_wodle.aws.cloudwatch, aws_wodle.aws.kinesis
import aws_wodle.push.worker, aws_wodle.push.status
from aws_wodle.aws.cloudwatch import known_regions
from aws_wodle.model import CloudWatchService
regions = known_regions()
access = aws_wodle.aws.cloudwatch.AwsAccess(
    CloudWatchService(
        line=1, log_groups=("g",), regions=("us-east-1",), only_logs_after=None,
        access_key="AKIDEXAMPLE", secret_key="s",
    )
)
access.logs("us-east-1")
print("us-east-1" in regions, "boto3" in sys.modules, "s3transfer" in sys.modules)
"""


def test_a_collection_imports_no_boto3() -> None:
    """Listing regions and making a CloudWatch Logs client import neither boto3 nor its S3
    transfers: a tenth of a second of CPU at every start that nothing uses."""
    answer = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True, text=True, check=True, timeout=60,
        env={"PYTHONPATH": str(Path(aws_wodle.__file__).parent.parent), "HOME": "/nonexistent"},
    )  # fmt: skip
    assert answer.stdout.split() == ["True", "False", "False"]
