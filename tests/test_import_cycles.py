"""Import rules: no import cycle inside ``raftx/engine/`` or inside ``raftx/runtime/``
(issue 17, DEVELOP.md "Rules of the house").

Parsed with `ast`, so every import statement counts: module level, under
``TYPE_CHECKING``, and inside a function (an import moved into a function to dodge
a cycle still makes one). ``from pkg import name`` is an edge to the submodule
``pkg.name`` when there is one, else to the package itself (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["raftx.engine", "raftx.runtime"]


def module_files(package: str) -> dict[str, str]:
    """``{module name: source}`` of every module of ``package`` (its ``__init__`` as ``package``)."""
    out: dict[str, str] = {}
    for path in sorted((ROOT / package.replace(".", "/")).glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        out[name] = path.read_text()
    return out


def import_edges(module: str, source: str, modules: set[str], is_package: bool = False) -> set[str]:
    """The modules of ``modules`` that ``source`` (the text of ``module``, a package's
    ``__init__`` if ``is_package``) imports, anywhere in it."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                # ``import a.b.c`` names a.b.c (and executes its parents: not a dependency on them)
                if alias.name in modules:
                    found.add(alias.name)
                elif len(parts) > 1 and ".".join(parts[:-1]) in modules:
                    found.add(".".join(parts[:-1]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif target in modules:
                    found.add(target)
    found.discard(module)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def package_graph(package: str) -> dict[str, set[str]]:
    files = module_files(package)
    names = set(files)
    return {m: import_edges(m, src, names, is_package=m == package) for m, src in files.items()}


def describe(graph: dict[str, set[str]], comp: list[str]) -> str:
    members = set(comp)
    return "; ".join(f"{m} -> {sorted(graph[m] & members)}" for m in comp)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_in_package(package: str) -> None:
    graph = package_graph(package)
    assert len(graph) > 3, graph  # the package was found
    found = cycles(graph)
    assert not found, f"import cycles in {package}: " + " | ".join(describe(graph, c) for c in found)


# -- the checker itself --------------------------------------------------------------


MODS = {"p", "p.a", "p.b", "p.c"}


def test_checker_counts_function_local_and_type_checking_imports() -> None:
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from p.b import B\n"
        "def f():\n    from p import c\n    import p.a\n"
    )
    assert import_edges("p.x", src, MODS) == {"p.b", "p.c", "p.a"}


def test_checker_resolves_package_names_and_relative_imports() -> None:
    assert import_edges("p.x", "from p import Thing\n", MODS) == {"p"}
    assert import_edges("p.x", "from . import a\nfrom .b import y\n", MODS) == {"p.a", "p.b"}
    assert import_edges("p.x", "import os\nfrom raftx import types\n", MODS) == set()


def test_checker_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
