"""Cluster membership: initialization, learners, joint-consensus changes (thesis §4.3).

* `initialize` writes the first membership entry (index 0, term 0) on a pristine
  node, then campaigns if the node is a voter (openraft ``initialize``).
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
from typing import TYPE_CHECKING, Any

from raftx.engine import election, replication
from raftx.engine.state import PendingChange
from raftx.errors import ChangeMembershipError, EmptyMembership, InProgress, NotAllowed, NotInMembers
from raftx.messages import PayloadBatch
from raftx.types import BasicNode, ChangeMembers, ClientWriteResponse, Membership

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

__all__ = ["add_learner", "change_membership", "initialize", "on_membership_committed", "step_down_if_removed"]

logger = logging.getLogger(__name__)


def initialize(eng: Engine, membership: Membership, responder: Any) -> None:
    """Write ``membership`` as entry 0 on a pristine node; campaign if a voter."""
    if not isinstance(membership, Membership):
        eng.respond(responder, NotAllowed(f"initialize needs a Membership, not {type(membership).__name__}"))
        return
    pristine = eng.vote.term == 0 and eng.vote.node_id is None and eng.log.last_index < 0 and eng.snapshot is None
    if not pristine:
        eng.respond(responder, NotAllowed(f"node {eng.id} is already initialized (vote {eng.vote}, last {eng.log.last_log_id})"))
        return
    if eng.id not in membership.nodes:
        eng.respond(responder, NotInMembers(f"node {eng.id} is not in {sorted(membership.nodes)}"))
        return
    if not membership.voter_ids():
        eng.respond(responder, EmptyMembership("the initial membership has no voter"))
        return
    eng.append_to_log(PayloadBatch(0, 0, (membership,)))
    eng.respond(responder, None, eng.flushed_condition())
    if eng.is_voter():
        election.elect(eng, pre_vote=False)


def change_membership(eng: Engine, changes: ChangeMembers, retain: bool, responder: Any) -> None:
    """Start a joint-consensus change (thesis §4.3); see the module docstring."""
    leader = eng.leader
    if leader is None:
        eng.respond(responder, eng.forward_to_leader())
        return
    ms = eng.membership
    if leader.change is not None or not ms.is_effective_committed() or ms.effective.membership.is_joint():
        eng.respond(responder, InProgress(f"membership change in progress: {ms.effective!r}"))
        return
    current = ms.effective.membership
    try:
        target = ChangeMembers.coerce(changes).apply(current)
    except ChangeMembershipError as exc:
        eng.respond(responder, exc)
        return
    if target.configs[0] == current.configs[0]:
        if dict(target.nodes) == dict(current.nodes):
            log_id = ms.effective.log_id
            assert log_id is not None  # a leader's membership is an entry of its log (thesis §4.1)
            eng.respond(responder, ClientWriteResponse(log_id, None, current))  # nothing to do
            return
        _append_membership(eng, target, responder)
        return
    nodes = {**current.nodes, **target.nodes}
    joint = Membership((current.configs[0], target.configs[0]), nodes)
    leader.change = PendingChange(target, retain, responder)
    logger.info("leader %s starts membership change to voters %s", eng.id, sorted(target.configs[0]))
    _append_membership(eng, joint, None)


def add_learner(eng: Engine, node_id: int, node: BasicNode, responder: Any) -> None:
    """Add ``node_id`` as a learner (a membership entry with the new node)."""
    change_membership(eng, ChangeMembers.AddNodes({node_id: node}), True, responder)


def _append_membership(eng: Engine, m: Membership, responder: Any) -> None:
    batch = PayloadBatch(eng.vote.term, eng.log.last_index + 1, (m,))
    replication.leader_append(eng, batch, (responder,))


def on_membership_committed(eng: Engine) -> None:
    """The effective configuration just committed: finish a joint change, or step down."""
    leader = eng.leader
    if leader is None:
        return
    effective = eng.membership.effective.membership
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
        _append_membership(eng, uniform, None if change is None else change.responder)
        return
    if not effective.is_voter(eng.id) and leader.removed_step_at is None:
        delay = eng.config.removed_leader_step_down
        if delay is None:
            logger.info("leader %s is not a voter of the committed membership; it keeps leading "
                        "(removed_leader_step_down=None)", eng.id)
            return
        logger.info("leader %s is not a voter of the committed membership; hands over in %s ms", eng.id, delay)
        leader.removed_step_at = eng.now + delay
        step_down_if_removed(eng)


def step_down_if_removed(eng: Engine) -> None:
    """On a removed leader's deadline: hand over to the most up-to-date voter, then
    (a heartbeat interval later, or with no voter to hand to) step down."""
    from raftx.engine import transfer

    leader = eng.leader
    if leader is None or leader.removed_step_at is None or eng.now < leader.removed_step_at:
        return
    if not leader.removed_handed_over:
        leader.removed_handed_over = True
        leader.removed_step_at = eng.now + eng.config.heartbeat_interval
        voters = eng.membership.effective.membership.voter_ids() - {eng.id}
        if voters:
            target = max(sorted(voters), key=lambda v: leader.progress[v].matching_index if v in leader.progress else -2)
            logger.info("removed leader %s hands leadership to node %s", eng.id, target)
            transfer.trigger_transfer_leader(eng, target)
            return
    logger.info("removed leader %s steps down", eng.id)
    eng.become_follower()
