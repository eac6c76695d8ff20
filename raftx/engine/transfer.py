"""Leadership transfer (thesis §3.10).

The leader stops accepting writes and, once the target's log matches its own,
sends `TransferLeaderRequest` to every other node: they exempt the target from
the leader lease, and the target campaigns at once (no pre-vote) when its own log
has caught up. A transfer that does not depose the leader within
``election_timeout_max`` is abandoned.

The leader's side works on its `LeaderState`; the follower's side
(`handle_transfer_leader`, `ready_to_campaign`) says when to campaign, and the caller
starts the election (`raftx.engine.election.elect`).
"""

from __future__ import annotations

from typing import Any

from raftx import _core
from raftx.engine import peer_check
from raftx.engine.commands import SendTransferLeader
from raftx.engine.output import Output
from raftx.engine.roles import LeaderState
from raftx.engine.state import EngineState
from raftx.errors import PeerNotAuthorized, ProtocolError
from raftx.messages import TransferLeaderRequest
from raftx.types import LogId

__all__ = [
    "abort_if_target_removed", "expire_transfer",
    "handle_transfer_leader", "maybe_send_transfer", "ready_to_campaign", "trigger_transfer_leader"]


def trigger_transfer_leader(st: EngineState, leader: LeaderState, out: Output, to: int) -> None:
    """Start handing leadership to ``to`` (a voter other than this leader)."""
    if to == st.id or not st.membership.effective.membership.is_voter(to):
        return
    if leader.transfer_to == to:
        return  # a repeated request does not extend the deadline
    leader.transfer_to = to
    leader.lease_void = True  # the target may campaign at once (raftx.engine.reads)
    leader.transfer_started_at = st.now
    leader.transfer_sent = False
    maybe_send_transfer(st, leader, out)


def abort_if_target_removed(st: EngineState, leader: LeaderState) -> None:
    """The membership changed: a transfer to a node that is no longer a voter ends."""
    if leader.transfer_to is not None:
        if not st.membership.effective.membership.is_voter(leader.transfer_to):
            leader.transfer_to = None
            leader.transfer_sent = False
            st.transfer_exempt = None


def expire_transfer(st: EngineState, leader: LeaderState) -> None:
    """Give up a transfer that did not depose us within ``election_timeout_max``."""
    if leader.transfer_to is not None:
        if st.now >= leader.transfer_started_at + st.config.election_timeout_max:
            leader.transfer_to = None
            leader.transfer_sent = False
            st.transfer_exempt = None


def maybe_send_transfer(st: EngineState, leader: LeaderState, out: Output) -> None:
    """Once the target matches the whole log, broadcast the transfer request."""
    if leader.transfer_to is None or leader.transfer_sent:
        return
    p = leader.progress.get(leader.transfer_to)
    if p is None or p.matching != st.log.last_log_id:
        return
    req = TransferLeaderRequest(leader.vote, leader.transfer_to, st.log.last_log_id)
    st.transfer_exempt = (leader.vote, leader.transfer_to)  # our lease must not block it
    for target in sorted(leader.progress):
        out.emit(SendTransferLeader(target, req))
    leader.transfer_sent = True  # writes stay refused until deposed or expired


def handle_transfer_leader(st: EngineState, out: Output, req: TransferLeaderRequest, responder: Any = None,
                           sender: int | None = None) -> bool:
    """The current leader hands over: drop its lease; True if we are the target and
    should campaign now (`ready_to_campaign`).

    Only the current leader's connection may ask (``sender``, None: unchecked): the
    leader's vote is public (``kv.status``), so the vote alone proves nothing.
    """
    try:
        if sender is not None and sender != st.current_leader:
            raise PeerNotAuthorized(f"TransferLeader from node {sender}, which is not this node's leader "
                                    f"({st.current_leader})")
        req.validate()
        peer_check.check_names_sender(req.from_leader, sender, "TransferLeader")
    except ProtocolError as exc:
        out.respond(responder, peer_check.refuse(st, exc, sender))
        return False
    out.respond(responder, None)
    if req.from_leader != st.vote:
        return False  # not from the leader we follow
    st.transfer_exempt = (req.from_leader, req.to_node_id)
    if req.to_node_id == st.id:
        st.transfer_pending = req
        return ready_to_campaign(st)
    return False


def ready_to_campaign(st: EngineState) -> bool:
    """True once the transfer target's log caught up: it campaigns (no pre-vote)."""
    req = st.transfer_pending
    if req is None:
        return False
    if req.from_leader != st.vote:
        st.transfer_pending = None
        return False
    last: LogId | None = st.log.last_log_id
    if _core.vote.log_id_lt(last, req.last_log_id):
        return False
    st.transfer_pending = None
    return True
