"""Import rules of the byte format (issue 17 item 3): ``raftx/network`` imports nothing
from ``raftx/storage``, directly or through another raftx module.

The wire and the disk share one format home, `raftx.records` (next to `raftx._core.codec`);
a transport that pulled in the storage layer would make the layers depend on each other.
Parsed with `ast`: every module-level import counts, also inside functions; only
imports under ``if TYPE_CHECKING:`` are ignored (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "raftx"


def _module_file(module: str) -> Path | None:
    """The source file of a raftx module (None for a compiled-only or unknown module)."""
    rel = Path(*module.split("."))
    for candidate in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_imports(source: str, module: str) -> set[str]:
    """raftx modules ``source`` (of ``module``) imports outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = module if _module_file(module) and _module_file(module).name == "__init__.py" else \
        module.rpartition(".")[0]  # type: ignore[union-attr]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("raftx."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("raftx"):
                continue
            for alias in node.names:  # ``from raftx import _core``: a submodule
                sub = f"{target}.{alias.name}"
                found.add(sub if _module_file(sub) else target)
    return {m for m in found if m != "raftx"}  # the package root is the public facade, not a layer


def reachable(start: str) -> dict[str, str]:
    """Every raftx module ``start`` imports at run time, directly or not: module -> importer."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        mod = todo.pop()
        path = _module_file(mod)
        if path is None:
            continue
        for dep in _runtime_imports(path.read_text(), mod):
            if dep not in seen and dep != start:
                seen[dep] = mod
                todo.append(dep)
    return seen


NETWORK = sorted("raftx.network." + p.stem if p.stem != "__init__" else "raftx.network"
                 for p in (PACKAGE / "network").glob("*.py"))


@pytest.mark.parametrize("module", NETWORK)
def test_network_imports_nothing_from_storage(module: str) -> None:
    deps = reachable(module)
    bad = {m: via for m, via in deps.items() if m == "raftx.storage" or m.startswith("raftx.storage.")}
    assert not bad, f"{module} reaches the storage layer: " + ", ".join(f"{m} (imported by {v})"
                                                                       for m, v in sorted(bad.items()))


def test_records_is_below_storage_and_network() -> None:
    """The format home depends on the codec and the types only."""
    deps = reachable("raftx.records")
    assert not {m for m in deps if m.startswith(("raftx.storage", "raftx.network", "raftx.runtime"))}, deps


def test_the_checker_follows_imports() -> None:
    """The checker is not vacuous: it sees the storage layer behind a store module."""
    assert "raftx.storage.segment" in reachable("raftx.storage.segmented")
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from raftx.storage import x\n"
    assert _runtime_imports(src, "raftx.network.fake") == set()
    assert _runtime_imports("from raftx.storage.batch import EncodedBatch\n", "raftx.network.fake") == \
        {"raftx.storage.batch"}
