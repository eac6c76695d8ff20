"""Guard: the compiled twins must really be in use when they were expected (yarl style)."""

import os

import pytest

from raftx import _core


@pytest.mark.skipif(os.environ.get("RAFTX_NO_EXTENSIONS") == "1", reason="pure build requested")
def test_compiled_twins_selected() -> None:
    assert _core.IMPLEMENTATION == "c", "compiled modules expected but raftx fell back to pure Python"
    for name in _core.MODULES:
        assert getattr(_core, name).__name__ == f"raftx._core.{name}_c"


@pytest.mark.skipif(os.environ.get("RAFTX_NO_EXTENSIONS") != "1", reason="only with RAFTX_NO_EXTENSIONS=1")
def test_pure_twins_selected() -> None:
    assert _core.IMPLEMENTATION == "py"


def _public(module: object) -> set[str]:
    """Names a module defines itself (functions, classes) plus its constants."""
    out = set()
    for n in dir(module):
        if n.startswith("_"):
            continue
        v = getattr(module, n)
        if getattr(v, "__module__", None) == module.__name__ or isinstance(v, (int, str, bytes)):
            out.add(n)
    return out


def test_twins_share_public_names() -> None:
    """Every public name of a ``_py`` twin exists in its ``_c`` twin."""
    if os.environ.get("RAFTX_NO_EXTENSIONS") == "1":
        pytest.skip("compiled twins not built")
    c, py = _core.load("c"), _core.load("py")
    for name in _core.MODULES:
        missing = _public(py[name]) - set(dir(c[name]))
        assert not missing, f"{name}_c lacks {sorted(missing)}"
