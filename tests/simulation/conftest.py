"""``--seed N`` narrows the seed sweep to that one seed (replay of a failure)."""

from __future__ import annotations

import pytest

#: Seeds the default (CI) sweep runs; `test_sweep_slow` runs many more with --runslow.
CI_SEEDS = range(200)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sweep_seed" in metafunc.fixturenames:
        seed = metafunc.config.getoption("--seed")
        seeds = [seed] if seed is not None else list(CI_SEEDS)
        metafunc.parametrize("sweep_seed", seeds)
