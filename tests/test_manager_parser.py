"""The config reader judged by the manager's own readers (tools/manager-parser), when a mirror
of wazuh/wazuh is at hand: WAZUH_GIT names it (`git clone --mirror` of the public repository).

The manager's parser is built once per mirror commit and tool sources, under
$AWS_WODLE_PARSER_CACHE or ~/.cache/aws-wodle/manager-parser, so later runs only judge.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "manager-parser" / "parser_diff.py"
# A fixed corpus: 300 generated files (plus the hand-written ones) from this seed.
SEED = "20261207"
COUNT = "300"
# check-config runs (a Python start each) to hold its exit code to the library's verdict.
CLI_SAMPLE = "12"


def _mirror() -> str | None:
    """WAZUH_GIT when it names a git directory with a commit, else None."""
    path = os.environ.get("WAZUH_GIT")
    if not path:
        return None
    probe = subprocess.run(
        ["git", "--git-dir", path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
        capture_output=True,
        check=False,
    )
    return path if probe.returncode == 0 else None


def _judge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_manager_reads_every_corpus_file_as_aws_wodle_does() -> None:
    """parser_diff.py finds no disagreement with the manager's readers (seed 20261207)."""
    mirror = _mirror()
    if mirror is None:
        pytest.skip(
            "WAZUH_GIT unset or not a git dir: `git clone --mirror "
            "https://github.com/wazuh/wazuh.git DIR` and set WAZUH_GIT=DIR to judge the config "
            "reader against the manager's own"
        )
    result = _judge(
        "--wazuh-git", mirror, "--seed", SEED, "--count", COUNT, "--cli-sample", CLI_SAMPLE
    )
    what = {1: "disagrees with the manager's readers", 2: "could not build or run the judge"}
    assert result.returncode == 0, (
        f"parser_diff.py exit {result.returncode}: "
        f"{what.get(result.returncode, 'failed')}\n{result.stdout}\n{result.stderr}"
    )
    assert "AGREE: all " in result.stdout, result.stdout


def test_a_path_that_is_no_mirror_is_a_build_problem(tmp_path: Path) -> None:
    """parser_diff.py exits 2 with the reason when --wazuh-git is not a git mirror."""
    result = _judge("--wazuh-git", str(tmp_path), "--build-cache", str(tmp_path / "cache"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{tmp_path}: not a git mirror of wazuh/wazuh" in result.stderr
    assert not (tmp_path / "cache").exists()
