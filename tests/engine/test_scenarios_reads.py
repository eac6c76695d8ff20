"""Linearizable read scenarios (correctness-notes §1.7: S27, S28, S29) against the engine.

raftx follows openraft's ``get_read_log_id`` (thesis §6.4, ReadIndex): the leader
answers ``(read_log_id, applied)`` after one round of AppendEntries answered by a
quorum, with ``read_log_id = max(committed, the blank entry of its term)``; the reader
then waits until the state machine applied ``read_log_id``. A read no quorum confirms
within ``election_timeout_max`` fails with `QuorumNotEnough`; a deposed leader fails it
with `ForwardToLeader`.
"""

from __future__ import annotations

from raftx.engine import events as ev
from raftx.errors import ForwardToLeader, QuorumNotEnough, RaftError
from raftx.types import LogId, ServerState

from tests.engine.harness import Cluster, Reply, booted_cluster, campaign, elect_without_appends


def read(cl: Cluster, node_id: int) -> Reply:
    """Start a linearizable read on ``node_id``."""
    return cl.call(node_id, lambda r: ev.GetReadLogId(r))


def _leader_1(n: int, **config: object) -> Cluster:
    cl = booted_cluster(n, **config)
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    return cl


# -- S27 -----------------------------------------------------------------------------------------


def test_s27_new_leader_read_waits_for_its_own_term_entry() -> None:
    """S27 (TestReadOnlyForNewLeader), C(3).

    Leader 1 commits writes at 2, 3 (term 1). Node 2 is elected for term 2 while every
    AppendEntries is lost, so its blank entry (2,4) is uncommitted and a read on it
    gets no answer (no quorum round completes). Once messages flow, the read is
    answered with ``read_log_id`` = (2,4) — past everything committed when it was
    asked — and 2 applies up to it. Adapted: etcd withholds the read state until the
    own-term entry commits; openraft answers with that entry's id to wait for.
    """
    cl = _leader_1(3, enable_leader_lease=False)
    cl.write(1, b"a")
    cl.write(1, b"b")
    cl.stabilize()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    assert cl[2].engine.committed == LogId(1, 3)
    elect_without_appends(cl, 2)
    assert cl[2].state is ServerState.LEADER and cl[2].engine.vote.term == 2
    committed_at_read = cl[2].engine.committed
    reply = read(cl, 2)
    cl.drop(lambda m: m.kind == "append_req")
    cl.stabilize()
    assert not reply.done
    cl.run_for(40)  # heartbeats get through now
    assert reply.ok
    read_log_id, _applied = reply.value
    assert read_log_id == LogId(2, 4)
    assert committed_at_read is not None and read_log_id > committed_at_read
    assert cl[2].applied_index >= read_log_id.index


# -- S28 -----------------------------------------------------------------------------------------


def test_s28_read_index_is_answered_after_a_quorum_round() -> None:
    """S28 (TestReadOnlyOptionSafe), C(3): with the heartbeat round delivered the read is
    answered with the commit index (the blank entry is already committed), and the
    state machine has applied it."""
    cl = _leader_1(3)
    [w] = cl.write(1, b"x")
    cl.stabilize()
    reply = read(cl, 1)
    assert not reply.done  # not before a quorum answered this round
    cl.stabilize()
    assert w.ok and reply.ok
    read_log_id, applied = reply.value
    assert read_log_id == cl[1].engine.committed == LogId(1, 2)
    assert applied is not None and applied >= read_log_id


def test_s28_read_index_with_one_follower_reachable_is_answered() -> None:
    """S28: a quorum (leader + one of two followers) suffices."""
    cl = _leader_1(3)
    cl.cut(1, 3)
    reply = read(cl, 1)
    cl.stabilize()
    assert reply.ok and reply.value[0] == LogId(1, 1)


def test_s28_isolated_leader_never_answers_a_read() -> None:
    """S28: an isolated leader's read round gets no quorum; it is never answered with a
    log id and fails with `QuorumNotEnough` after ``election_timeout_max``."""
    cl = _leader_1(3)
    cl[1].handle(ev.SetRuntimeConfig(heartbeat=False))
    cl.isolate(1)
    reply = read(cl, 1)
    cl.stabilize()
    assert not reply.done
    for _ in range(cl.config.election_timeout_max // 10 + 1):
        cl.tick(10, nodes=[1])
        cl.stabilize()
    assert reply.done and isinstance(reply.value, QuorumNotEnough)


# -- S29 -----------------------------------------------------------------------------------------


def _deposed_leader_after_new_write() -> tuple[Cluster, int]:
    """C(5): leader 1 commits x=1, is isolated; the rest elect a new leader that
    commits x=2. Returns the cluster and the new leader's id."""
    cl = _leader_1(5)
    [w1] = cl.write(1, b"x=1")
    cl.stabilize()
    assert w1.ok
    cl.isolate(1)
    cl.run_for(1000)
    new = [i for i in (2, 3, 4, 5) if cl[i].state is ServerState.LEADER]
    assert len(new) == 1
    [w2] = cl.write(new[0], b"x=2")
    cl.stabilize()
    assert w2.ok
    assert cl[1].state is ServerState.LEADER  # 1 still believes it leads term 1
    return cl, new[0]


def test_s29_deposed_leader_does_not_serve_a_stale_read() -> None:
    """S29 (etcd #741): the old leader 1, cut off after x=2 was committed elsewhere,
    must never answer a linearizable read (which would let x=1 be read): the read
    fails with `QuorumNotEnough` once no quorum confirmed it in time."""
    cl, _ = _deposed_leader_after_new_write()
    reply = read(cl, 1)
    cl.run_for(cl.config.election_timeout_max + 20)
    assert reply.done and isinstance(reply.value, RaftError), reply
    assert cl[1].payloads()[-1] == b"x=1"  # what a stale read would have returned


def test_s29_deposed_leader_fails_the_read_when_it_learns_the_new_term() -> None:
    """S29, healed before the read round completes: the answers carry the newer term,
    1 steps down and fails the pending read with `ForwardToLeader` naming no stale
    value; the read is retried on the new leader and sees x=2."""
    cl, new = _deposed_leader_after_new_write()
    reply = read(cl, 1)
    cl.heal()
    cl.stabilize()
    assert reply.done and isinstance(reply.value, ForwardToLeader)
    assert cl[1].state is not ServerState.LEADER
    retry = read(cl, new)
    cl.stabilize()
    assert retry.ok
    read_log_id, _ = retry.value
    assert cl[new].applied_index >= read_log_id.index
    assert cl[new].payloads()[-1] == b"x=2"
