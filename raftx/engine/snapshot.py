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

from typing import TYPE_CHECKING

from raftx.engine.commands import BuildSnapshot
from raftx.types import LogId, SnapshotMeta

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

__all__ = ["handle_applied", "handle_snapshot_built", "trigger_purge_log", "trigger_snapshot"]


def _snapshot_index(eng: Engine) -> int:
    snap = eng.snapshot
    return -1 if snap is None or snap.last_log_id is None else snap.last_log_id.index


def handle_applied(eng: Engine, log_id: LogId) -> None:
    """The state machine applied up to ``log_id``; maybe build a snapshot."""
    if eng.applied is None or eng.applied < log_id:
        eng.applied = log_id
    _maybe_build(eng)


def _maybe_build(eng: Engine) -> None:
    policy = eng.config.snapshot_policy
    if policy.is_never() or eng.snapshot_building or eng.applied is None:
        return
    if eng.applied.index - _snapshot_index(eng) >= policy.logs_since_last:
        trigger_snapshot(eng)


def trigger_snapshot(eng: Engine) -> None:
    """Build a snapshot now, unless one is being built."""
    if eng.snapshot_building:
        return
    eng.snapshot_building = True
    eng.emit(BuildSnapshot())


def handle_snapshot_built(eng: Engine, meta: SnapshotMeta) -> None:
    """A snapshot was built: adopt it if newer, purge by policy, serve waiting followers."""
    eng.snapshot_building = False
    if meta.last_log_id is not None and meta.last_log_id.index > _snapshot_index(eng):
        eng.snapshot = meta
    snap_index = _snapshot_index(eng)
    upto = snap_index - eng.config.max_in_snapshot_log_to_keep
    if upto - eng.log.purged_index >= eng.config.purge_batch_size:
        _purge(eng, upto)
    if eng.leader is not None:
        from raftx.engine import replication
        from raftx.engine.progress import ProgressState

        for target, p in eng.leader.progress.items():
            if p.state is ProgressState.PROBE and not p.replicating():
                replication.send_to(eng, target, p)
    _maybe_build(eng)


def trigger_purge_log(eng: Engine, upto: int) -> None:
    """Purge the log up to ``upto``, but never past the snapshot."""
    _purge(eng, min(upto, _snapshot_index(eng)))


def _purge(eng: Engine, upto: int) -> None:
    if upto <= eng.log.purged_index:
        return
    log_id = eng.log.log_id_at(upto)
    if log_id is None:
        return
    eng.purge_upto(log_id)
