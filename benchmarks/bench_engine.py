"""Benchmarks of the pure engine (`raftx.engine`) on both `_core.quorum` twins.

    python -m pytest benchmarks/bench_engine.py --benchmark-only -q
    python benchmarks/report.py bench_engine.py      # entries/s and compiled/pure ratios

The engine itself is plain Python; what differs between the pair is the quorum
twin it calls for every acknowledgement (`_core.quorum`, swapped in for the run).
``vote`` is not swapped: `LogId`/`Vote` objects are shared with `raftx.types`.

* ``leader_round``: one group-committed batch of ``BATCH`` client writes on the
  leader of 3 voters: ClientWrite -> the leader's flush -> both followers' acks ->
  commit -> Applied.
* ``follower_round``: one AppendEntries of ``BATCH`` entries on a follower, then
  its flush (the response goes out); building the `EntryList` is inside the timing.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from raftx import _core
from raftx.config import Config, SnapshotPolicy
from raftx.engine import Engine, RestoredState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, EntryList, VoteResponse
from raftx.types import Entry, LogId, Membership, StoredMembership, Vote

pytestmark = pytest.mark.benchmark(group="engine", min_time=0.0005)

BATCH = 64
PAYLOADS = [b"x" * 100] * BATCH


@pytest.fixture
def engine_core(core: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(_core, "quorum", core.quorum)
    return core


def _config() -> Config:
    return Config(snapshot_policy=SnapshotPolicy.Never(), enable_leader_lease=False).validate()


def _leader() -> Engine:
    restored = RestoredState(memberships=[StoredMembership(None, Membership.new({1, 2, 3}))])
    eng = Engine(1, _config(), random.Random(1), restored)
    eng.startup(0)
    eng.step(ev.TriggerElect())
    vote = eng.candidate.vote  # type: ignore[union-attr]
    eng.step(ev.VoteResponded(2, vote, VoteResponse(vote, True)))
    eng.step(ev.IOFlushed(eng.io.submitted))
    for t, p in eng.leader.progress.items():  # type: ignore[union-attr]
        for s in list(p.sends):
            eng.step(ev.AppendResponded(t, s, AppendEntriesResponse(eng.vote, True)))
    return eng


def test_leader_round(benchmark: Any, engine_core: SimpleNamespace) -> None:
    eng = _leader()
    responders = [None] * BATCH

    def round_() -> LogId | None:
        out = eng.step(ev.ClientWrite(PAYLOADS, responders))
        eng.step(ev.IOFlushed(eng.io.submitted))
        for c in out:
            if isinstance(c, cmd.Replicate):
                eng.step(ev.AppendResponded(c.target, c.send_id, AppendEntriesResponse(eng.vote, True)))
        eng.step(ev.Applied(eng.committed))  # type: ignore[arg-type]
        return eng.committed

    benchmark.extra_info["units"] = BATCH
    last = benchmark(round_)
    assert last == eng.log.last_log_id


def test_follower_round(benchmark: Any, engine_core: SimpleNamespace) -> None:
    restored = RestoredState(vote=Vote(1, 2, True), memberships=[StoredMembership(None, Membership.new({1, 2, 3}))])
    eng = Engine(1, _config(), random.Random(1), restored)
    eng.startup(0)
    vote = Vote(1, 2, True)
    state = {"next": 0}

    def round_() -> int:
        first = state["next"]
        prev = None if first == 0 else LogId(1, first - 1)
        batch = EntryList([Entry(LogId(1, first + k), b"x") for k in range(BATCH)])
        req = AppendEntriesRequest(vote, prev, batch, LogId(1, first + BATCH - 1))
        eng.step(ev.AppendRequested(req, None))
        eng.step(ev.IOFlushed(eng.io.submitted))
        state["next"] = first + BATCH
        return eng.log.last_index

    benchmark.extra_info["units"] = BATCH
    assert benchmark(round_) == state["next"] - 1
