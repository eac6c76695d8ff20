"""Metrics of a running node (openraft ``RaftMetrics``, ``RaftDataMetrics``, ``RaftServerMetrics``).

Each is an immutable snapshot published on a watch channel by the node's core task
whenever it changes (`raftx.Raft.metrics`, `raftx.Raft.data_metrics`,
`raftx.Raft.server_metrics`)::

    rx = raft.metrics()
    m = rx.borrow()                       # the current value, no waiting
    await rx.changed()                    # the next change
    async for m in raft.metrics():        # every change, starting with the current value
        if m.current_leader is not None:
            break

``running_state`` is ``None`` while the node runs normally (openraft ``Ok(())``) and
the `raftx.errors.Fatal` that stopped it otherwise (a storage failure keeps the
`raftx.errors.StorageError` as ``cause``; a clean `shutdown` gives reason "stopped").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from raftx.errors import Fatal
from raftx.types import LogId, Membership, ServerState, SnapshotMeta, StoredMembership, Vote

__all__ = ["RaftDataMetrics", "RaftMetrics", "RaftServerMetrics"]


@dataclass(frozen=True, slots=True)
class RaftMetrics:
    """Everything about a node at one moment (openraft ``RaftMetrics``).

    * ``id``: this node; ``state``: its role (§5.1); ``current_term`` / ``vote``:
      its persistent term and vote (Figure 2); ``current_leader``: the leader it knows;
    * ``last_log_index`` (None: empty log), ``committed``, ``last_applied``,
      ``snapshot`` (last log id in the latest snapshot), ``purged`` (last purged id);
    * ``membership_config``: the effective membership and the id of its entry;
      ``committed_membership_config``: the last committed one (thesis §4.3);
    * ``replication``: on a leader, target id -> matched log id (None: nothing
      matched yet); None on any other node;
    * ``millis_since_quorum_ack``: on a leader, ms since a quorum last answered;
    * ``running_state``: None while running, else the `Fatal` that stopped the node;
    * ``log_reversions``: how many times, as leader, this node saw a follower reject
      entries it had acknowledged (its log went back: a wiped data directory); see
      ``Config.allow_log_reversion``.
    """

    id: int
    current_term: int = 0
    vote: Vote = field(default_factory=Vote)
    last_log_index: int | None = None
    last_applied: LogId | None = None
    committed: LogId | None = None
    snapshot: LogId | None = None
    purged: LogId | None = None
    state: ServerState = ServerState.FOLLOWER
    current_leader: int | None = None
    membership_config: StoredMembership = field(default_factory=StoredMembership)
    committed_membership_config: StoredMembership = field(default_factory=StoredMembership)
    replication: Mapping[int, LogId | None] | None = None
    millis_since_quorum_ack: int | None = None
    running_state: Fatal | None = None
    log_reversions: int = 0

    @property
    def membership(self) -> Membership:
        """The effective membership (shorthand for ``membership_config.membership``)."""
        return self.membership_config.membership

    @property
    def voter_ids(self) -> set[int]:
        """The voters of the effective membership."""
        return self.membership_config.membership.voter_ids()

    @property
    def learner_ids(self) -> set[int]:
        """The learners of the effective membership."""
        return self.membership_config.membership.learner_ids()

    @property
    def is_running(self) -> bool:
        """Whether the node is running (``running_state`` holds no fatal error)."""
        return self.running_state is None


@dataclass(frozen=True, slots=True)
class RaftDataMetrics:
    """The log / state-machine progress subset (openraft ``RaftDataMetrics``)."""

    last_log: LogId | None = None
    committed: LogId | None = None
    last_applied: LogId | None = None
    snapshot: LogId | None = None
    purged: LogId | None = None
    replication: Mapping[int, LogId | None] | None = None
    millis_since_quorum_ack: int | None = None


@dataclass(frozen=True, slots=True)
class RaftServerMetrics:
    """The role / membership subset; changes rarely (openraft ``RaftServerMetrics``)."""

    id: int
    vote: Vote = field(default_factory=Vote)
    state: ServerState = ServerState.FOLLOWER
    current_leader: int | None = None
    membership_config: StoredMembership = field(default_factory=StoredMembership)
    snapshot_meta: SnapshotMeta | None = None
