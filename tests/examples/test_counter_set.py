"""examples/counter_set.py: the custom state machine guide's example runs, and is a
correct `raftx.storage.RaftStateMachine` (the public conformance suite, with a memory log)."""

from __future__ import annotations

import io
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raftx import Entry, LogId, Membership, SnapshotMeta, StoredMembership
from raftx.errors import StorageError
from raftx.storage import MemLogStore
from raftx.testing import StoreCapabilities, log_store_suite_cases, run_log_store_case

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples" / "counter_set.py"
MODULE: dict[str, Any] = runpy.run_path(str(EXAMPLE))
CounterSet = MODULE["CounterSet"]


@pytest.mark.timeout(60)
async def test_cluster_writes_snapshots_and_restores() -> None:
    report = await MODULE["main"]()
    rejected = MODULE["Rejected"]("cannot add 'ten'")
    assert report.responses == [1, 3, 6, 10, 15, 21, 28, 36, 45, 55,  # add 1..10
                                True, True, False, True, True,  # insert a, b, a again, remove b, insert c
                                rejected,  # the invalid command: the same response on every node
                                155, True]  # written while the learner was down
    # Index 0 is the initial membership, 1 the leader's blank entry, 2..17 the 16 commands:
    # the learner's state came from the leader's snapshot of all of them.
    assert report.learner_snapshot is not None and report.learner_snapshot.index == 17
    assert report.learner_state == report.leader_state == (55, ["a", "c"])
    assert report.snapshot_on_disk == (55, ["a", "c"])
    assert report.restarted_state == (155, ["a", "c", "d"])
    assert report.states == {i: (155, ["a", "c", "d"]) for i in (1, 2, 3, 4)}


@pytest.mark.timeout(60)
def test_runs_as_a_script() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "every node now: {1: (155, ['a', 'c', 'd']), 2: (155, ['a', 'c', 'd'])" in done.stdout


@pytest.mark.parametrize("case", log_store_suite_cases())
async def test_conformance_suite(case: str, tmp_path: Path) -> None:
    n = 0

    async def builder() -> tuple[Any, Any, StoreCapabilities]:
        nonlocal n
        n += 1  # a fresh snapshot directory for every state machine the case asks for
        return MemLogStore(), CounterSet(tmp_path / f"sm{n}"), StoreCapabilities()

    await run_log_store_case(builder, case)


async def test_malformed_snapshot_changes_nothing(tmp_path: Path) -> None:
    sm = await CounterSet.open(tmp_path)
    membership = Membership.new([1])
    await sm.apply([Entry(LogId(1, 1), MODULE["add"](5))])
    meta = SnapshotMeta(LogId(1, 9), StoredMembership(LogId(1, 0), membership), "bad")
    with pytest.raises(StorageError, match="malformed counter-set snapshot"):
        await sm.install_snapshot(meta, io.BytesIO(b'{"counter": "x", "items": []}'))
    assert sm.state() == (5, []) and sm.last_applied == LogId(1, 1)
    assert await sm.get_current_snapshot() is None
    assert (await CounterSet.open(tmp_path)).state() == (0, [])
