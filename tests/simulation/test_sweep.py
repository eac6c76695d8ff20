"""The CI seed sweep, its replay (``--seed N``), and the long sweep (``--runslow``)."""

from __future__ import annotations

import pytest

from raftx.testing.simulation import SimOptions, run_seed, sweep


def test_seed(sweep_seed: int) -> None:
    """One seed: safety phase with random faults, liveness phase, linearizable history."""
    result = run_seed(sweep_seed)
    assert result.ok, result.report()
    assert result.verdict == "ok"


def test_replay_prints_the_run(sim_seed: int | None, capsys: pytest.CaptureFixture[str]) -> None:
    """With ``--seed N``: run it twice, show the report, and require the same trace."""
    if sim_seed is None:
        pytest.skip("give --seed N to replay one seed")
    first, second = run_seed(sim_seed), run_seed(sim_seed)
    with capsys.disabled():
        print("\n" + first.report(), "\nfaults injected:", first.faults)
    assert first.trace_hash == second.trace_hash
    assert first.ok, first.report()


@pytest.mark.slow
def test_sweep_slow() -> None:
    """2000 more seeds on two processes (the CLI's long sweep, smaller)."""
    summary = sweep(range(1000, 3000), jobs=2, options=SimOptions())
    assert not summary.failures, "\n\n".join(r.report() for r in summary.failures[:5]) + "\n" + summary.describe()
