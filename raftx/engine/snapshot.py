"""Snapshots and log purging (§7).

* Build policy ``SnapshotPolicy.LogsSinceLast(n)``: once ``n`` entries were applied
  since the last snapshot, emit `BuildSnapshot` (one build at a time; the trigger is
  re-armed when the build reports back, so it is never lost).
* Purge policy: after a snapshot, keep ``max_in_snapshot_log_to_keep`` of the
  entries it covers (lagging followers can still catch up from the log) and purge
  only when at least ``purge_batch_size`` entries can go. `TriggerPurgeLog` ignores
  the keep count but never purges beyond the snapshot.
"""

from __future__ import annotations

from raftx.engine import log_ops, sending
from raftx.engine.commands import BuildSnapshot
from raftx.engine.output import Output
from raftx.engine.progress import ProgressState
from raftx.engine.roles import LeaderState
from raftx.engine.state import EngineState
from raftx.types import LogId, SnapshotMeta

__all__ = ["handle_applied", "handle_snapshot_built", "trigger_purge_log", "trigger_snapshot"]


def _snapshot_index(st: EngineState) -> int:
    snap = st.snapshot
    return -1 if snap is None or snap.last_log_id is None else snap.last_log_id.index


def handle_applied(st: EngineState, out: Output, log_id: LogId) -> None:
    """The state machine applied up to ``log_id``; maybe build a snapshot."""
    if st.applied is None or st.applied < log_id:
        st.applied = log_id
    _maybe_build(st, out)


def _maybe_build(st: EngineState, out: Output) -> None:
    policy = st.config.snapshot_policy
    if policy.is_never() or st.snapshot_building or st.applied is None:
        return
    if st.applied.index - _snapshot_index(st) >= policy.logs_since_last:
        trigger_snapshot(st, out)


def trigger_snapshot(st: EngineState, out: Output) -> None:
    """Build a snapshot now, unless one is being built."""
    if st.snapshot_building:
        return
    st.snapshot_building = True
    out.emit(BuildSnapshot())


def handle_snapshot_built(st: EngineState, leader: LeaderState | None, out: Output, meta: SnapshotMeta) -> None:
    """A snapshot was built: adopt it if newer, purge by policy, serve the followers a
    leader (``leader``, None if not leading) could not send entries to."""
    st.snapshot_building = False
    if meta.last_log_id is not None and meta.last_log_id.index > _snapshot_index(st):
        st.snapshot = meta
    snap_index = _snapshot_index(st)
    upto = snap_index - st.config.max_in_snapshot_log_to_keep
    if upto - st.log.purged_index >= st.config.purge_batch_size:
        _purge(st, out, upto)
    if leader is not None:
        for target, p in leader.progress.items():
            if p.state is ProgressState.PROBE and not p.replicating():
                sending.send_to(st, leader, out, target, p)
    _maybe_build(st, out)


def trigger_purge_log(st: EngineState, out: Output, upto: int) -> None:
    """Purge the log up to ``upto``, but never past the snapshot."""
    _purge(st, out, min(upto, _snapshot_index(st)))


def _purge(st: EngineState, out: Output, upto: int) -> None:
    if upto <= st.log.purged_index:
        return
    log_id = st.log.log_id_at(upto)
    if log_id is None:
        return
    log_ops.purge_upto(st, out, log_id)
