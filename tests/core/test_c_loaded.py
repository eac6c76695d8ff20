"""Guard: the compiled twins must really be in use when they were expected (yarl style)."""

import os

import pytest

from raftx import _core


@pytest.mark.skipif(os.environ.get("RAFTX_NO_EXTENSIONS") == "1", reason="pure build requested")
def test_compiled_twins_selected() -> None:
    assert _core.IMPLEMENTATION == "c", "compiled modules expected but raftx fell back to pure Python"
    for name in _core.MODULES:
        assert getattr(_core, name).__name__ == f"raftx._core.{name}_c"
    from raftx.kv import kvcodec

    assert kvcodec.IMPLEMENTATION == "c"
    assert kvcodec.encode_put.__module__ == kvcodec.decode_put.__module__ == "raftx.kv.kvcodec_c"


@pytest.mark.skipif(os.environ.get("RAFTX_NO_EXTENSIONS") != "1", reason="only with RAFTX_NO_EXTENSIONS=1")
def test_pure_twins_selected() -> None:
    assert _core.IMPLEMENTATION == "py"
    from raftx.kv import kvcodec

    assert kvcodec.IMPLEMENTATION == "py" and kvcodec.encode_put.__module__ == "raftx.kv.kvcodec_py"


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
    from raftx.kv import kvcodec

    c, py = {**_core.load("c"), **kvcodec.load("c")}, {**_core.load("py"), **kvcodec.load("py")}
    for name in (*_core.MODULES, *kvcodec.MODULES):
        missing = _public(py[name]) - set(dir(c[name]))
        assert not missing, f"{name}_c lacks {sorted(missing)}"
