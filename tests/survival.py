"""README's "What it survives" table, from the figures the last test session measured.

The test session (tests/conftest.py) never touches README.md: when every fault test of
tests/test_faults.py ran through the AWS-like double and passed, it writes their rows to a
JSON file ($AWS_WODLE_SURVIVAL_JSON, default .pytest_cache/aws-wodle-survival.json). This
script puts them in README.md between the survival markers:

    python tests/survival.py            # rewrite README.md's table (make survival)
    python tests/survival.py --check    # exit 1 when README's table differs (CI)

``--check`` compares what a rerun reproduces: the faults, how each is injected, and the
events lost. The other two columns hold what one run measured (call counts, durations, the
repeats after random kills), which changes from run to run; ``--strict`` compares them too.
Exit status: 0 same (or rewritten), 1 different, 2 no complete measurements to compare with.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
JSON_ENV = "AWS_WODLE_SURVIVAL_JSON"
BEGIN, END = "<!-- survival:begin -->", "<!-- survival:end -->"
HEADER = (
    "| fault | how the test injects it | what it measured | events lost | events repeated |",
    "|---|---|---|---|---|",
)

# The table's rows, in order: each is recorded by a test of tests/test_faults.py.
SURVIVAL_ROWS = (
    "kill -9",
    "manager away at start",
    "manager restarts mid-run",
    "manager queue full",
    "throttling and failures",
    "SIGTERM mid-run",
    "bad input",
    "bad state file",
    "late events",
    "late events, reads split by lateness",
    "read-after-write delay",
    "1 MB pages and short pages",
    "stale stream fields",
)
# Columns that a rerun reproduces (the others are what one run measured).
STABLE = (0, 1, 3)


def json_path() -> Path:
    """Where the test session writes the measured rows."""
    configured = os.environ.get(JSON_ENV)
    return Path(configured) if configured else ROOT / ".pytest_cache" / "aws-wodle-survival.json"


def cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(rows: dict[str, dict[str, Any]]) -> str:
    lines = list(HEADER)
    for fault in SURVIVAL_ROWS:
        r = rows[fault]
        values = (fault, r["how"], r["measured"], r["lost"], r["repeated"])
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines)


def load(path: Path) -> dict[str, dict[str, Any]] | None:
    """The rows of a complete session, or None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, dict) or set(rows) != set(SURVIVAL_ROWS):
        return None
    return rows


def write(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    """Write a complete session's rows (called by tests/conftest.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows}, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def readme_table(text: str) -> str | None:
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def stable(table: str) -> list[tuple[str, ...]]:
    """The columns of each row that a rerun reproduces."""
    out = []
    for line in table.splitlines()[len(HEADER) :]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        out.append(tuple(cells[i] if i < len(cells) else "" for i in STABLE))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help=f"default: ${JSON_ENV} or "
                        ".pytest_cache/aws-wodle-survival.json")  # fmt: skip
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="exit 1 when README differs")
    parser.add_argument("--strict", action="store_true", help="with --check: every column")
    args = parser.parse_args(argv)
    source = args.json or json_path()
    rows = load(source)
    if rows is None:
        print(f"{source}: no complete measurements; run the test suite first", file=sys.stderr)
        return 2
    table = render(rows)
    text = args.readme.read_text()
    current = readme_table(text)
    if current is None:
        print(f"{args.readme}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    if args.check:
        same = current == table if args.strict else stable(current) == stable(table)
        if same:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(), table.splitlines(), "README.md", str(source), lineterm=""
        )
        print("\n".join(diff))
        print("README's survival table differs: run `make survival`", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{BEGIN}\n{table}\n{END}{tail}"
    if new != text:
        args.readme.write_text(new)
        print(f"{args.readme}: survival table rewritten from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
