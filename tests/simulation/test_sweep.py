"""The CI seed sweep (200 seeds on two processes), its replay (``--seed N``), and the
long sweep (``--runslow``)."""

from __future__ import annotations

import pytest

from raftx.testing.simulation import SimOptions, run_seed, sweep

#: Seeds the CI sweep runs; `test_sweep_slow` runs many more with --runslow.
CI_SEEDS = range(200)


@pytest.mark.timeout(900)  # ~40 s on 2 idle cores; more when the machine is shared
def test_ci_sweep(sim_seed: int | None) -> None:
    """Every CI seed: safety phase with random faults, liveness phase, linearizable
    history. On failure the message lists each failing seed's report and replay command."""
    if sim_seed is not None:
        pytest.skip("--seed N replays one seed (test_replay_prints_the_run)")
    summary = sweep(CI_SEEDS, jobs=2, options=SimOptions())
    assert summary.seeds == len(CI_SEEDS)
    assert not summary.failures, "\n\n".join(r.report() for r in summary.failures[:5]) + "\n" + summary.describe()
    assert summary.acked > 1000  # the clusters really served writes


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
