"""Leader election (§5.2): timeouts, vote requests and responses, becoming leader.

* A node that hears no leader for a randomized election timeout (§5.2) starts an
  election: it increments its term, votes for itself, persists that vote, and
  only then asks every other voter (`SendVote` waits for the vote to be durable).
* A voter grants iff the candidate's vote is at least its own (openraft ``Vote``
  order: one vote per term, first come first served, §5.2) and the candidate's log
  is at least as up-to-date as its own (§5.4.1). The grant is persisted before the
  answer leaves (`Respond` waits for the vote to be durable).
* Any message with a higher term makes the receiver adopt that term and become a
  follower (§5.1).
* With pre-vote (thesis §9.6), a node first asks whether it *would* win, without
  changing any state; only a won pre-vote starts the real election.
* With the leader lease (``Config.enable_leader_lease``, openraft), a node that
  heard from a leader within ``election_timeout_max`` refuses to vote for any
  candidate (the leader's own id included: anyone can name it), so a partitioned
  node cannot depose a healthy leader; only a leadership transfer lifts it.
* A vote request is checked whole before anything changes: its shape and term
  range (`raftx.messages`), and that the sender is a member and the candidate
  (`raftx.engine.peer_check`).

Handlers here may change the role: they are given the `raftx.engine.roles.Roles`.
"""

from __future__ import annotations

import logging
from typing import Any

from raftx import _core
from raftx.engine import log_ops, membership, peer_check, sending, server_state
from raftx.engine.commands import SendVote
from raftx.engine.output import Output
from raftx.engine.progress import SendTimes
from raftx.engine.roles import CandidateState, LeaderState, Roles
from raftx.engine.state import EngineState
from raftx.errors import ProtocolError
from raftx.messages import MAX_TERM, PayloadBatch, VoteRequest, VoteResponse
from raftx.types import LogId, Vote

__all__ = ["become_leader", "elect", "handle_vote_request", "handle_vote_response", "lead", "vote_ge"]

logger = logging.getLogger(__name__)


def vote_ge(incoming: Vote, current: Vote) -> bool:
    """``incoming >= current`` in openraft's vote order (`_core.vote.vote_can_grant`).

    A committed vote (an elected leader) beats an uncommitted one of the same term
    for another node, so a node that voted for a losing candidate still follows the
    term's leader (§5.2).
    """
    return _core.vote.vote_can_grant(current, incoming)


def log_up_to_date(candidate_last: LogId | None, own_last: LogId | None) -> bool:
    """§5.4.1: the candidate's last log id (term, then index) is >= ours."""
    return not _core.vote.log_id_lt(candidate_last, own_last)


def in_leader_lease(st: EngineState, candidate: int | None) -> bool:
    """True while the leader lease forbids voting for ``candidate`` (openraft lease)."""
    if not st.config.enable_leader_lease or st.leader_seen_at is None:
        return False
    if not st.vote.committed:
        return False  # no leader of our current vote to protect (openraft: lease needs a committed vote)
    # No exemption for a candidate naming the current leader: anyone can name it, and a
    # leader that really restarted waits out the lease like every other candidate.
    exempt = st.transfer_exempt
    if exempt is not None and exempt[0] == st.vote and exempt[1] == candidate:
        return False  # the leader handed over to this candidate (thesis §3.10)
    return st.now < st.leader_seen_at + st.config.election_timeout_max


def voter_ids(st: EngineState) -> set[int]:
    return st.membership.effective.membership.voter_ids()


def elect(st: EngineState, roles: Roles, out: Output, pre_vote: bool = False) -> None:
    """Start an election for term + 1 (§5.2), or a pre-vote round for it (thesis §9.6)."""
    if roles.leader is not None or not st.is_voter():
        return
    if st.vote.term >= MAX_TERM:
        # Peers refuse a term above MAX_TERM (raftx.messages): campaigning cannot succeed,
        # and Vote(term + 1) might not even exist. Only a peer that bypassed the checks
        # can have brought us here; stay a follower rather than stop.
        logger.error("node %s is at term %s, the largest usable term: not campaigning", st.id, st.vote.term)
        st.reset_election_timer()
        return
    st.reset_election_timer()
    m = st.membership.effective.membership
    configs = m.configs
    tracker = _core.quorum.VoteTracker(sorted(configs[0]), sorted(configs[1]) if len(configs) > 1 else ())
    vote = Vote(st.vote.term + 1, st.id)
    if pre_vote:
        roles.candidate = CandidateState(vote, True, tracker)
        when = None
    else:
        roles.candidate = CandidateState(vote, False, tracker)
        log_ops.save_vote(st, out, vote)
        server_state.refresh(st, roles)
        when = st.flushed_condition()
        logger.info("node %s starts an election for term %s", st.id, vote.term)
    if tracker.record(st.id, True) == _core.quorum.VOTE_WON:
        _won(st, roles, out)
        return
    req = VoteRequest(vote, st.log.last_log_id, pre_vote)
    for target in sorted(voter_ids(st) - {st.id}):
        out.emit(SendVote(target, req, when))


