"""A model of the old module's CloudWatch Logs collection, for its CPU figure (ours, written
from the facts recorded in ``../shared/docs/reference.md``; none of its code).

What it does per run, as those facts describe the old module:

- one STS GetCallerIdentity;
- per region and log group: lists every stream with DescribeLogStreams (50 a page, no
  ordering), twice (section 9);
- per stream: GetLogEvents through boto3 (botocore's normal parsing) from the stored token,
  else from ``only_logs_after`` (``startFromHead``), page after page until the first empty
  page (section 5: "pagination stops at the first empty page"), so one last empty call;
- per event: the discard check as section 6 describes it with no ``discard_regex``
  configured: the message is tried as JSON and, when it is not JSON, matched against the
  regex ``None`` (section 5); then the datagram ``1:Wazuh-AWS:<message>`` sent through a new
  Unix datagram socket, connected, sent and closed (section 5: "a new socket per event");
- per stream: its token and first and last event times kept in SQLite, committed once at the
  end of the run (section 5: "state is committed only at the end of a run").

Run: ``python -m benchsupport.oldmodel --endpoint URL --region R --group G [--group G2]
--queue PATH --state PATH --only-logs-after MS``; prints what it did as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sqlite3
import sys
from typing import Any

import boto3

HEADER = "1:Wazuh-AWS:"
PAGE = 50


def streams(logs: Any, group: str) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "limit": PAGE}
    while True:
        page = logs.describe_log_streams(**kwargs)
        names.extend(s["logStreamName"] for s in page.get("logStreams", []))
        token = page.get("nextToken")
        if not token:
            return names
        kwargs["nextToken"] = token


def send(queue: str, message: str) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(queue)
        sock.send(f"{HEADER}{message}".encode())
    finally:
        sock.close()


def discarded(message: str, regex: re.Pattern[str]) -> bool:
    try:
        json.loads(message)
    except ValueError:
        return regex.match(message) is not None
    return False


def collect_stream(
    logs: Any, db: sqlite3.Connection, args: argparse.Namespace, group: str, name: str
) -> tuple[int, int]:
    """Read one stream to its first empty page; returns (events sent, calls)."""
    regex = re.compile("None")
    row = db.execute(
        "SELECT token, first_event, last_event FROM cloudwatch_logs "
        "WHERE region = ? AND log_group = ? AND log_stream = ?",
        (args.region, group, name),
    ).fetchone()
    token, first, last = row if row else (None, None, None)
    sent = calls = 0
    while True:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": name,
            "startFromHead": True,
        }
        if token:
            kwargs["nextToken"] = token
        else:
            kwargs["startTime"] = args.only_logs_after
        page = logs.get_log_events(**kwargs)
        calls += 1
        events = page.get("events", [])
        if not events:
            break
        for event in events:
            message = event["message"]
            if not discarded(message, regex):
                send(args.queue, message)
                sent += 1
            stamp = event["timestamp"]
            first = stamp if first is None else min(first, stamp)
            last = stamp if last is None else max(last, stamp)
        token = page.get("nextForwardToken")
    db.execute(
        "INSERT OR REPLACE INTO cloudwatch_logs VALUES (?, ?, ?, ?, ?, ?)",
        (args.region, group, name, token, first, last),
    )
    return sent, calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--group", action="append", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--only-logs-after", type=int, required=True)
    args = parser.parse_args(argv)
    boto3.client("sts", region_name=args.region, endpoint_url=args.endpoint).get_caller_identity()
    logs = boto3.client("logs", region_name=args.region, endpoint_url=args.endpoint)
    db = sqlite3.connect(args.state)
    db.execute(
        "CREATE TABLE IF NOT EXISTS cloudwatch_logs (region TEXT, log_group TEXT, "
        "log_stream TEXT, token TEXT, first_event INTEGER, last_event INTEGER, "
        "PRIMARY KEY (region, log_group, log_stream))"
    )
    sent = calls = 0
    for group in args.group:
        names = streams(logs, group)
        streams(logs, group)  # it lists every group twice
        for name in names:
            n, c = collect_stream(logs, db, args, group, name)
            sent, calls = sent + n, calls + c
    db.commit()
    db.close()
    print(json.dumps({"sent": sent, "get_calls": calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
