"""Shared fixtures. Every ``_core`` test takes ``core`` and so runs against both twins."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from raftx import _core
from raftx.kv import kvcodec

# The compiled twins are expected unless the pure build was asked for explicitly.
COMPILED_EXPECTED = os.environ.get("RAFTX_NO_EXTENSIONS") != "1"


@pytest.fixture(params=["c", "py"], scope="session")
def core(request: pytest.FixtureRequest) -> SimpleNamespace:
    """Every hot-path module of one implementation (``_core.MODULES`` and the kv
    service's ``raftx.kv.kvcodec.MODULES``): ``core.codec``, ``core.kvcodec``, ...

    ``core.impl`` is ``"c"`` or ``"py"``. The compiled variant is skipped only when
    ``RAFTX_NO_EXTENSIONS=1``; otherwise a missing build *fails* the test.
    """
    impl = request.param
    if impl == "c" and not COMPILED_EXPECTED:
        pytest.skip("RAFTX_NO_EXTENSIONS=1: compiled twins not built")
    try:
        modules = {**_core.load(impl), **kvcodec.load(impl)}
    except ImportError as exc:
        pytest.fail(f"the {impl!r} twins failed to import: {exc}")
    return SimpleNamespace(impl=impl, **modules)


# -- command-line options: --runslow, --seed (simulation replay) -------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")
    parser.addoption("--seed", action="store", type=int, default=None,
                     help="replay one simulation seed (tests/simulation)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` are skipped unless ``--runslow`` is given."""
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def sim_seed(request: pytest.FixtureRequest) -> int | None:
    """The simulation seed given with ``--seed N`` (None if not given)."""
    seed = request.config.getoption("--seed")
    if seed is not None and seed < 0:
        raise pytest.UsageError(f"--seed must be >= 0, not {seed}")
    return seed  # type: ignore[no-any-return]
