"""The simulation catches bugs planted in the *runtime* (issue 10 item 2).

Each test breaks one piece of production runtime code with ``monkeypatch`` (the
simulation runs that code; nothing of the simulation is changed) and runs seeds
until the simulation reports a violation, within a bound. The seed that caught
it is printed with ``-s``.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from raftx.engine import sending
from raftx.engine.output import Output
from raftx.engine.roles import LeaderState
from raftx.engine.state import EngineState
from raftx.runtime.apply_worker import ApplyWorker
from raftx.runtime.pending import PendingCalls
from raftx.runtime.storage_worker import StorageWorker
from raftx.testing.simulation import SimOptions, run_seed

#: How many seeds a planted bug may survive before the test fails.
BOUND = 300


def first_violation(expected: set[str]) -> tuple[int, str]:
    """The first seed (0, 1, ...) that reports a violation, and which; fails after `BOUND` seeds."""
    for seed in range(BOUND):
        r = run_seed(seed, SimOptions())
        if not r.ok:
            assert r.violation in expected, r.report()
            print(f"caught at seed {seed}: {r.violation}: {r.detail[:300]}")
            return seed, str(r.violation)
    raise AssertionError(f"not caught within {BOUND} seeds")


@pytest.mark.timeout(1800)  # bounded by BOUND seeds
def test_no_forced_purge_before_an_append(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 bug 1 put back: every purge is deferred, also the one after a snapshot
    install that moves the log's start (the worker believes every purge is inside the log)."""
    monkeypatch.setattr(StorageWorker, "_last_index", property(lambda self: 1 << 62, lambda self, v: None),
                        raising=False)
    first_violation({"node stopped"})


@pytest.mark.timeout(1800)  # bounded by BOUND seeds
def test_an_append_acknowledged_before_its_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage worker reports an append durable as soon as it is written."""
    do = StorageWorker._do

    async def early(self: StorageWorker, kind: str, io_id: int, arg: Any) -> None:
        await do(self, kind, io_id, arg)
        if kind == "append":
            self._durable(io_id)

    monkeypatch.setattr(StorageWorker, "_do", early)
    first_violation({"durable log lost", "acknowledged write lost", "leader completeness", "state machine safety", "log matching",
                     "linearizability", "monotonic vote", "election safety", "restart", "node stopped"})


@pytest.mark.timeout(1800)  # bounded by BOUND seeds
def test_apply_out_of_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The apply worker takes the newest queued range first (LIFO)."""

    def lifo(self: ApplyWorker, cmd: Any, written_io: int) -> None:
        self._queue.appendleft(("apply", (cmd, written_io)))
        self._wake.set()

    monkeypatch.setattr(ApplyWorker, "apply", lifo)
    first_violation({"node stopped", "state machine safety"})


@pytest.mark.timeout(1800)  # bounded by BOUND seeds
def test_a_dropped_responder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writes of one applied range in three are never answered."""
    respond: Callable[..., None] = PendingCalls.settle_applied
    count = [0]

    def forgetful(self: PendingCalls, index: int, rs: Any, entries: Any, outputs: Any) -> None:
        count[0] += 1
        if count[0] % 3:
            respond(self, index, rs, entries, outputs)

    monkeypatch.setattr(PendingCalls, "settle_applied", forgetful)
    first_violation({"unanswered write", "liveness"})


@pytest.mark.timeout(1800)  # bounded by BOUND seeds
def test_a_read_lease_renewed_by_sending_a_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader renews its read lease (`raftx.engine.reads`) when it sends a heartbeat
    round instead of when a quorum answers it: a cut-off leader keeps serving lease
    reads (`ReadPolicy.LEASE_READ`) after a new leader committed writes, and the
    simulation's local readers get stale values that the linearizability check refuses.

    (Subtler over-long leases — ``election_timeout_max`` instead of ``_min``, no drift
    margin, not voided by a transfer, lease reads without the followers' vote lease —
    were not caught within 300 seeds: the followers' vote lease of
    ``election_timeout_max`` keeps a new leader out for longer than those leases last,
    except in rare topologies.)"""
    broadcast = sending.broadcast_heartbeat

    def renew_on_send(st: EngineState, leader: LeaderState, out: Output) -> None:
        broadcast(st, leader, out)
        if leader.lease_acked >= 0:
            leader.lease_acked = max(leader.lease_acked, st.now)

    monkeypatch.setattr(sending, "broadcast_heartbeat", renew_on_send)
    first_violation({"linearizability"})
