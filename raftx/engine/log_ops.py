"""The storage side of every handler: vote, log and commit changes with the commands
that persist them (openraft ``log_handler`` / ``vote_handler`` writes).

Each function changes the `raftx.engine.state.EngineState` shadow first and emits
the storage command that makes the change durable (Figure 2: currentTerm, votedFor
and the log are persistent). What a change means for the role (a membership that
took effect, one that committed) is returned to the caller, which knows the role.
"""

from __future__ import annotations

from raftx.engine.commands import Apply, AppendToLog, PurgeLog, SaveCommitted, SaveVote, TruncateLog
from raftx.engine.output import Output
from raftx.engine.state import EngineState, each_responder
from raftx.messages import LogEntries
from raftx.types import LogId, Vote

__all__ = ["append_to_log", "commit_to", "maybe_apply", "purge_upto", "save_vote", "truncate_after"]


def save_vote(st: EngineState, out: Output, vote: Vote) -> None:
    """Adopt and persist ``vote`` (Figure 2: currentTerm/votedFor are persistent)."""
    st.vote = vote
    out.emit(SaveVote(st.io.submit(vote, st.log.last_log_id), vote))


def append_to_log(st: EngineState, out: Output, entries: LogEntries) -> bool:
    """Accept ``entries`` after the last entry; memberships take effect now (thesis §4.1).

    True if the effective membership changed (the caller updates the role's view).
    """
    n = len(entries)
    if n == 0:
        return False
    last = entries.log_id_at(n - 1)
    st.log.append(entries.term_runs(), last.index)
    memberships = entries.memberships()
    for log_id, m in memberships:
        st.membership.append(log_id, m)
    out.emit(AppendToLog(st.io.submit(st.vote, last), entries))
    return bool(memberships)


def truncate_after(st: EngineState, out: Output, index: int) -> bool:
    """Delete the entries after ``index`` (§5.3); fail the client writes among them.

    True if the effective membership changed (it falls back, thesis §4.1).
    """
    if st.committed is not None and index < st.committed.index:
        raise AssertionError(f"truncating committed entries: after {index}, committed {st.committed}")
    after = st.log.log_id_at(index)
    st.log.truncate_after(index)
    out.emit(TruncateLog(st.io.submit(st.vote, after), after))
    for _, responder in each_responder(st.responders.take_from(index + 1)):
        out.respond(responder, st.forward_to_leader())
    return st.membership.truncate(index + 1)


def purge_upto(st: EngineState, out: Output, log_id: LogId) -> None:
    """Delete the entries up to ``log_id`` (a snapshot covers them, §7)."""
    if log_id.index <= st.log.purged_index:
        return
    st.log.purge_upto(log_id)
    out.emit(PurgeLog(st.io.submit(st.vote, st.log.last_log_id), log_id))


def commit_to(st: EngineState, out: Output, index: int) -> bool:
    """Advance the commit index to ``index`` (a checked caller, §5.3/§5.4.2) and apply.

    True if this commit made the effective membership committed (a leader then
    finishes a joint change, `raftx.engine.membership.on_membership_committed`).
    """
    if st.committed is not None and index <= st.committed.index:
        return False
    log_id = st.log.log_id_at(index)
    if log_id is None:
        raise AssertionError(f"commit index {index} is not in the log ({st.log!r})")
    st.committed = log_id
    was_pending = not st.membership.is_effective_committed()
    st.membership.update_committed(index)
    maybe_apply(st, out)
    return was_pending and st.membership.is_effective_committed()


def maybe_apply(st: EngineState, out: Output) -> None:
    """Hand the newly committed entries to the state machine, in order (§5.3)."""
    committed = st.committed
    if committed is None:
        return
    first = -1 if st.apply_submitted is None else st.apply_submitted.index
    if committed.index <= first:
        return
    out.emit(SaveCommitted(committed))
    out.emit(Apply(first + 1, committed, st.responders.take_upto(committed.index)))
    st.apply_submitted = committed
