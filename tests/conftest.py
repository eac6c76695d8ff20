"""Shared fixtures. Every ``_core`` test takes ``core`` and so runs against both twins."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from raftx import _core

# The compiled twins are expected unless the pure build was asked for explicitly.
COMPILED_EXPECTED = os.environ.get("RAFTX_NO_EXTENSIONS") != "1"


@pytest.fixture(params=["c", "py"], scope="session")
def core(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The four hot-path modules of one implementation: ``core.codec``, ``core.quorum``, ...

    ``core.impl`` is ``"c"`` or ``"py"``. The compiled variant is skipped only when
    ``RAFTX_NO_EXTENSIONS=1``; otherwise a missing build *fails* the test.
    """
    impl = request.param
    if impl == "c" and not COMPILED_EXPECTED:
        pytest.skip("RAFTX_NO_EXTENSIONS=1: compiled twins not built")
    try:
        modules = _core.load(impl)
    except ImportError as exc:
        pytest.fail(f"the {impl!r} twins failed to import: {exc}")
    return SimpleNamespace(impl=impl, **modules)
