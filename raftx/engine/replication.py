"""The leader's side of log replication (§5.3) and commitment (§5.4.2): client writes
and the targets' answers. What is sent to each target is `raftx.engine.sending`.

* Client writes are appended as one batch (group commit) and replicated to every
  other member.
* A failed consistency check backtracks by term using the follower's hint (§5.3).
* `maybe_commit` is the one place that advances a leader's commit index: the
  quorum-matched index counts only if its entry is from the current term
  (§5.4.2, Figure 8). The leader's own log counts only once flushed.

Each handler is given the `Roles` (an answer with a higher term ends the
leadership, §5.1; a commit can end it too, `raftx.engine.membership`).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence, cast

from raftx import _core
from raftx.engine import log_ops, membership, reads, reversion, sending, server_state, transfer
from raftx.engine.output import Output
from raftx.engine.progress import Progress, ProgressState, Send
from raftx.engine.roles import LeaderState, Roles
from raftx.engine.state import EngineState
from raftx.errors import ClientWriteError, NotLeader
from raftx.messages import AppendEntriesResponse, PayloadBatch, SnapshotResponse

__all__ = [
    "client_write",
    "handle_append_response",
    "handle_replication_failed",
    "handle_snapshot_response",
    "maybe_commit",
    "on_local_flushed",
]

logger = logging.getLogger(__name__)

_BYTES = frozenset({bytes})
_PLAIN = frozenset({bytes, type(None)})


# -- appending ------------------------------------------------------------------------------


def client_write(st: EngineState, roles: Roles, out: Output, payloads: Sequence[bytes | None],
                 responders: Sequence[Any], expected_leader: Any = None) -> None:
    """Append a batch of client payloads as one write (group commit) and replicate it;
    with ``expected_leader`` only if this node leads with that `LeaderId`."""
    if len(responders) != len(payloads):
        raise ValueError(f"{len(payloads)} payloads but {len(responders)} responders")
    if not payloads:
        return
    kinds = set(map(type, payloads))
    plain = kinds <= _PLAIN  # the common case, checked at C speed: bytes (or blanks) only
    bad = [] if plain else [k for k, x in enumerate(payloads)
                            if x is not None and not isinstance(x, (bytes, bytearray, memoryview))]
    if bad:
        for r in responders:
            out.respond(r, ClientWriteError(f"payloads must be bytes; not at positions {bad}"))
        return
    err: Exception | None = None
    leader = roles.leader
    if expected_leader is not None and (leader is None or leader.vote.leader_id != expected_leader):
        # a conditional write: the leader changed since the caller looked (openraft with_leader)
        known = st.current_leader
        err = NotLeader(known, None if known is None else st.membership.effective.membership.get_node(known))
    elif leader is None:
        fwd = st.forward_to_leader()
        err = NotLeader(fwd.leader_id, fwd.leader_node)  # refused unproposed: safe to retry elsewhere
    elif leader.transfer_to is not None or not reads.lease_valid(st, leader, out):
        err = NotLeader(None, None)  # transferring, or no quorum heard within the lease
    if err is not None:
        for r in responders:
            out.respond(r, err)
        return
    if kinds == _BYTES:  # every payload is bytes
        size = sum(map(len, cast("Sequence[bytes]", payloads)))
    else:
        size = sum(len(p) for p in payloads if p is not None)
    limit = st.config.max_payload_bytes
    if size > limit:  # a payload no frame can carry would stall replication: refuse it alone
        fits = [p is None or len(p) <= limit for p in payloads]
        if not all(fits):
            for r, p, ok in zip(responders, payloads, fits):
                if not ok:
                    out.respond(r, ClientWriteError(f"payload of {len(p or b'')} bytes exceeds "
                                                    f"Config.max_payload_bytes ({limit})"))
            payloads = [p for p, ok in zip(payloads, fits) if ok]
            responders = [r for r, ok in zip(responders, fits) if ok]
            if not payloads:
                return
            size = sum(len(p) for p in payloads if p is not None)
    assert leader is not None
    leader.entry_bytes = 0.9 * leader.entry_bytes + 0.1 * (size / len(payloads))
    if not plain:
        payloads = [bytes(x) if isinstance(x, (bytearray, memoryview)) else x for x in payloads]
    sending.leader_append(st, leader, out, PayloadBatch(st.vote.term, st.log.last_index + 1, payloads), responders)


# -- answers -----------------------------------------------------------------------------------


def handle_append_response(st: EngineState, roles: Roles, out: Output, target: int, send_id: int,
                           resp: AppendEntriesResponse) -> None:
    """Process a follower's answer to `Replicate` ``send_id`` (§5.3)."""
    if resp.vote.term > st.vote.term:
        server_state.step_down_to_term(st, roles, out, resp.vote.term)  # §5.1
        return
    leader = roles.leader
    if leader is None:
        return
    p = leader.progress.get(target)
    if p is None:
        return
    send = p.pop(send_id)
    if resp.vote != leader.vote:
        return  # not an answer from our term
    if send is None:
        # A request forgotten (a heartbeat beyond the remembered ones, or replication
        # dropped after a conflict): it tells nothing about the log now, but the
        # target accepted this leader when it answered it (§6.4 leadership round).
        sent_at = leader.send_times.sent_at(send_id, st.now)
        if sent_at is not None:
            p.ack(send_id, sent_at)
            reads.on_quorum_ack(st, leader, out)
        return
    p.ack(send.send_id, send.sent_at)
    reads.on_quorum_ack(st, leader, out)
    if resp.success:
        matching = resp.matching
        if matching is None:
            matching = send.prev_log_id if send.heartbeat else st.log.log_id_at(send.last_index)
        elif matching.index > send.last_index or not st.log.has(matching):
            matching = None  # a follower claiming more than was sent: ignore the claim
        if p.update_matching(matching) and target in leader.progress:
            maybe_commit(st, roles, out, leader.tracker.update(target, p.matching_index))
        if not send.heartbeat and p.matching_index < send.last_index:
            p.become_probe()  # partial success: resend from what matched
        elif p.state is ProgressState.PROBE and not send.heartbeat:
            p.become_replicate()
    elif not send.heartbeat or send.prev_log_id is not None:
        _backtrack(st, leader, target, p, send, resp)
    if roles.leader is leader:  # a commit can end the leadership (raftx.engine.membership)
        sending.send_to(st, leader, out, target, p)
        transfer.maybe_send_transfer(st, leader, out)


