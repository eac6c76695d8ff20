"""Leaving a role (§5.1): stepping down to follower, and adopting a higher term.

A leader or candidate that sees a higher term, or a legitimate leader of its own
term, becomes a follower; what only a leader could finish (pending reads, a
membership change in flight) fails with `raftx.errors.ForwardToLeader`. Roles are
entered in `raftx.engine.election`.
"""

from __future__ import annotations

import logging

from raftx.engine import log_ops, reads
from raftx.engine.output import Output
from raftx.engine.roles import Roles
from raftx.engine.state import EngineState
from raftx.types import Vote

__all__ = ["become_follower", "refresh", "step_down_to_term"]

logger = logging.getLogger(__name__)


def refresh(st: EngineState, roles: Roles) -> None:
    """FOLLOWER / LEARNER from the effective membership, unless leading or campaigning."""
    roles.refresh(st.is_voter())


def become_follower(st: EngineState, roles: Roles, out: Output) -> None:
    """Leave the leader / candidate role (§5.1); fail what only a leader could finish."""
    leader = roles.leader
    if leader is not None:
        reads.fail_pending_reads(leader, out, st.forward_to_leader())
        change = leader.change
        if change is not None:
            out.respond(change.responder, st.forward_to_leader())
        roles.last_send_id = leader.next_send_id
        logger.info("node %s steps down from leader of term %s", st.id, leader.vote.term)
    roles.leader = None
    roles.candidate = None
    refresh(st, roles)


def step_down_to_term(st: EngineState, roles: Roles, out: Output, term: int) -> None:
    """A higher term was seen (§5.1): adopt it, without a vote, and follow."""
    if term <= st.vote.term:
        return
    become_follower(st, roles, out)
    log_ops.save_vote(st, out, Vote(term, None))
    st.reset_election_timer()
