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

Accepting a leader may end this node's own leadership or candidacy: the handlers
are given the `raftx.engine.roles.Roles`.
"""

from __future__ import annotations

import logging
from typing import Any

from raftx.engine import election, log_ops, peer_check, server_state, transfer
from raftx.engine.commands import InstallSnapshot
from raftx.engine.election import vote_ge
from raftx.engine.output import Output
from raftx.engine.roles import Roles
from raftx.engine.state import EngineState, each_responder
from raftx.errors import ProtocolError
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, LogEntries, SnapshotResponse
from raftx.types import SnapshotMeta, Vote

__all__ = ["accept_leader", "admit_snapshot_chunk", "check_snapshot", "handle_append_entries", "handle_snapshot"]

logger = logging.getLogger(__name__)


def accept_leader(st: EngineState, roles: Roles, out: Output, vote: Vote) -> bool:
    """Follow the leader with ``vote`` if it is not below ours (§5.1); False if stale."""
    if not vote_ge(vote, st.vote):
        return False
    if vote != st.vote:
        if roles.leader is not None or roles.candidate is not None:
            server_state.become_follower(st, roles, out)  # §5.2: a candidate sees a legitimate leader
        log_ops.save_vote(st, out, vote)
    elif roles.candidate is not None:
        server_state.become_follower(st, roles, out)
    st.leader_seen_at = st.now
    st.reset_election_timer()
    server_state.refresh(st, roles)
    return True


def _check_append(st: EngineState, roles: Roles, req: AppendEntriesRequest,
                  sender: int | None) -> tuple[LogEntries, int, int | None]:
    """Every check of an AppendEntries that can refuse it, with no state change: shape
    and ranges, authorization (`peer_check`), and, from a leader this node would follow,
    that nothing it carries conflicts with the committed log (Log Matching, §5.3: a real
    leader never sends that; a stale one may, and is answered with our vote instead).

    Returns ``(entries, start, truncate_after)``: the entries, the position of the
    first one we do not have, and the index to truncate after (None: no conflict)
    for a request whose ``prev_log_id`` matches our log. Raises `ProtocolError`.
    """
    peer_check.check_member(st, sender, "AppendEntries")  # a stranger's content is not even looked at
    entries = req.validate()
    peer_check.check_names_sender(req.vote, sender, "AppendEntries")
    if roles.leader is not None and req.vote == st.vote:
        raise ProtocolError("AppendEntries from this node's own term as leader")
    if not vote_ge(req.vote, st.vote):
        # A stale leader (§5.1): it is answered with our vote so that it steps down.
        # Its uncommitted entries may well conflict with what we committed since; the
        # Log Matching checks below are for a leader this node would follow.
        return entries, 0, None
    log = st.log
    prev = req.prev_log_id
    committed_index = -1 if st.committed is None else st.committed.index
    if prev is not None and prev.index > log.purged_index and log.term_at(prev.index) != prev.term:
        if prev.index <= committed_index:
            raise ProtocolError(f"prev_log_id {prev} conflicts with committed {st.committed}")
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
        if t != lid.term:
            if lid.index <= committed_index:
                raise ProtocolError(f"entry {lid} conflicts with committed {st.committed}")
            return entries, start, lid.index - 1
        start += 1
    return entries, start, None


def handle_append_entries(st: EngineState, roles: Roles, out: Output, req: AppendEntriesRequest, responder: Any,
                          sender: int | None = None) -> None:
    """Handle an AppendEntries (or heartbeat) from a leader (§5.3); see the module doc.

    ``sender`` is the node id the request's connection proved (None: unchecked).
    """
    try:
        entries, start, truncate_at = _check_append(st, roles, req, sender)
    except ProtocolError as exc:
        out.respond(responder, peer_check.refuse(st, exc, sender))
        return
    if not accept_leader(st, roles, out, req.vote):
        out.respond(responder, AppendEntriesResponse(st.vote, False), st.flushed_condition())
        return
    if req.leader_commit is not None and req.leader_commit.index > st.leader_committed:
        st.leader_committed = req.leader_commit.index  # even if our log lags (readiness)
    log = st.log
    prev = req.prev_log_id
    if prev is not None and prev.index > log.purged_index and log.term_at(prev.index) != prev.term:
        hint_index, hint_term = log.find_conflict_by_term(prev.index, prev.term)
        out.respond(
            responder,
            AppendEntriesResponse(st.vote, False, None, hint_index, hint_term),
            st.flushed_condition(),
        )
        return
    n = len(entries)
    if truncate_at is not None and log_ops.truncate_after(st, out, truncate_at):
        server_state.refresh(st, roles)
    if start < n and log_ops.append_to_log(st, out, entries.sliced(start) if start else entries):
        server_state.refresh(st, roles)
    matching = entries.log_id_at(n - 1) if n else prev
    if req.leader_commit is not None and matching is not None:
        log_ops.commit_to(st, out, min(req.leader_commit.index, matching.index))  # a follower: no change to finish
    out.respond(responder, AppendEntriesResponse(st.vote, True, matching), st.flushed_condition())
    if transfer.ready_to_campaign(st):
        election.elect(st, roles, out, pre_vote=False)


def check_snapshot(st: EngineState, vote: Vote, meta: SnapshotMeta, sender: int | None) -> None:
    """Raise `ProtocolError` unless a snapshot with ``vote`` and ``meta`` may be received
    from ``sender`` (shape, ranges, authorization); changes nothing. The runtime calls
    it before it spools a chunk, the engine again before installing."""
    peer_check.check_member(st, sender, "InstallSnapshot")
    InstallSnapshotRequest(vote, meta).validate()
    peer_check.check_names_sender(vote, sender, "InstallSnapshot")


def admit_snapshot_chunk(st: EngineState, req: InstallSnapshotRequest, sender: int | None) -> SnapshotResponse | None:
    """May this snapshot chunk be stored? Changes no Raft state, so a stale leader's
    or a stranger's chunk is never spooled.

    None: yes, it passed `check_snapshot` and carries an elected leader's vote at
    least ours (the leader this node follows, whose AppendEntries came first, §7, or
    a newer one it would accept, §5.1). A `SnapshotResponse` with our vote: no, the
    leader is stale; the answer makes it step down (§5.1). Raises `ProtocolError`
    (counted, `peer_check.refuse`) for a request that is refused outright.
    """
    vote = req.vote
    try:
        check_snapshot(st, vote, req.meta, sender)
        req.validate()  # offset, data, done
        if not vote.committed:
            raise ProtocolError(f"snapshot chunk with vote {vote}: not an elected leader's vote")
    except ProtocolError as exc:
        raise peer_check.refuse(st, exc, sender) from None
    if not vote_ge(vote, st.vote):
        return SnapshotResponse(st.vote)
    return None


def handle_snapshot(st: EngineState, roles: Roles, out: Output, vote: Vote, meta: SnapshotMeta, responder: Any,
                    sender: int | None = None) -> None:
    """Install a snapshot received from the leader (§7).

    A snapshot at or below the commit index is stale and ignored. Otherwise the
    log is kept after the snapshot if it holds the snapshot's last entry;
    else every uncommitted entry is deleted (they may conflict). Then the state
    machine installs it, its membership is adopted, and the covered log purged.
    """
    try:
        check_snapshot(st, vote, meta, sender)
    except ProtocolError as exc:
        out.respond(responder, peer_check.refuse(st, exc, sender))
        return
    if not accept_leader(st, roles, out, vote):
        out.respond(responder, SnapshotResponse(st.vote), st.flushed_condition())
        return
    last = meta.last_log_id
    committed_index = -1 if st.committed is None else st.committed.index
    if last is None or last.index <= committed_index:
        out.respond(responder, SnapshotResponse(st.vote), st.flushed_condition())
        return
    if not st.log.has(last):
        if st.log.last_index > committed_index:
            log_ops.truncate_after(st, out, max(committed_index, st.log.purged_index))  # refreshed below
    io_id = st.io.submit(st.vote, st.log.last_log_id)
    out.emit(InstallSnapshot(io_id, meta))
    st.installing[io_id] = last
    st.snapshot = meta
    st.membership.install(meta.last_membership)
    log_ops.purge_upto(st, out, last)
    st.committed = last
    st.membership.update_committed(last.index)
    if st.apply_submitted is None or st.apply_submitted < last:
        st.apply_submitted = last
    for _, r in each_responder(st.responders.take_upto(last.index)):
        out.respond(r, st.forward_to_leader())
    server_state.refresh(st, roles)
    out.respond(responder, SnapshotResponse(st.vote), st.flushed_condition())
