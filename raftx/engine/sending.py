"""What a leader sends each target (§5.3, §7): the replication window per target,
heartbeats, snapshots, and the targets themselves.

* Per target a `raftx.engine.progress.Progress` runs probe -> pipelined replicate
  (bounded window in requests and estimated bytes) -> snapshot when the entries
  it needs were purged or it lags more than ``replication_lag_threshold`` (§7).
* The leader names index *ranges* (`Replicate`); the runtime reads the bytes from
  its log store.

Every function here works for the leader: it is given the `LeaderState`
(`raftx.engine.roles.Roles.leading`). The answers are handled in
`raftx.engine.replication`.
"""

from __future__ import annotations

from typing import Any, Sequence

from raftx.engine import log_ops, transfer
from raftx.engine.commands import BuildSnapshot, Replicate, SendSnapshot
from raftx.engine.output import Output
from raftx.engine.progress import Progress, ProgressState, Send
from raftx.engine.roles import LeaderState
from raftx.engine.state import EngineState
from raftx.messages import PayloadBatch

__all__ = ["broadcast_heartbeat", "leader_append", "on_membership_changed", "rebuild_progress", "send_heartbeat",
           "send_to"]


def leader_append(st: EngineState, leader: LeaderState, out: Output, batch: PayloadBatch,
                  responders: Sequence[Any]) -> None:
    """Append ``batch`` to the leader's log, remember its responders, replicate (§5.3)."""
    if log_ops.append_to_log(st, out, batch):
        on_membership_changed(st, leader)
    st.responders.push(batch.first_index, responders)
    for target, progress in leader.progress.items():
        send_to(st, leader, out, target, progress)


def on_membership_changed(st: EngineState, leader: LeaderState) -> None:
    """The effective membership changed: replication targets and tracker follow, and a
    transfer to a removed voter ends."""
    rebuild_progress(st, leader)
    transfer.abort_if_target_removed(st, leader)


def rebuild_progress(st: EngineState, leader: LeaderState) -> None:
    """Targets = every member but self; the commit tracker follows the effective voters."""
    m = st.membership.effective.membership
    targets = set(m.nodes) - {st.id}
    for gone in set(leader.progress) - targets:
        del leader.progress[gone]
    for t in sorted(targets - set(leader.progress)):
        # probe with the last entry (§5.3): a conflict answer walks back from there
        leader.progress[t] = Progress(max(st.log.last_index, st.log.first_index))
    leader.new_tracker(m)
    own = st.io.flushed_log_id
    if own is not None and st.log.has(own):
        leader.tracker.update(st.id, own.index)


def _new_send_id(st: EngineState, leader: LeaderState) -> int:
    leader.next_send_id += 1
    leader.send_times.record(leader.next_send_id, st.now)
    return leader.next_send_id


def send_to(st: EngineState, leader: LeaderState, out: Output, target: int, p: Progress) -> bool:
    """Send what ``target`` needs next, within its window; True if anything was sent."""
    if p.state is ProgressState.SNAPSHOT:
        return False
    log = st.log
    if p.next_index <= log.purged_index or _lags_beyond_threshold(st, p):
        return _send_snapshot(st, leader, out, target, p)
    if p.state is ProgressState.PROBE and p.replicating():
        return False
    c = st.config
    # Entries per request: max_payload_entries, fewer when the average payload size
    # says they would fill more than half a frame (a frame over max_frame_bytes is refused).
    per_request = max(1, min(c.max_payload_entries, int(c.max_frame_bytes / 2 / max(leader.entry_bytes, 1.0))))
    sent = False
    while p.next_index <= log.last_index:
        if p.replicating() >= (1 if p.state is ProgressState.PROBE else c.max_inflight_appends):
            break
        if p.inflight_entries and p.inflight_entries * leader.entry_bytes >= c.max_inflight_bytes:
            break
        prev = log.log_id_at(p.next_index - 1)
        if prev is None and p.next_index - 1 >= 0:
            return _send_snapshot(st, leader, out, target, p)
        first = p.next_index
        last = min(log.last_index, first + per_request - 1)
        send_id = _new_send_id(st, leader)
        p.sent_entries(Send(send_id, st.now, prev, last, last - first + 1))
        out.emit(Replicate(target, send_id, leader.vote, prev, first, last, st.committed))
        sent = True
    return sent


def _lags_beyond_threshold(st: EngineState, p: Progress) -> bool:
    snap = st.snapshot
    if snap is None or snap.last_log_id is None:
        return False
    return (
        st.log.last_index - p.matching_index > st.config.replication_lag_threshold
        and snap.last_log_id.index > p.matching_index
    )


def _send_snapshot(st: EngineState, leader: LeaderState, out: Output, target: int, p: Progress) -> bool:
    """Send the snapshot to ``target`` (§7); build one first if there is none."""
    snap = st.snapshot
    if snap is None or snap.last_log_id is None or snap.last_log_id.index < st.log.purged_index:
        if not st.snapshot_building:
            st.snapshot_building = True
            out.emit(BuildSnapshot())
        return False
    send_id = _new_send_id(st, leader)
    p.become_snapshot(Send(send_id, st.now, None, snap.last_log_id.index, 0, snapshot_last=snap.last_log_id))
    out.emit(SendSnapshot(target, send_id, leader.vote))
    return True


def broadcast_heartbeat(st: EngineState, leader: LeaderState, out: Output) -> None:
    """Send every target what it needs, or an empty AppendEntries (heartbeat, §5.2)."""
    leader.next_heartbeat = st.now + st.config.heartbeat_interval
    for target, p in leader.progress.items():
        if not send_to(st, leader, out, target, p):
            send_heartbeat(st, leader, out, target, p)


def send_heartbeat(st: EngineState, leader: LeaderState, out: Output, target: int, p: Progress) -> None:
    """An empty AppendEntries with prev = what the target is known to match."""
    send_id = _new_send_id(st, leader)
    p.add(Send(send_id, st.now, p.matching, p.matching_index, 0, heartbeat=True))
    out.emit(Replicate(target, send_id, leader.vote, p.matching, p.matching_index + 1, p.matching_index,
                       st.committed))
