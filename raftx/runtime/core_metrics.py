"""The three metrics views of a node (`raftx.metrics`), read from its engine.

Built by `raftx.runtime.core.RaftCore` after a turn, and only when a receiver
waits or reads (`raftx.runtime.watch.WatchSender.send_lazy`).
"""

from __future__ import annotations

from typing import Any

from raftx.engine import Engine
from raftx.errors import Fatal
from raftx.metrics import RaftDataMetrics, RaftMetrics, RaftServerMetrics
from raftx.types import ServerState

__all__ = ["data_metrics", "raft_metrics", "server_metrics"]


def _replication(eng: Engine) -> dict[int, Any] | None:
    leader = eng.leader
    if leader is None:
        return None
    return {t: p.matching for t, p in leader.progress.items()}


def raft_metrics(eng: Engine, running: Fatal | None) -> RaftMetrics:
    """`RaftMetrics` of ``eng``'s node; ``running`` is the `Fatal` that stopped it, if any."""
    leader = eng.leader
    state = ServerState.SHUTDOWN if running is not None else eng.server_state
    last_index = eng.log.last_index
    return RaftMetrics(
        id=eng.id,
        current_term=eng.vote.term,
        vote=eng.vote,
        last_log_index=None if last_index < 0 else last_index,
        last_applied=eng.applied,
        committed=eng.committed,
        snapshot=None if eng.snapshot is None else eng.snapshot.last_log_id,
        purged=eng.log.purged,
        state=state,
        current_leader=None if running is not None else eng.current_leader,
        membership_config=eng.membership.effective,
        committed_membership_config=eng.membership.committed,
        replication=_replication(eng),
        millis_since_quorum_ack=None if leader is None else max(0, eng.now - leader.last_quorum_acked),
        running_state=running,
        log_reversions=eng.log_reversions,
        rpcs_unauthorized=eng.refusals.unauthorized,
        rpcs_invalid=eng.refusals.invalid,
    )


def data_metrics(eng: Engine) -> RaftDataMetrics:
    """`RaftDataMetrics` of ``eng``'s node."""
    leader = eng.leader
    return RaftDataMetrics(
        last_log=eng.log.last_log_id,
        committed=eng.committed,
        last_applied=eng.applied,
        snapshot=None if eng.snapshot is None else eng.snapshot.last_log_id,
        purged=eng.log.purged,
        replication=_replication(eng),
        millis_since_quorum_ack=None if leader is None else max(0, eng.now - leader.last_quorum_acked),
    )


def server_metrics(eng: Engine, stopped: bool) -> RaftServerMetrics:
    """`RaftServerMetrics` of ``eng``'s node (``stopped``: it shut down)."""
    return RaftServerMetrics(
        id=eng.id,
        vote=eng.vote,
        state=ServerState.SHUTDOWN if stopped else eng.server_state,
        current_leader=None if stopped else eng.current_leader,
        membership_config=eng.membership.effective,
        snapshot_meta=eng.snapshot,
    )
