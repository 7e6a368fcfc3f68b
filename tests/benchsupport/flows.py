"""The messages the benchmark puts into moto: VPC flow log records, each distinct by its
sequence number, which can be read back from the message itself."""

from __future__ import annotations

ACCOUNT = "123456789012"


def flow_line(seq: int, timestamp: int) -> str:
    """A VPC flow log record as CloudWatch Logs receives it; ``seq`` is its interface id."""
    mix = (seq * 2654435761) & 0xFFFFFFFF
    start = timestamp // 1000
    action = "REJECT" if mix % 7 == 0 else "ACCEPT"
    return (
        f"2 {ACCOUNT} eni-{seq:017x} 10.{mix >> 24}.{(mix >> 16) & 255}.{(mix >> 8) & 255} "
        f"172.31.{mix & 255}.{(mix >> 4) & 255} {1024 + mix % 64000} 443 6 {1 + mix % 90} "
        f"{60 + mix % 90_000} {start} {start + 60} {action} OK"
    )


def seq_of(message: str) -> int:
    """The sequence number of a message made by ``flow_line``."""
    return int(message.split(" ", 3)[2][4:], 16)
