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

Lease reads (``ReadPolicy.LEASE_READ``, thesis §6.4 "using clocks to reduce
messaging for read-only queries") answer at once, without a round, while

    now < read_lease_end = s + election_timeout_min - heartbeat_interval - election_timeout_min / 10

where ``s`` is the send time (leader clock) of the latest request a quorum answered.
Why no other leader can commit anything before then: a new leader needs the votes
of a quorum, which shares a node N with the quorum that answered the request sent
at ``s``. N received it at real time >= s and, accepting us (`following.accept_leader`),
(1) restarted its election timer to at least ``election_timeout_min`` on its clock and
(2) started refusing votes to anyone for ``election_timeout_max`` (the vote lease,
`election.in_leader_lease`; a restarted node keeps it, `Engine.startup`). So N can
neither campaign itself nor vote for another candidate until ``election_timeout_min``
after s on its clock; its clock reads time up to one ``heartbeat_interval`` late
(`now` moves on ticks, at most a heartbeat apart: the ``- heartbeat_interval``).
**Clock assumption**: every node's clock runs at a rate within 5% of real time, so
durations measured on two nodes differ by under 10% (the ``election_timeout_min / 10``
margin); clocks need not agree on the time, only on how long a duration is. It also
assumes a node's ticks are not late by more than that heartbeat interval (an event
loop stalled longer, e.g. by a long GC pause or a starved CPU, can make a follower's
timer fire early by the excess). The leader
checks against ``now`` read when the read arrives (`raft.Raft.get_read_log_id` passes
the runtime clock), not the last tick. Not covered (the lease is refused or void):
``enable_leader_lease=False`` (no vote lease on followers: lease reads fall back to
ReadIndex); a leadership transfer (its target campaigns at once: the lease is void
for the rest of the term, ``LeaderState.lease_void``); ``raft.trigger().elect()`` on
a follower, which campaigns without waiting for its timer: do not use it together
with lease reads. When the lease does not hold, a lease read waits for a round like
ReadIndex (openraft does the same).
"""

from __future__ import annotations

from typing import Any

from raftx import _core
from raftx.engine import sending
from raftx.engine.output import Output
from raftx.engine.roles import LeaderState, PendingRead
from raftx.engine.state import EngineState
from raftx.errors import QuorumNotEnough

__all__ = ["expire_pending_reads", "fail_pending_reads", "get_read_log_id", "lease_valid", "on_quorum_ack",
           "read_lease_end"]


def get_read_log_id(st: EngineState, leader: LeaderState, out: Output, responder: Any, lease: bool = False,
                    now: int | None = None) -> None:
    """Start a ReadIndex read (thesis §6.4); answer after one quorum round, or at once
    when ``lease`` is asked for and the read lease holds at ``now`` (module docstring)."""
    if now is not None and now > st.now:
        st.now = now  # a fresher reading of the same clock Tick carries
    read_log_id = _core.vote.log_id_max(st.committed, leader.noop_log_id)
    if lease:
        end = read_lease_end(st, leader, out)
        if end is not None and st.now < end:
            out.respond(responder, (read_log_id, st.applied))
            return
    leader.reads.append(PendingRead(leader.next_send_id + 1, read_log_id, responder, st.now))
    on_quorum_ack(st, leader, out)  # a single voter confirms itself
    if leader.reads:
        sending.broadcast_heartbeat(st, leader, out)


def _quorum_value(st: EngineState, values: dict[int, int], own: int) -> int:
    """The value a quorum of voters has reached (joint aware, thesis §4.3)."""
    configs = st.membership.effective.membership.configs
    halves = [[own if v == st.id else values.get(v, -1) for v in c] for c in configs]
    if not halves:
        return -1
    return _core.quorum.joint_committed_index(halves[0], halves[1] if len(halves) > 1 else [])


def on_quorum_ack(st: EngineState, leader: LeaderState, out: Output) -> None:
    """A target answered: advance the lease and answer the reads a quorum confirmed."""
    acked_at = _quorum_value(st, {t: p.acked_sent_at for t, p in leader.progress.items()}, st.now)
    if acked_at != _core.quorum.INDEX_MAX:
        if acked_at > leader.last_quorum_acked:
            leader.last_quorum_acked = acked_at
            st.leader_seen_at = acked_at
        if acked_at > leader.lease_acked:
            leader.lease_acked = acked_at
    if not leader.reads:
        return
    acked = _quorum_value(st, {t: p.acked_send_id for t, p in leader.progress.items()}, leader.next_send_id + 1)
    done = [r for r in leader.reads if r.send_id <= acked]
    if not done:
        return
    leader.reads = [r for r in leader.reads if r.send_id > acked]
    for r in done:
        out.respond(r.responder, (r.read_log_id, st.applied))


def read_lease_end(st: EngineState, leader: LeaderState, out: Output) -> int | None:
    """When this leader's read lease ends (engine time), or None if it has none (the
    bound and its safety argument: module docstring)."""
    c = st.config
    if not c.enable_leader_lease or leader.lease_void or leader.transfer_to is not None:
        return None
    on_quorum_ack(st, leader, out)  # a single voter is its own quorum, acked now
    if leader.lease_acked < 0:
        return None
    return leader.lease_acked + c.election_timeout_min - c.heartbeat_interval - c.election_timeout_min // 10


def lease_valid(st: EngineState, leader: LeaderState, out: Output) -> bool:
    """True while a quorum answered this leader within ``election_timeout_max``."""
    if not st.config.enable_leader_lease:
        return True
    lease = st.config.election_timeout_max
    if st.now < leader.last_quorum_acked + lease:
        return True
    # A leader that is a quorum by itself (a single voter) has no acks to wait for:
    # recompute with its own "ack" at now before refusing.
    on_quorum_ack(st, leader, out)
    return st.now < leader.last_quorum_acked + lease


def fail_pending_reads(leader: LeaderState, out: Output, error: Exception) -> None:
    pending, leader.reads = leader.reads, []
    for r in pending:
        out.respond(r.responder, error)


def expire_pending_reads(st: EngineState, leader: LeaderState, out: Output) -> None:
    """Fail reads that no quorum confirmed within ``election_timeout_max``."""
    if not leader.reads:
        return
    limit = st.now - st.config.election_timeout_max
    expired = [r for r in leader.reads if r.started_at <= limit]
    if expired:
        leader.reads = [r for r in leader.reads if r.started_at > limit]
        for r in expired:
            out.respond(r.responder, QuorumNotEnough("read index round", None))
