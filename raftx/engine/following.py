"""The follower's side: AppendEntries (§5.3) and snapshot installation (§7).

AppendEntries, in order:

0. check the whole request first, changing nothing (`_check_append`): its shape and
   ranges, that the sender may send it (`raftx.engine.peer_check`), and that none of
   it conflicts with the committed log; a refused request is answered with the
   `ProtocolError` (the vote of a stranger is never saved);
1. reject a leader whose vote is below ours (§5.1: a stale term); otherwise accept
   it as leader (persisting its vote if new) and restart the election timer (§5.2);
2. consistency check (§5.3): the entry at ``prev_log_id`` must be ours, else
   answer a conflict with a backtracking hint (largest index <= prev whose term is
   <= the prev term);
3. skip entries we already have; at the first conflicting one delete it and all
   that follow (`TruncateLog`), then append the rest (`AppendToLog`);
4. commit up to ``min(leader_commit, last entry this request matched)`` (§5.3);
5. answer success once every storage write is durable (`Respond` ``when``).

Entries at or below the commit index can never conflict (Log Matching, §5.3); a
request that claims otherwise is answered with `ProtocolError`, state untouched.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from raftx.engine import peer_check
from raftx.engine.commands import InstallSnapshot
from raftx.engine.state import each_responder
from raftx.errors import ProtocolError
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, LogEntries, SnapshotResponse
from raftx.types import SnapshotMeta, Vote

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

__all__ = ["accept_leader", "admit_snapshot_chunk", "check_snapshot", "handle_append_entries", "handle_snapshot"]

logger = logging.getLogger(__name__)


def accept_leader(eng: Engine, vote: Vote) -> bool:
    """Follow the leader with ``vote`` if it is not below ours (§5.1); False if stale."""
    from raftx.engine.election import vote_ge

    if not vote_ge(vote, eng.vote):
        return False
    if vote != eng.vote:
        if eng.leader is not None or eng.candidate is not None:
            eng.become_follower()  # §5.2: a candidate sees a legitimate leader
        eng.save_vote(vote)
    elif eng.candidate is not None:
        eng.become_follower()
    eng.leader_seen_at = eng.now
    eng.reset_election_timer()
    eng.refresh_server_state()
    return True


def _check_append(eng: Engine, req: AppendEntriesRequest, sender: int | None) -> tuple[LogEntries, int, int | None]:
    """Every check of an AppendEntries that can refuse it, with no state change: shape
    and ranges, authorization (`peer_check`), and that nothing it carries conflicts
    with the committed log (Log Matching, §5.3: a real leader never sends that).

    Returns ``(entries, start, truncate_after)``: the entries, the position of the
    first one we do not have, and the index to truncate after (None: no conflict)
    for a request whose ``prev_log_id`` matches our log. Raises `ProtocolError`.
    """
    peer_check.check_member(eng, sender, "AppendEntries")  # a stranger's content is not even looked at
    entries = req.validate()
    peer_check.check_names_sender(req.vote, sender, "AppendEntries")
    if eng.leader is not None and req.vote == eng.vote:
        raise ProtocolError("AppendEntries from this node's own term as leader")
    log = eng.log
    prev = req.prev_log_id
    committed_index = -1 if eng.committed is None else eng.committed.index
    if prev is not None and prev.index > log.purged_index and log.term_at(prev.index) != prev.leader_id:
        if prev.index <= committed_index:
            raise ProtocolError(f"prev_log_id {prev} conflicts with committed {eng.committed}")
        return entries, 0, None
    # Skip the entries we already have; find the first conflicting one (§5.3).
    n = len(entries)
    start = 0
    floor = max(log.purged_index, -1)
    while start < n:
        lid = entries.log_id_at(start)
        if lid.index <= floor:
            start += 1
            continue
        t = log.term_at(lid.index)
        if t is None:
            break
        if t != lid.leader_id:
            if lid.index <= committed_index:
                raise ProtocolError(f"entry {lid} conflicts with committed {eng.committed}")
            return entries, start, lid.index - 1
        start += 1
    return entries, start, None


def handle_append_entries(eng: Engine, req: AppendEntriesRequest, responder: Any, sender: int | None = None) -> None:
    """Handle an AppendEntries (or heartbeat) from a leader (§5.3); see the module doc.

    ``sender`` is the node id the request's connection proved (None: unchecked).
    """
    try:
        entries, start, truncate_at = _check_append(eng, req, sender)
    except ProtocolError as exc:
        eng.respond(responder, peer_check.refuse(eng, exc, sender))
        return
    if not accept_leader(eng, req.vote):
        eng.respond(responder, AppendEntriesResponse(eng.vote, False), eng.flushed_condition())
        return
    if req.leader_commit is not None and req.leader_commit.index > eng.leader_committed:
        eng.leader_committed = req.leader_commit.index  # even if our log lags (readiness)
    log = eng.log
    prev = req.prev_log_id
    if prev is not None and prev.index > log.purged_index and log.term_at(prev.index) != prev.leader_id:
        hint_index, hint_term = log.find_conflict_by_term(prev.index, prev.leader_id)
        eng.respond(
            responder,
            AppendEntriesResponse(eng.vote, False, None, hint_index, hint_term),
            eng.flushed_condition(),
        )
        return
    n = len(entries)
    if truncate_at is not None:
        eng.truncate_after(truncate_at)
    if start < n:
        eng.append_to_log(entries.sliced(start) if start else entries)
    matching = entries.log_id_at(n - 1) if n else prev
    if req.leader_commit is not None and matching is not None:
        eng.commit_to(min(req.leader_commit.index, matching.index))
    eng.respond(responder, AppendEntriesResponse(eng.vote, True, matching), eng.flushed_condition())
    from raftx.engine import transfer

    transfer.maybe_elect_for_transfer(eng)


def check_snapshot(eng: Engine, vote: Vote, meta: SnapshotMeta, sender: int | None) -> None:
    """Raise `ProtocolError` unless a snapshot with ``vote`` and ``meta`` may be received
    from ``sender`` (shape, ranges, authorization); changes nothing. The runtime calls
    it before it spools a chunk, the engine again before installing."""
    peer_check.check_member(eng, sender, "InstallSnapshot")
    InstallSnapshotRequest(vote, meta).validate()
    peer_check.check_names_sender(vote, sender, "InstallSnapshot")


def admit_snapshot_chunk(eng: Engine, req: InstallSnapshotRequest, sender: int | None) -> SnapshotResponse | None:
    """May this snapshot chunk be stored? Changes no Raft state, so a stale leader's
    or a stranger's chunk is never spooled.

    None: yes, it passed `check_snapshot` and carries an elected leader's vote at
    least ours (the leader this node follows, whose AppendEntries came first, §7, or
    a newer one it would accept, §5.1). A `SnapshotResponse` with our vote: no, the
    leader is stale; the answer makes it step down (§5.1). Raises `ProtocolError`
    (counted, `peer_check.refuse`) for a request that is refused outright.
    """
    from raftx.engine.election import vote_ge

    vote = req.vote
    try:
        check_snapshot(eng, vote, req.meta, sender)
        req.validate()  # offset, data, done
        if not vote.committed:
            raise ProtocolError(f"snapshot chunk with vote {vote}: not an elected leader's vote")
    except ProtocolError as exc:
        raise peer_check.refuse(eng, exc, sender) from None
    if not vote_ge(vote, eng.vote):
        return SnapshotResponse(eng.vote)
    return None


def handle_snapshot(eng: Engine, vote: Vote, meta: SnapshotMeta, responder: Any, sender: int | None = None) -> None:
    """Install a snapshot received from the leader (§7).

    A snapshot at or below the commit index is stale and ignored. Otherwise the
    log is kept after the snapshot if it holds the snapshot's last entry;
    else every uncommitted entry is deleted (they may conflict). Then the state
    machine installs it, its membership is adopted, and the covered log purged.
    """
    try:
        check_snapshot(eng, vote, meta, sender)
    except ProtocolError as exc:
        eng.respond(responder, peer_check.refuse(eng, exc, sender))
        return
    if not accept_leader(eng, vote):
        eng.respond(responder, SnapshotResponse(eng.vote), eng.flushed_condition())
        return
    last = meta.last_log_id
    committed_index = -1 if eng.committed is None else eng.committed.index
    if last is None or last.index <= committed_index:
        eng.respond(responder, SnapshotResponse(eng.vote), eng.flushed_condition())
        return
    if not eng.log.has(last):
        if eng.log.last_index > committed_index:
            eng.truncate_after(max(committed_index, eng.log.purged_index))
    io_id = eng.io.submit(eng.vote, eng.log.last_log_id)
    eng.emit(InstallSnapshot(io_id, meta))
    eng.installing[io_id] = last
    eng.snapshot = meta
    eng.membership.install(meta.last_membership)
    eng.purge_upto(last)
    eng.committed = last
    eng.membership.update_committed(last.index)
    if eng.apply_submitted is None or eng.apply_submitted < last:
        eng.apply_submitted = last
    for _, r in each_responder(eng.responders.take_upto(last.index)):
        eng.respond(r, eng.forward_to_leader())
    eng.on_membership_changed()
    eng.respond(responder, SnapshotResponse(eng.vote), eng.flushed_condition())
