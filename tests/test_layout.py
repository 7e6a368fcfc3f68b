"""The folders of src/aws_wodle/ import one way: each only folders below it, never in a circle.

Every import of ours counts: at the top of a module, inside a function (the imports put off
until boto3 is needed), and under ``TYPE_CHECKING`` (a type is a dependency of the design
even when it costs nothing at run time).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "aws_wodle"

# From the top down. A folder may import itself and any folder of a later layer; folders
# of one layer (the two edges) import neither each other nor anything above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),  # python -m aws_wodle
    ("runtime",),  # the command line, the run loop, signals, systemd, metrics, logging
    ("config",),  # ossec.conf and aws-wodle.toml into frozen options, with every default
    ("push",),  # the Kinesis source; it frames and tallies as the polling source does
    ("poll",),  # the polling source: the engine
    ("store",),  # SQLite, the state directory, the old module's state
    ("aws", "manager"),  # the two edges: AWS, and the manager's queue
    ("ground",),  # model, errors, schedule, paths, redact: nothing of ours
)
RANK = {folder: rank for rank, layer in enumerate(LAYERS) for folder in layer}


def folder_of(module: str, root: Path) -> str:
    """The folder of a dotted module name under aws_wodle (``root``); modules at the top
    are the ground, but for ``__main__``."""
    parts = module.split(".")[1:]
    if not parts or parts == ["__init__"]:
        return "ground"
    if len(parts) == 1 and not (root / parts[0]).is_dir():
        return "__main__" if parts[0] == "__main__" else "ground"
    return parts[0]


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) for each import of aws_wodle in a file, wherever it stands; a name
    imported from a package counts as that package's submodule when there is one."""
    relative = path.relative_to(root.parent).with_suffix("").parts
    package = list(relative if path.name == "__init__.py" else relative[:-1])
    if path.name == "__init__.py":
        package = package[:-1] if package[-1] == "__init__" else package
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("aws_wodle")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target != "aws_wodle" and not target.startswith("aws_wodle."):
                continue
            for alias in node.names:
                sub = root.parent.joinpath(*target.split("."), alias.name)
                is_module = sub.is_dir() or sub.with_suffix(".py").exists()
                found.append((node.lineno, f"{target}.{alias.name}" if is_module else target))
    return found


def module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root.parent).with_suffix("").parts)


def folder_edges(root: Path) -> dict[tuple[str, str], list[str]]:
    """Imports between folders: (from, to) -> where, as ``module:line imports target``."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = folder_of(module_name(path, root), root)
        for line, target in imports_of(path, root):
            dest = folder_of(target, root)
            if dest != source:
                where = f"{module_name(path, root)}:{line} imports {target}"
                edges.setdefault((source, dest), []).append(where)
    return edges


def upward(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    """The imports of a folder from one above it or beside it."""
    return [
        f"{source} -> {dest}: {where}"
        for (source, dest), places in sorted(edges.items())
        if RANK[dest] <= RANK[source]
        for where in places
    ]


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Every circle of imports between folders, each once, as the folders in order."""
    graph: dict[str, set[str]] = {}
    for source, dest in edges:
        graph.setdefault(source, set()).add(dest)
    found: list[list[str]] = []

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append([*trail, start])
            elif nxt not in trail and nxt > start:
                walk(start, nxt, [*trail, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_every_folder_is_in_the_declared_order() -> None:
    """Each folder of src/aws_wodle/ has a place in LAYERS, and each place a folder."""
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(RANK) - {"__main__", "ground"}


def test_each_folder_says_its_role() -> None:
    """Every folder opens with a docstring saying what it holds."""
    for folder in set(RANK) - {"__main__", "ground"}:
        tree = ast.parse((SRC / folder / "__init__.py").read_text())
        assert ast.get_docstring(tree), folder


def test_folders_import_only_folders_below_them() -> None:
    """No import, at the top, in a function or for types only, goes to a folder above or
    beside its own, and no folders import each other in a circle."""
    edges = folder_edges(SRC)
    assert upward(edges) == []
    assert cycles(edges) == []


@pytest.mark.parametrize(
    ("where", "line", "wrong", "circle"),
    [
        ("store/state.py", "from ..poll.discovery import due", "store -> poll", True),
        ("aws/budget.py", "from ..manager import forward", "aws -> manager", False),
        ("model.py", "from .runtime.metrics import Metrics", "ground -> runtime", True),
        ("poll/pipeline.py", "    from ..push.stats import PushStats", "poll -> push", True),
    ],
)
def test_an_import_against_the_order_is_caught(
    tmp_path: Path, where: str, line: str, wrong: str, circle: bool
) -> None:
    """A copy of the tree with one import against the order (at the top, or inside a
    function) fails the check, naming the module; a circle it closes is found too."""
    copy = tmp_path / "aws_wodle"
    shutil.copytree(SRC, copy)
    target = copy / where
    text = target.read_text()
    if line.startswith(" "):
        text += f"\n\ndef _wrong() -> None:\n{line}\n"
    else:
        text += f"\n{line}\n"
    target.write_text(text)
    edges = folder_edges(copy)
    bad = upward(edges)
    circles = cycles(edges)
    assert len(bad) == 1, bad
    assert bad[0].startswith(wrong), bad
    module = where.removesuffix(".py").replace("/", ".")
    assert f"aws_wodle.{module}:" in bad[0]
    source, dest = wrong.split(" -> ")
    closed = any(source in found and dest in found for found in circles)
    assert closed == circle, circles
