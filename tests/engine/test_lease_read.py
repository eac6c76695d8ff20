"""Lease reads (``ReadPolicy.LEASE_READ``, thesis §6.4) in the engine's virtual time.

The lease bound and its safety argument are in `raftx.engine.reads`. The central test
partitions the leader right after a quorum answered it, runs every node on its own
drifting clock (followers 5% fast and ticking only once per heartbeat interval, the
leader 5% slow: the worst case the bound allows), and checks that the last lease read
the old leader answered happened before any other node became leader.
"""

from __future__ import annotations

import pytest

from raftx.engine import events as ev
from raftx.errors import ForwardToLeader
from raftx.types import LogId, ServerState

from tests.engine.harness import Cluster, Reply, make_config

HB, ET_MIN, ET_MAX = 20, 200, 400


def lease_read(cl: Cluster, node_id: int, now: int | None = None) -> Reply:
    return cl.call(node_id, lambda r: ev.GetReadLogId(r, True, now))


def leading_cluster(seed: int = 0, **config: object) -> Cluster:
    cfg = make_config(heartbeat_interval=HB, election_timeout_min=ET_MIN, election_timeout_max=ET_MAX, **config)
    cl = Cluster(config=cfg, seed=seed)
    cl.initialize(1)
    cl.run_for(100)
    assert cl.leader() == 1
    return cl


def test_a_lease_read_is_answered_without_a_round() -> None:
    cl = leading_cluster()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    r = lease_read(cl, 1)
    assert r.ok  # no message moved
    read_log_id, applied = r.value
    assert read_log_id == cl[1].engine.committed and applied == read_log_id


def test_a_read_index_read_still_needs_a_round() -> None:
    cl = leading_cluster()
    r = cl.call(1, lambda r: ev.GetReadLogId(r))
    assert not r.done
    cl.stabilize()
    assert r.ok


def test_past_the_lease_a_lease_read_waits_for_a_round() -> None:
    cl = leading_cluster()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    end = cl[1].engine.leader.lease_acked + ET_MIN - HB - ET_MIN // 10
    assert lease_read(cl, 1, now=end - 1).ok
    r = lease_read(cl, 1, now=end)
    assert not r.done  # the lease ended: a heartbeat round went out
    cl.stabilize()
    assert r.ok


def test_a_follower_refuses_a_lease_read() -> None:
    cl = leading_cluster()
    r = lease_read(cl, 2)
    assert r.done and isinstance(r.value, ForwardToLeader) and r.value.leader_id == 1


def test_a_leadership_transfer_voids_the_lease_for_the_rest_of_the_term() -> None:
    cl = leading_cluster()
    cl[1].handle(ev.TriggerTransferLeader(2))
    cl.drop()  # the transfer never arrives; it expires
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    cl.drop(lambda m: m.kind == "transfer")
    cl.run_for(ET_MAX + 50)
    leader = cl[1].engine.leader
    assert leader is not None and leader.transfer_to is None  # abandoned, still leader
    r = lease_read(cl, 1)
    assert not r.done  # a transfer request may still be travelling: no lease this term
    cl.stabilize()
    assert r.ok


def test_without_the_vote_lease_there_is_no_read_lease() -> None:
    cl = leading_cluster(enable_leader_lease=False)
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    r = lease_read(cl, 1)
    assert not r.done
    cl.stabilize()
    assert r.ok


def test_a_single_voter_is_its_own_lease() -> None:
    cl = Cluster(ids=(1,), config=make_config())
    cl.initialize(1)
    cl.run_for(300)
    assert cl.leader() == 1
    assert lease_read(cl, 1).ok


def _partitioned_leader_run(seed: int, pre_vote: bool) -> tuple[int, int, int]:
    """Returns (last real ms the old leader answered a lease read, ms another node
    became leader, ms it committed an entry of its term)."""
    cl = leading_cluster(seed, enable_pre_vote=pre_vote)
    cl.cut(1, 3)  # the quorum answering 1 is {1, 2}; 3 does not hold the vote lease
    cl.run_for(2 * ET_MAX)
    assert cl.leader() == 1
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()  # 2 answered a heartbeat sent at t0
    old_term = cl[1].engine.vote.term
    t0 = cl.now
    cl.isolate(1)
    rate = {1: 0.95, 2: 1.05, 3: 1.05}

    def clock(i: int, t: int) -> int:
        return t0 + int((t - t0) * rate[i])

    last_lease = elected = committed = -1
    for t in range(t0 + 1, t0 + 20 * ET_MAX):
        # the old leader: a lease read every ms, with its clock read fresh
        if cl[1].engine.is_leader:
            cl[1].handle(ev.Tick(clock(1, t)))
            r = lease_read(cl, 1, clock(1, t))
            if r.ok:
                last_lease = t
        for i in (2, 3):  # followers' engines see time only at ticks, a heartbeat apart
            if t % HB == 0:
                cl[i].handle(ev.Tick(clock(i, t)))
        cl.stabilize()
        for i in (2, 3):
            eng = cl[i].engine
            if eng.server_state is ServerState.LEADER and elected < 0:
                elected = t
            if eng.vote.term > old_term and eng.committed is not None and eng.committed.term > old_term:
                committed = t
        if committed >= 0:
            break
    assert elected >= 0 and committed >= 0, "no new leader"
    return last_lease, elected, committed


@pytest.mark.parametrize("pre_vote", [False, True])
def test_a_partitioned_leaders_lease_ends_before_another_leader_is_elected(pre_vote: bool) -> None:
    for seed in range(25):
        last_lease, elected, committed = _partitioned_leader_run(seed, pre_vote)
        assert last_lease > 0, "the lease was never used"
        assert last_lease < elected <= committed, (seed, last_lease, elected, committed)


def test_a_restarted_follower_keeps_refusing_votes_within_the_lease() -> None:
    """The vote lease is not stored: a follower of the answering quorum that restarts
    must still refuse votes for ``election_timeout_max`` (Engine.startup), or a node the
    old leader cannot reach wins with its vote while the old lease is still held."""
    cl = leading_cluster()
    cl.cut(1, 3)
    cl.run_for(2 * ET_MAX)
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    assert lease_read(cl, 1).ok
    durable = cl[2].vote
    assert durable.committed and durable.node_id == 1
    terms = [e.log_id.term for _, e in sorted(cl[2].entries.items())]
    cl.add_node(2, terms=terms, vote=durable, voters=[1, 2, 3])  # crash-restart of 2
    cl.isolate(1)
    cl[3].handle(ev.TriggerElect())
    cl.stabilize()
    assert cl[3].state is not ServerState.LEADER
    assert lease_read(cl, 1).ok  # still within the lease: no other leader exists
    assert cl[1].engine.committed is not None and cl[1].engine.committed >= LogId(1, 1)
