"""The floor of workload C's CPU: the least a Python reader of FilterLogEvents can spend.

A plain loop of FilterLogEvents pages over one group through botocore (its client, retries
and signing as ours), each page's raw body decoded with orjson (botocore's own parse of the
events skipped), and every message sent as ``1:Wazuh-AWS:<message>`` on one connected Unix
datagram socket, blocking: no state, no windows, no bounds, no outage handling. What
aws-wodle spends beyond it is the price of what it does that this does not.

Run: ``python -m benchsupport.orjsonfloor --endpoint URL --region R --group G --queue PATH
--start-time MS``; prints what it did as one JSON line. Needs orjson.
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import sys
from typing import Any

import boto3

# Imported by name: orjson is an optional extra, without type stubs where it is missing.
orjson: Any = importlib.import_module("orjson")

HEADER = b"1:Wazuh-AWS:"
# Where the before-parse hook leaves a page's decoded events for the loop.
_pages: list[list[dict[str, Any]]] = []


def _take(response_dict: dict[str, Any], **_: Any) -> None:
    """Decode the raw body with orjson; botocore parses only what is left (the token)."""
    if response_dict.get("status_code") != 200:
        return
    body = orjson.loads(response_dict["body"])
    _pages.append(body.pop("events", []))
    body.pop("searchedLogStreams", None)
    response_dict["body"] = orjson.dumps(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--start-time", type=int, required=True)
    args = parser.parse_args(argv)
    logs = boto3.client("logs", region_name=args.region, endpoint_url=args.endpoint)
    logs.meta.events.register("before-parse.cloudwatch-logs.FilterLogEvents", _take)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(args.queue)
    send = sock.send
    # The collector's own request: ``interleaved`` (which AWS ignores, always interleaving)
    # makes the benchmark's moto answer both from the same time index, in the same order.
    kwargs: dict[str, Any] = {
        "logGroupName": args.group,
        "startTime": args.start_time,
        "interleaved": True,
    }
    sent = calls = 0
    while True:
        page = logs.filter_log_events(**kwargs)
        calls += 1
        for event in _pages.pop():
            send(HEADER + event["message"].encode())
            sent += 1
        token = page.get("nextToken")
        if not token:
            break
        kwargs["nextToken"] = token
    sock.close()
    print(json.dumps({"sent": sent, "filter_calls": calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
