"""Import rules: the engine is pure (DESIGN §2 rule 1, DEVELOP.md "engine is pure").

Every module in ``raftx/engine/`` may import only a small stdlib allow-list and the
raftx modules that are themselves free of I/O; no asyncio, socket, os, time,
threading, random (module), ... Parsed with `ast`, so an import inside a function
or under ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE_DIR = Path(__file__).resolve().parent.parent / "raftx" / "engine"

ALLOWED_STDLIB = {
    "__future__", "dataclasses", "enum", "typing", "collections", "bisect", "itertools",
    "functools", "logging",
}
ALLOWED_RAFTX = {
    "raftx", "raftx.types", "raftx.messages", "raftx.errors", "raftx.config", "raftx._core",
}


def imported_modules(source: str) -> list[str]:
    """Every module an ``import`` / ``from ... import`` statement in ``source`` names."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("." * node.level + (node.module or ""))
            else:
                names.append(node.module or "")
    return names


def violates(module: str) -> bool:
    """True if ``module`` may not be imported by the engine."""
    if module.startswith("."):
        return True  # relative imports hide what is imported; spell it out
    if module == "raftx.engine" or module.startswith("raftx.engine."):
        return False
    if module in ALLOWED_RAFTX:
        return False
    if module.startswith("raftx._core.") or module.startswith("raftx."):
        return True  # runtime/storage/network, or a _c/_py twin directly
    return module.split(".")[0] not in ALLOWED_STDLIB


ENGINE_FILES = sorted(ENGINE_DIR.glob("*.py"))


def test_engine_package_exists() -> None:
    assert any(p.name == "engine.py" for p in ENGINE_FILES), ENGINE_FILES


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: p.name)
def test_engine_module_imports_only_pure_modules(path: Path) -> None:
    bad = [m for m in imported_modules(path.read_text()) if violates(m)]
    assert not bad, f"{path.name} imports {bad}; the engine must stay free of I/O, clocks and global randomness"


@pytest.mark.parametrize(
    "module",
    ["asyncio", "socket", "os", "time", "random", "threading", "raftx.runtime", "raftx._core.quorum_py", ".state"],
)
def test_checker_rejects_impure_imports(module: str) -> None:
    assert violates(module)


def test_checker_sees_nested_imports() -> None:
    src = "def f():\n    import time\n    from os import path\n"
    assert [m for m in imported_modules(src) if violates(m)] == ["time", "os"]
