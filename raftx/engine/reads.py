"""Linearizable reads (thesis §6.4, ReadIndex) and the leader's quorum-ack lease.

`get_read_log_id` answers ``(read_log_id, applied)`` where
``read_log_id = max(committed, the leader's blank entry of its term)``: once the
state machine applied ``read_log_id``, a read reflects every write committed
before the read began (openraft ``get_read_log_id``). Before answering, the leader
confirms it is still leader with one round of AppendEntries answered by a quorum:
the read records the next send id, a heartbeat goes to every target, and the read
is answered once a quorum (the leader counts itself) answered a request with an
id at least that large. A read not confirmed within ``election_timeout_max``
fails with `QuorumNotEnough`.

The same acknowledgements give the leader lease (openraft CheckQuorum): the
leader knows when the request most recently answered by a quorum was sent
(``last_quorum_acked``); with ``Config.enable_leader_lease`` it refuses writes
once that is older than ``election_timeout_max``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftx import _core
from raftx.engine.state import PendingRead
from raftx.errors import QuorumNotEnough

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

__all__ = ["expire_pending_reads", "fail_pending_reads", "get_read_log_id", "lease_valid", "on_quorum_ack"]


def get_read_log_id(eng: Engine, responder: Any) -> None:
    """Start a ReadIndex read (thesis §6.4); answer after one quorum round."""
    from raftx.engine import replication

    leader = eng.leader
    if leader is None:
        eng.respond(responder, eng.forward_to_leader())
        return
    read_log_id = _core.vote.log_id_max(eng.committed, leader.noop_log_id)
    leader.reads.append(PendingRead(leader.next_send_id + 1, read_log_id, responder, eng.now))
    on_quorum_ack(eng)  # a single voter confirms itself
    if leader.reads:
        replication.broadcast_heartbeat(eng)


def _quorum_value(eng: Engine, values: dict[int, int], own: int) -> int:
    """The value a quorum of voters has reached (joint aware, thesis §4.3)."""
    configs = eng.membership.effective.membership.configs
    halves = [[own if v == eng.id else values.get(v, -1) for v in c] for c in configs]
    if not halves:
        return -1
    return _core.quorum.joint_committed_index(halves[0], halves[1] if len(halves) > 1 else [])


def on_quorum_ack(eng: Engine) -> None:
    """A target answered: advance the lease and answer the reads a quorum confirmed."""
    leader = eng.leader
    if leader is None:
        return
    acked_at = _quorum_value(eng, {t: p.acked_sent_at for t, p in leader.progress.items()}, eng.now)
    if acked_at > leader.last_quorum_acked and acked_at != _core.quorum.INDEX_MAX:
        leader.last_quorum_acked = acked_at
        eng.leader_seen_at = acked_at
    if not leader.reads:
        return
    acked = _quorum_value(eng, {t: p.acked_send_id for t, p in leader.progress.items()}, leader.next_send_id + 1)
    done = [r for r in leader.reads if r.send_id <= acked]
    if not done:
        return
    leader.reads = [r for r in leader.reads if r.send_id > acked]
    for r in done:
        eng.respond(r.responder, (r.read_log_id, eng.applied))


def lease_valid(eng: Engine) -> bool:
    """True while a quorum answered this leader within ``election_timeout_max``."""
    leader = eng.leader
    if leader is None:
        return False
    if not eng.config.enable_leader_lease:
        return True
    lease = eng.config.election_timeout_max
    if eng.now < leader.last_quorum_acked + lease:
        return True
    # A leader that is a quorum by itself (a single voter) has no acks to wait for:
    # recompute with its own "ack" at now before refusing.
    on_quorum_ack(eng)
    return eng.now < leader.last_quorum_acked + lease


def fail_pending_reads(eng: Engine, error: Exception) -> None:
    leader = eng.leader
    if leader is None:
        return
    pending, leader.reads = leader.reads, []
    for r in pending:
        eng.respond(r.responder, error)


def expire_pending_reads(eng: Engine) -> None:
    """Fail reads that no quorum confirmed within ``election_timeout_max``."""
    leader = eng.leader
    if leader is None or not leader.reads:
        return
    limit = eng.now - eng.config.election_timeout_max
    expired = [r for r in leader.reads if r.started_at <= limit]
    if expired:
        leader.reads = [r for r in leader.reads if r.started_at > limit]
        for r in expired:
            eng.respond(r.responder, QuorumNotEnough("read index round", None))
