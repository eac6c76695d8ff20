"""Leadership transfer (thesis §3.10).

The leader stops accepting writes and, once the target's log matches its own,
sends `TransferLeaderRequest` to every other node: they exempt the target from
the leader lease, and the target campaigns at once (no pre-vote) when its own log
has caught up. A transfer that does not depose the leader within
``election_timeout_max`` is abandoned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftx.engine import peer_check
from raftx.engine.commands import SendTransferLeader
from raftx.errors import PeerNotAuthorized, ProtocolError
from raftx.messages import TransferLeaderRequest

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

__all__ = [
    "abort_if_target_removed", "expire_transfer",
    "handle_transfer_leader", "maybe_elect_for_transfer", "maybe_send_transfer", "trigger_transfer_leader"]


def trigger_transfer_leader(eng: Engine, to: int) -> None:
    """Start handing leadership to ``to`` (a voter other than this leader)."""
    leader = eng.leader
    if leader is None or to == eng.id or not eng.membership.effective.membership.is_voter(to):
        return
    if leader.transfer_to == to:
        return  # a repeated request does not extend the deadline
    leader.transfer_to = to
    leader.lease_void = True  # the target may campaign at once (raftx.engine.reads)
    leader.transfer_started_at = eng.now
    leader.transfer_sent = False
    maybe_send_transfer(eng)


def abort_if_target_removed(eng: Engine) -> None:
    """The membership changed: a transfer to a node that is no longer a voter ends."""
    leader = eng.leader
    if leader is not None and leader.transfer_to is not None:
        if not eng.membership.effective.membership.is_voter(leader.transfer_to):
            leader.transfer_to = None
            leader.transfer_sent = False
            eng.transfer_exempt = None


def expire_transfer(eng: Engine) -> None:
    """Give up a transfer that did not depose us within ``election_timeout_max``."""
    leader = eng.leader
    if leader is not None and leader.transfer_to is not None:
        if eng.now >= leader.transfer_started_at + eng.config.election_timeout_max:
            leader.transfer_to = None
            leader.transfer_sent = False
            eng.transfer_exempt = None


def maybe_send_transfer(eng: Engine) -> None:
    """Once the target matches the whole log, broadcast the transfer request."""
    leader = eng.leader
    if leader is None or leader.transfer_to is None or leader.transfer_sent:
        return
    p = leader.progress.get(leader.transfer_to)
    if p is None or p.matching != eng.log.last_log_id:
        return
    req = TransferLeaderRequest(leader.vote, leader.transfer_to, eng.log.last_log_id)
    eng.transfer_exempt = (leader.vote, leader.transfer_to)  # our lease must not block it
    for target in sorted(leader.progress):
        eng.emit(SendTransferLeader(target, req))
    leader.transfer_sent = True  # writes stay refused until deposed or expired


def handle_transfer_leader(eng: Engine, req: TransferLeaderRequest, responder: Any = None,
                           sender: int | None = None) -> None:
    """The current leader hands over: drop its lease; campaign if we are the target.

    Only the current leader's connection may ask (``sender``, None: unchecked): the
    leader's vote is public (``kv.status``), so the vote alone proves nothing.
    """
    try:
        if sender is not None and sender != eng.current_leader:
            raise PeerNotAuthorized(f"TransferLeader from node {sender}, which is not this node's leader "
                                    f"({eng.current_leader})")
        req.validate()
        peer_check.check_names_sender(req.from_leader, sender, "TransferLeader")
    except ProtocolError as exc:
        eng.respond(responder, peer_check.refuse(eng, exc, sender))
        return
    eng.respond(responder, None)
    if req.from_leader != eng.vote:
        return  # not from the leader we follow
    eng.transfer_exempt = (req.from_leader, req.to_node_id)
    if req.to_node_id == eng.id:
        eng.transfer_pending = req
        maybe_elect_for_transfer(eng)


def maybe_elect_for_transfer(eng: Engine) -> None:
    """The transfer target campaigns (no pre-vote) once its log caught up."""
    from raftx.engine import election
    from raftx.types import LogId
    from raftx import _core

    req = eng.transfer_pending
    if req is None:
        return
    if req.from_leader != eng.vote:
        eng.transfer_pending = None
        return
    last: LogId | None = eng.log.last_log_id
    if _core.vote.log_id_lt(last, req.last_log_id):
        return
    eng.transfer_pending = None
    election.elect(eng, pre_vote=False)