def _backtrack(st: EngineState, leader: LeaderState, target: int, p: Progress, send: Send,
               resp: AppendEntriesResponse) -> None:
    """The consistency check failed at ``send.prev_log_id`` (§5.3): probe lower.

    The follower's hint (``conflict_index``, ``conflict_term``) names the last
    index where its term is <= our prev term; our own log answers which index
    below that can match, skipping a whole term per round trip. ``send`` is still
    in flight (answers to forgotten requests never get here) and from this term, so
    a rejection at or below the matching index is no reordered answer: the
    follower lost entries it had acknowledged (`raftx.engine.reversion`).
    """
    rejected = -1 if send.prev_log_id is None else send.prev_log_id.index
    if rejected <= p.matching_index:
        reversion.on_follower_log_reverted(st, leader, target, p, send, resp)
        return
    probe, _ = st.log.find_conflict_by_term(min(resp.conflict_index, rejected), resp.conflict_term)
    if resp.conflict_index < 0:
        probe = -1
    p.become_probe(min(rejected, probe + 1))


def handle_replication_failed(leader: LeaderState, target: int, send_id: int) -> None:
    """A request could not be delivered: forget it and probe again at the next heartbeat."""
    p = leader.progress.get(target)
    if p is None:
        return
    send = p.sends.get(send_id) if send_id >= 0 else None
    if send_id >= 0 and send is None:
        return
    if send is not None and send.heartbeat:
        p.pop(send_id)
        return
    p.become_probe(drop_heartbeats=True)


def handle_snapshot_response(st: EngineState, roles: Roles, out: Output, target: int, send_id: int,
                             resp: SnapshotResponse) -> None:
    """The target installed (or already had) the snapshot (§7): replicate after it."""
    if resp.vote.term > st.vote.term:
        server_state.step_down_to_term(st, roles, out, resp.vote.term)
        return
    leader = roles.leader
    if leader is None or target not in leader.progress:
        return
    p = leader.progress[target]
    send = p.pop(send_id)
    if send is None or resp.vote != leader.vote:
        return
    p.ack(send.send_id, send.sent_at)
    reads.on_quorum_ack(st, leader, out)
    if p.update_matching(send.snapshot_last):
        maybe_commit(st, roles, out, leader.tracker.update(target, p.matching_index))
    p.become_replicate()
    sending.send_to(st, leader, out, target, p)


def on_local_flushed(st: EngineState, roles: Roles, out: Output) -> None:
    """The leader's own log became durable further: it counts toward commit now."""
    leader = roles.leading()
    own = st.io.flushed_log_id
    if own is not None and st.log.has(own):
        maybe_commit(st, roles, out, leader.tracker.update(st.id, own.index))


# -- commitment ----------------------------------------------------------------------------------


def maybe_commit(st: EngineState, roles: Roles, out: Output, quorum_index: int) -> bool:
    """Commit up to ``quorum_index`` (matched by a quorum) if allowed; True if it moved.

    §5.4.2 (Figure 8): a leader commits by counting replicas only entries of its
    own term; earlier entries are committed indirectly with them. This is the
    only place a leader's commit index advances.
    """
    leader = roles.leader
    if leader is None or quorum_index == _core.quorum.INDEX_MAX:
        return False
    committed = -1 if st.committed is None else st.committed.index
    if quorum_index <= committed:
        return False
    if st.log.term_at(quorum_index) != leader.vote.term:
        return False
    if log_ops.commit_to(st, out, quorum_index):
        membership.on_membership_committed(st, roles, out)  # finish a joint change (thesis §4.3)
    return True
