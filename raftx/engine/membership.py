"""Cluster membership: initialization, learners, joint-consensus changes (thesis §4.3).

* `initialize` writes the first membership entry (index 0, term 0) on a pristine
  node; the caller then campaigns if the node is a voter (openraft ``initialize``).
* `change_membership` (leader only, one change in flight): ``C_old`` -> joint
  ``C_old,new`` -> uniform ``C_new``. A configuration is in force as soon as it is
  appended (thesis §4.1); the uniform entry is appended automatically once the
  joint one commits (`on_membership_committed`). The caller is answered when the
  uniform entry is applied. Voters must be learners first (`LearnerNotFound`).
* A leader that is not a voter of the committed configuration steps down
  (thesis §4.2.2), as openraft's ``removed_leader_step_down``: it keeps leading for
  ``Config.removed_leader_step_down`` ms (the commit reaches the followers), hands
  leadership to its most up-to-date voter (thesis §3.10) so the cluster needs no
  election timeout, and one heartbeat interval later steps down anyway.
"""

from __future__ import annotations

import logging
from typing import Any

from raftx.engine import log_ops, sending, server_state, transfer
from raftx.engine.output import Output
from raftx.engine.roles import LeaderState, PendingChange, Roles
from raftx.engine.state import EngineState
from raftx.errors import ChangeMembershipError, EmptyMembership, InProgress, NotAllowed, NotInMembers
from raftx.messages import PayloadBatch
from raftx.types import BasicNode, ChangeMembers, ClientWriteResponse, Membership

__all__ = ["add_learner", "change_membership", "initialize", "on_membership_committed", "step_down_if_removed"]

logger = logging.getLogger(__name__)


def initialize(st: EngineState, roles: Roles, out: Output, membership: Membership, responder: Any) -> bool:
    """Write ``membership`` as entry 0 on a pristine node; True if it should campaign now
    (it is a voter)."""
    if not isinstance(membership, Membership):
        out.respond(responder, NotAllowed(f"initialize needs a Membership, not {type(membership).__name__}"))
        return False
    pristine = st.vote.term == 0 and st.vote.node_id is None and st.log.last_index < 0 and st.snapshot is None
    if not pristine:
        out.respond(responder, NotAllowed(f"node {st.id} is already initialized (vote {st.vote}, "
                                          f"last {st.log.last_log_id})"))
        return False
    if st.id not in membership.nodes:
        out.respond(responder, NotInMembers(f"node {st.id} is not in {sorted(membership.nodes)}"))
        return False
    if not membership.voter_ids():
        out.respond(responder, EmptyMembership("the initial membership has no voter"))
        return False
    if log_ops.append_to_log(st, out, PayloadBatch(0, 0, (membership,))):
        server_state.refresh(st, roles)
    out.respond(responder, None, st.flushed_condition())
    return st.is_voter()


def change_membership(st: EngineState, leader: LeaderState, out: Output, changes: ChangeMembers, retain: bool,
                      responder: Any) -> None:
    """Start a joint-consensus change (thesis §4.3); see the module docstring."""
    ms = st.membership
    if leader.change is not None or not ms.is_effective_committed() or ms.effective.membership.is_joint():
        out.respond(responder, InProgress(f"membership change in progress: {ms.effective!r}"))
        return
    current = ms.effective.membership
    try:
        target = ChangeMembers.coerce(changes).apply(current)
    except ChangeMembershipError as exc:
        out.respond(responder, exc)
        return
    if target.configs[0] == current.configs[0]:
        if dict(target.nodes) == dict(current.nodes):
            log_id = ms.effective.log_id
            assert log_id is not None  # a leader's membership is an entry of its log (thesis §4.1)
            out.respond(responder, ClientWriteResponse(log_id, None, current))  # nothing to do
            return
        _append_membership(st, leader, out, target, responder)
        return
    nodes = {**current.nodes, **target.nodes}
    joint = Membership((current.configs[0], target.configs[0]), nodes)
    leader.change = PendingChange(target, retain, responder)
    logger.info("leader %s starts membership change to voters %s", st.id, sorted(target.configs[0]))
    _append_membership(st, leader, out, joint, None)


def add_learner(st: EngineState, leader: LeaderState, out: Output, node_id: int, node: BasicNode,
                responder: Any) -> None:
    """Add ``node_id`` as a learner (a membership entry with the new node)."""
    change_membership(st, leader, out, ChangeMembers.AddNodes({node_id: node}), True, responder)


def _append_membership(st: EngineState, leader: LeaderState, out: Output, m: Membership, responder: Any) -> None:
    batch = PayloadBatch(st.vote.term, st.log.last_index + 1, (m,))
    sending.leader_append(st, leader, out, batch, (responder,))


def on_membership_committed(st: EngineState, roles: Roles, out: Output) -> None:
    """The effective configuration just committed: finish a joint change, or step down."""
    leader = roles.leader
    if leader is None:
        return
    effective = st.membership.effective.membership
    if effective.is_joint():
        change = leader.change
        new_voters = effective.configs[-1]
        if change is not None:
            target = change.target
            retain = change.retain
        else:  # a joint config left by an earlier leader: finish it
            target = Membership((new_voters,), dict(effective.nodes))
            retain = True
        nodes = dict(effective.nodes)
        nodes.update(target.nodes)
        if not retain:
            for removed in effective.configs[0] - new_voters:
                nodes.pop(removed, None)
        uniform = Membership((frozenset(new_voters),), nodes)
        leader.change = None
        _append_membership(st, leader, out, uniform, None if change is None else change.responder)
        return
    if not effective.is_voter(st.id) and leader.removed_step_at is None:
        delay = st.config.removed_leader_step_down
        if delay is None:
            logger.info("leader %s is not a voter of the committed membership; it keeps leading "
                        "(removed_leader_step_down=None)", st.id)
            return
        logger.info("leader %s is not a voter of the committed membership; hands over in %s ms", st.id, delay)
        leader.removed_step_at = st.now + delay
        step_down_if_removed(st, roles, out)


def step_down_if_removed(st: EngineState, roles: Roles, out: Output) -> None:
    """On a removed leader's deadline: hand over to the most up-to-date voter, then
    (a heartbeat interval later, or with no voter to hand to) step down."""
    leader = roles.leader
    if leader is None or leader.removed_step_at is None or st.now < leader.removed_step_at:
        return
    if not leader.removed_handed_over:
        leader.removed_handed_over = True
        leader.removed_step_at = st.now + st.config.heartbeat_interval
        voters = st.membership.effective.membership.voter_ids() - {st.id}
        if voters:
            target = max(sorted(voters), key=lambda v: leader.progress[v].matching_index if v in leader.progress else -2)
            logger.info("removed leader %s hands leadership to node %s", st.id, target)
            transfer.trigger_transfer_leader(st, leader, out, target)
            return
    logger.info("removed leader %s steps down", st.id)
    server_state.become_follower(st, roles, out)
