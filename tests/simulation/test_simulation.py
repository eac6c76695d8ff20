"""The simulator as a whole: determinism, the node driver's ordering, crash-restart,
and that it *finds* bugs (engines and disks broken on purpose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from raftx.engine import election, reads
from raftx.engine.election import vote_ge
from raftx.errors import ConfigError
from raftx.messages import AppendEntriesResponse, VoteResponse
from raftx.testing.simulation import FaultPlan, SimDisk, SimOptions, Simulation, parse_seeds, run_seed
from raftx.testing.simulation.simnet import Msg

ROOT = Path(__file__).resolve().parents[2]


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_trace_different_seed_different_trace() -> None:
    a, b, c = run_seed(11), run_seed(11), run_seed(12)
    assert a.ok and b.ok and c.ok, (a.report(), c.report())
    assert (a.trace_hash, a.steps, a.operations, a.faults) == (b.trace_hash, b.steps, b.operations, b.faults)
    assert a.trace_hash != c.trace_hash
    assert a.steps > 500 and a.acked > 0  # it really ran a cluster


def test_trace_does_not_depend_on_hash_randomisation() -> None:
    code = "from raftx.testing.simulation import run_seed; print(run_seed(5).trace_hash)"
    hashes = set()
    for hash_seed in ("1", "987"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120, check=True)
        hashes.add(out.stdout.strip())
    assert hashes == {run_seed(5).trace_hash}


def test_bad_arguments_get_config_errors() -> None:
    with pytest.raises(ConfigError):
        Simulation(-1)
    with pytest.raises(ConfigError):
        Simulation(0, SimOptions(initial_voters=6, nodes=5))
    with pytest.raises(ConfigError):
        SimOptions(safety_ms=-5).validate()
    assert parse_seeds("3:6") == [3, 4, 5] and parse_seeds("7") == [7] and parse_seeds("1,9") == [1, 9]
    for bad in ("6:3", "x", "-1", "1:"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


# -- the node driver -------------------------------------------------------------------------------


def test_answers_leave_only_after_the_state_they_promise_is_durable() -> None:
    """Persist before acknowledge (§5.2 Figure 2): a granted vote / a successful
    append answer is sent only once the voter's vote / the appended entries are
    durable, however slow the fsync."""
    sim = Simulation(21, SimOptions(safety_ms=1500, plan=FaultPlan(max_delay=5, actions=("crash", "restart"))))
    sim.fsync_delay = (15, 40)
    send = sim.net.send
    checked = {"vote": 0, "append": 0}

    def spy(m: Msg) -> None:
        d = sim.nodes[m.src].disk.durable
        body = m.body
        if m.kind == "vote_resp" and isinstance(body, VoteResponse) and body.vote_granted:
            assert vote_ge(d.vote, body.vote), (m, d.vote)
            checked["vote"] += 1
        if m.kind == "append_resp" and isinstance(body, AppendEntriesResponse) and body.success:
            lid = body.matching
            if lid is not None and lid.index > d.first_index - 1:
                e = d.entry(lid.index)
                assert e is not None and e.log_id == lid, (m, d.last_log_id)
            checked["append"] += 1
        send(m)

    sim.net.send = spy  # type: ignore[method-assign]
    result = sim.run()
    assert result.ok, result.report()
    assert checked["vote"] > 0 and checked["append"] > 50


def test_restart_rebuilds_the_engine_from_the_durable_disk() -> None:
    sim = Simulation(4, SimOptions(plan=FaultPlan(keep_unsynced=False, actions=())))
    sim.fsync_delay = (30, 30)
    sim._setup()
    sim.run_until(1000)
    node = sim.leader()
    assert node is not None and node.disk.pending  # writes in flight, not yet synced
    durable_before = node.disk.durable.copy()
    node.crash("test")
    node.restart()
    eng = node.engine
    assert eng is not None
    assert eng.vote == durable_before.vote
    assert eng.log.last_log_id == durable_before.last_log_id
    assert node.disk.cache.entries == durable_before.entries


def test_a_fatal_fsync_stops_the_node() -> None:
    sim = Simulation(9, SimOptions(plan=FaultPlan(actions=())))
    sim._setup()
    sim.run_until(600)
    victim = sim.nodes[2]
    victim.disk.fsync_failure = 1.0
    sim.run_until(900)
    assert not victim.up and victim.fatal
    victim.disk.fsync_failure = 0.0
    victim.restart()
    assert victim.up and not victim.fatal


# -- it finds bugs ------------------------------------------------------------------------------------


def _first_violation(seeds: range, **opts: Any) -> str | None:
    for s in seeds:
        r = run_seed(s, SimOptions(**opts))
        if not r.ok:
            assert "replay: pytest tests/simulation --seed" in r.report()
            return r.violation
    return None


def _lying_sync(self: SimDisk) -> int | None:
    """Report writes durable without making them so."""
    ids = [io for io, _ in self.pending if io is not None]
    return ids[-1] if ids else None


def _stale_read(eng: Any, responder: Any, *_: Any) -> None:
    """Answer a read at once, on any node, without a quorum round."""
    eng.respond(responder, (eng.committed, eng.applied))


MUTANTS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "vote ignores §5.4.1": (lambda mp: mp.setattr(election, "log_up_to_date", lambda a, b: True),
                            {"leader completeness", "state machine safety", "log matching", "linearizability",
                             "acknowledged write lost", "truncated committed entries"}),
    "fsync that lies": (lambda mp: mp.setattr(SimDisk, "sync", _lying_sync),
                        {"monotonic vote", "leader completeness", "state machine safety", "log matching",
                         "acknowledged write lost", "election safety", "monotonic snapshot", "linearizability"}),
    "reads skip ReadIndex": (lambda mp: mp.setattr(reads, "get_read_log_id", _stale_read), {"linearizability"}),
    "never elect": (lambda mp: mp.setattr(election, "elect", lambda eng, pre_vote=False: None), {"liveness"}),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_the_simulation_catches_a_broken_system(mutant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    patch, expected = MUTANTS[mutant]
    patch(monkeypatch)
    found = _first_violation(range(60))
    assert found in expected, f"{mutant}: first violation {found!r}"


def test_an_undecided_linearizability_check_is_reported() -> None:
    r = run_seed(0, SimOptions(check_budget=1))
    assert r.violation == "linearizability unknown"


def test_cli_sweep_and_bad_input() -> None:
    run = [sys.executable, "-m", "raftx.testing.simulation"]
    out = subprocess.run(run + ["--seeds", "0:3", "--jobs", "1"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 seeds, 0 failing" in out.stdout
    bad = subprocess.run(run + ["--seeds", "9:2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "seeds must look like" in bad.stderr