def _won(st: EngineState, roles: Roles, out: Output) -> None:
    cand = roles.candidate
    assert cand is not None
    if cand.pre_vote:
        elect(st, roles, out, pre_vote=False)
    else:
        become_leader(st, roles, out)


def handle_vote_request(st: EngineState, roles: Roles, out: Output, req: VoteRequest, responder: Any,
                        sender: int | None = None) -> None:
    """Answer a (pre-)vote request (§5.2, §5.4.1, thesis §9.6).

    ``sender`` is the node id the request's connection proved (None: unchecked): it
    must be a member (`peer_check`) and the candidate itself.
    """
    try:
        peer_check.check_member(st, sender, "VoteRequest")
        req.validate()
        peer_check.check_names_sender(req.vote, sender, "VoteRequest")
    except ProtocolError as exc:
        out.respond(responder, peer_check.refuse(st, exc, sender))
        return
    last = st.log.last_log_id
    if req.pre_vote:
        # thesis §9.6: no state changes; grant iff we would grant the real vote and
        # have not heard from a leader within the election timeout.
        heard = st.leader_seen_at is not None and st.now < st.leader_seen_at + st.config.election_timeout_min
        granted = (
            not heard
            and roles.leader is None
            and req.vote.term > st.vote.term
            and log_up_to_date(req.last_log_id, last)
        )
        out.respond(responder, VoteResponse(st.vote, granted, last, pre_vote=True))
        return
    if in_leader_lease(st, req.vote.node_id):
        out.respond(responder, VoteResponse(st.vote, False, last), st.flushed_condition())
        return
    granted = False
    if vote_ge(req.vote, st.vote):
        if log_up_to_date(req.last_log_id, last):
            granted = True
            if req.vote != st.vote:
                _step_down_if_needed(st, roles, out, req.vote.term)
                log_ops.save_vote(st, out, req.vote)
            st.reset_election_timer()  # §5.2: granting a vote restarts the timer
        elif req.vote.term > st.vote.term:
            # §5.1: adopt the higher term even though the vote is refused (§5.4.1).
            _step_down_if_needed(st, roles, out, req.vote.term)
            log_ops.save_vote(st, out, Vote(req.vote.term, None))
    out.respond(responder, VoteResponse(st.vote, granted, last), st.flushed_condition())


def _step_down_if_needed(st: EngineState, roles: Roles, out: Output, term: int) -> None:
    if term > st.vote.term and (roles.leader is not None or roles.candidate is not None):
        server_state.become_follower(st, roles, out)


def handle_vote_response(st: EngineState, roles: Roles, out: Output, target: int, req_vote: Vote,
                         resp: VoteResponse) -> None:
    """Count a vote (§5.2); a higher term in the answer ends the candidacy (§5.1)."""
    if resp.vote.term > st.vote.term and not resp.vote_granted:
        server_state.step_down_to_term(st, roles, out, resp.vote.term)
        return
    cand = roles.candidate
    if cand is None or cand.vote != req_vote or cand.pre_vote != resp.pre_vote:
        return  # an answer to an older election
    result = cand.tracker.record(target, resp.vote_granted)
    if result == _core.quorum.VOTE_WON:
        _won(st, roles, out)
    elif result == _core.quorum.VOTE_LOST:
        logger.info("node %s lost the %selection for term %s", st.id, "pre-" if cand.pre_vote else "", cand.vote.term)
        roles.candidate = None
        server_state.refresh(st, roles)


def become_leader(st: EngineState, roles: Roles, out: Output) -> None:
    """Won the election (§5.2): commit the vote, append the term's blank entry (§8),
    and start replicating to every other member."""
    vote = st.vote.commit()
    roles.candidate = None
    log_ops.save_vote(st, out, vote)
    lead(st, roles, out, vote)


def lead(st: EngineState, roles: Roles, out: Output, vote: Vote) -> None:
    """Lead with the committed ``vote``: append the term's blank entry (§8) and start
    replicating to every other member (after an election, or a restored leadership)."""
    c = st.config
    noop = LogId(vote.term, st.log.last_index + 1)
    leader = roles.leader = LeaderState(vote=vote, noop_log_id=noop, last_quorum_acked=st.now,
                                        next_send_id=roles.last_send_id, send_times=SendTimes(c.election_timeout_max))
    st.leader_seen_at = st.now
    server_state.refresh(st, roles)
    logger.info("node %s is leader of term %s", st.id, vote.term)
    sending.rebuild_progress(st, leader)
    leader.next_heartbeat = st.now + c.heartbeat_interval
    sending.leader_append(st, leader, out, PayloadBatch(vote.term, noop.index, (None,)), ())
    if st.membership.effective.membership.is_joint() and st.membership.is_effective_committed():
        membership.on_membership_committed(st, roles, out)  # finish a change the last leader left joint
