"""Benchmarks run each hot path on both twins with the same inputs in one run.

``python -m pytest benchmarks/bench_codec.py --benchmark-only`` runs one file;
``python benchmarks/report.py`` runs them all and prints the compiled/pure ratios.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from raftx import _core
from raftx.kv import kvcodec


@pytest.fixture(params=["c", "py"], scope="session")
def core(request: pytest.FixtureRequest) -> SimpleNamespace:
    """Every hot-path module of one implementation (``_core.MODULES``, ``raftx.kv.kvcodec.MODULES``;
    ``core.impl`` is "c" or "py")."""
    if request.param == "c" and os.environ.get("RAFTX_NO_EXTENSIONS") == "1":
        pytest.skip("RAFTX_NO_EXTENSIONS=1")
    return SimpleNamespace(impl=request.param, **_core.load(request.param), **kvcodec.load(request.param))
