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
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from raftx import _core
from raftx.engine import peer_check
from raftx.engine.commands import SendVote
from raftx.engine.progress import SendTimes
from raftx.engine.state import CandidateState, LeaderState
from raftx.errors import ProtocolError
from raftx.messages import MAX_TERM, PayloadBatch, VoteRequest, VoteResponse
from raftx.types import LogId, Vote

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

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


def in_leader_lease(eng: Engine, candidate: int | None) -> bool:
    """True while the leader lease forbids voting for ``candidate`` (openraft lease)."""
    if not eng.config.enable_leader_lease or eng.leader_seen_at is None:
        return False
    if not eng.vote.committed:
        return False  # no leader of our current vote to protect (openraft: lease needs a committed vote)
    # No exemption for a candidate naming the current leader: anyone can name it, and a
    # leader that really restarted waits out the lease like every other candidate.
    exempt = eng.transfer_exempt
    if exempt is not None and exempt[0] == eng.vote and exempt[1] == candidate:
        return False  # the leader handed over to this candidate (thesis §3.10)
    return eng.now < eng.leader_seen_at + eng.config.election_timeout_max


def voter_ids(eng: Engine) -> set[int]:
    return eng.membership.effective.membership.voter_ids()


def elect(eng: Engine, pre_vote: bool = False) -> None:
    """Start an election for term + 1 (§5.2), or a pre-vote round for it (thesis §9.6)."""
    if eng.leader is not None or not eng.is_voter():
        return
    if eng.vote.term >= MAX_TERM:
        # Peers refuse a term above MAX_TERM (raftx.messages): campaigning cannot succeed,
        # and Vote(term + 1) might not even exist. Only a peer that bypassed the checks
        # can have brought us here; stay a follower rather than stop.
        logger.error("node %s is at term %s, the largest usable term: not campaigning", eng.id, eng.vote.term)
        eng.reset_election_timer()
        return
    eng.reset_election_timer()
    m = eng.membership.effective.membership
    configs = m.configs
    tracker = _core.quorum.VoteTracker(sorted(configs[0]), sorted(configs[1]) if len(configs) > 1 else ())
    vote = Vote(eng.vote.term + 1, eng.id)
    if pre_vote:
        eng.candidate = CandidateState(vote, True, tracker)
        when = None
    else:
        eng.candidate = CandidateState(vote, False, tracker)
        eng.save_vote(vote)
        eng.refresh_server_state()
        when = eng.flushed_condition()
        logger.info("node %s starts an election for term %s", eng.id, vote.term)
    if tracker.record(eng.id, True) == _core.quorum.VOTE_WON:
        _won(eng)
        return
    req = VoteRequest(vote, eng.log.last_log_id, pre_vote)
    for target in sorted(voter_ids(eng) - {eng.id}):
        eng.emit(SendVote(target, req, when))


def _won(eng: Engine) -> None:
    cand = eng.candidate
    assert cand is not None
    if cand.pre_vote:
        elect(eng, pre_vote=False)
    else:
        become_leader(eng)


def handle_vote_request(eng: Engine, req: VoteRequest, responder: Any, sender: int | None = None) -> None:
    """Answer a (pre-)vote request (§5.2, §5.4.1, thesis §9.6).

    ``sender`` is the node id the request's connection proved (None: unchecked): it
    must be a member (`peer_check`) and the candidate itself.
    """
    try:
        peer_check.check_member(eng, sender, "VoteRequest")
        req.validate()
        peer_check.check_names_sender(req.vote, sender, "VoteRequest")
    except ProtocolError as exc:
        eng.respond(responder, peer_check.refuse(eng, exc, sender))
        return
    last = eng.log.last_log_id
    if req.pre_vote:
        # thesis §9.6: no state changes; grant iff we would grant the real vote and
        # have not heard from a leader within the election timeout.
        heard = eng.leader_seen_at is not None and eng.now < eng.leader_seen_at + eng.config.election_timeout_min
        granted = (
            not heard
            and eng.leader is None
            and req.vote.term > eng.vote.term
            and log_up_to_date(req.last_log_id, last)
        )
        eng.respond(responder, VoteResponse(eng.vote, granted, last, pre_vote=True))
        return
    if in_leader_lease(eng, req.vote.node_id):
        eng.respond(responder, VoteResponse(eng.vote, False, last), eng.flushed_condition())
        return
    granted = False
    if vote_ge(req.vote, eng.vote):
        if log_up_to_date(req.last_log_id, last):
            granted = True
            if req.vote != eng.vote:
                _step_down_if_needed(eng, req.vote.term)
                eng.save_vote(req.vote)
            eng.reset_election_timer()  # §5.2: granting a vote restarts the timer
        elif req.vote.term > eng.vote.term:
            # §5.1: adopt the higher term even though the vote is refused (§5.4.1).
            _step_down_if_needed(eng, req.vote.term)
            eng.save_vote(Vote(req.vote.term, None))
    eng.respond(responder, VoteResponse(eng.vote, granted, last), eng.flushed_condition())


def _step_down_if_needed(eng: Engine, term: int) -> None:
    if term > eng.vote.term and (eng.leader is not None or eng.candidate is not None):
        eng.become_follower()


def handle_vote_response(eng: Engine, target: int, req_vote: Vote, resp: VoteResponse) -> None:
    """Count a vote (§5.2); a higher term in the answer ends the candidacy (§5.1)."""
    if resp.vote.term > eng.vote.term and not resp.vote_granted:
        step_down_to_term(eng, resp.vote.term)
        return
    cand = eng.candidate
    if cand is None or cand.vote != req_vote or cand.pre_vote != resp.pre_vote:
        return  # an answer to an older election
    result = cand.tracker.record(target, resp.vote_granted)
    if result == _core.quorum.VOTE_WON:
        _won(eng)
    elif result == _core.quorum.VOTE_LOST:
        logger.info("node %s lost the %selection for term %s", eng.id, "pre-" if cand.pre_vote else "", cand.vote.term)
        eng.candidate = None
        eng.refresh_server_state()


def step_down_to_term(eng: Engine, term: int) -> None:
    """A higher term was seen (§5.1): adopt it, without a vote, and follow."""
    if term <= eng.vote.term:
        return
    eng.become_follower()
    eng.save_vote(Vote(term, None))
    eng.reset_election_timer()


def become_leader(eng: Engine) -> None:
    """Won the election (§5.2): commit the vote, append the term's blank entry (§8),
    and start replicating to every other member."""
    vote = eng.vote.commit()
    eng.candidate = None
    eng.save_vote(vote)
    lead(eng, vote)


def lead(eng: Engine, vote: Vote) -> None:
    """Lead with the committed ``vote``: append the term's blank entry (§8) and start
    replicating to every other member (after an election, or a restored leadership)."""
    from raftx.engine import replication

    noop = LogId(vote.term, eng.log.last_index + 1)
    eng.leader = LeaderState(vote=vote, noop_log_id=noop, last_quorum_acked=eng.now,
                             next_send_id=eng.last_send_id, send_times=SendTimes(eng.config.election_timeout_max))
    eng.leader_seen_at = eng.now
    eng.refresh_server_state()
    logger.info("node %s is leader of term %s", eng.id, vote.term)
    replication.rebuild_progress(eng)
    eng.next_heartbeat = eng.now + eng.config.heartbeat_interval
    replication.leader_append(eng, PayloadBatch(vote.term, noop.index, (None,)), ())
    if eng.membership.effective.membership.is_joint() and eng.membership.is_effective_committed():
        from raftx.engine import membership

        membership.on_membership_committed(eng)  # finish a change the last leader left joint
