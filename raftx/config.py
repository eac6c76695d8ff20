"""Runtime configuration of a raftx node (openraft's ``Config``, field names and defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from raftx.errors import ConfigError

__all__ = ["DEFAULT_CLUSTER_NAME", "Config", "SnapshotPolicy"]

#: The cluster name used when none is given: `Config.cluster_name`, `SegmentedLogStore`
#: (written into every segment header and checked on open, R3), `raftx.kv.KVClient`,
#: ``raftx serve --cluster-name`` and the client commands. A node refuses the hello of a
#: peer or client with another name, and a log written under another name refuses to open.
DEFAULT_CLUSTER_NAME = "raftx"


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """When to build a snapshot: after ``logs_since_last`` applied entries, or never (0)."""

    logs_since_last: int = 5000

    @classmethod
    def LogsSinceLast(cls, n: int) -> SnapshotPolicy:  # noqa: N802  (openraft's name)
        """Build a snapshot once ``n`` entries were applied since the last one."""
        return cls(n)

    @classmethod
    def Never(cls) -> SnapshotPolicy:  # noqa: N802
        """Never build a snapshot on its own (``raft.trigger().snapshot()`` still does)."""
        return cls(0)

    def is_never(self) -> bool:
        """Whether this policy never builds a snapshot."""
        return self.logs_since_last == 0


@dataclass(slots=True)
class Config:
    """Tuning knobs of one node. Times are in milliseconds, as in openraft.

    Call `validate` (``Raft.new`` does) to reject inconsistent values with `ConfigError`.
    """

    cluster_name: str = DEFAULT_CLUSTER_NAME
    election_timeout_min: int = 150
    election_timeout_max: int = 300
    heartbeat_interval: int = 50
    #: Deadline of each snapshot chunk but the last (at least ``election_timeout_max``).
    install_snapshot_timeout: int = 200
    #: How long a leader waits for the answer to a snapshot's last chunk, which comes once
    #: the follower installed it (seconds for a large state: 2-4 s for 1,000,000 KV keys);
    #: on a shorter deadline the leader sent the whole snapshot again and again. A follower
    #: that died unseen holds its replication this long; one whose connection closes, not.
    install_snapshot_wait: int = 120_000
    #: Entries per AppendEntries (openraft's default), fewer when the average payload
    #: would fill over half of ``max_frame_bytes``; a throughput-bound service should
    #: raise it to ``api_batch_capacity`` (``raftx serve`` does: fewer, larger frames).
    max_payload_entries: int = 300
    replication_lag_threshold: int = 5000
    snapshot_policy: SnapshotPolicy = field(default_factory=SnapshotPolicy)
    snapshot_max_chunk_size: int = 3 * 1024 * 1024
    max_in_snapshot_log_to_keep: int = 1000
    purge_batch_size: int = 1
    api_batch_capacity: int = 4096
    enable_tick: bool = True
    enable_heartbeat: bool = True
    enable_elect: bool = True
    enable_pre_vote: bool = False
    #: Leader lease (openraft): a node that heard from a leader within
    #: election_timeout_max refuses other candidates, and a leader that heard from
    #: no quorum within it refuses writes. False gives the paper's behaviour (§5.1).
    enable_leader_lease: bool = True
    max_inflight_appends: int = 64
    max_inflight_bytes: int = 64 * 1024 * 1024
    max_frame_bytes: int = 64 * 1024 * 1024
    #: What a leader does when a follower rejects entries it had acknowledged, i.e. its
    #: log went back (restarted with the same id and a wiped or older data directory).
    #: False (openraft's default): refuse to repair it; log an error and count it in
    #: ``RaftMetrics.log_reversions`` (the follower stays behind until its data is
    #: back or it is replaced under a new id). True: forget what it matched and
    #: replicate to it from the start (log or snapshot). Losing a replica's log can
    #: lose committed entries (they may then sit on fewer nodes than a quorum), so
    #: only enable this when that is acceptable, e.g. exactly one wiped node, or tests.
    allow_log_reversion: bool = False
    #: The largest snapshot this node receives from a leader (bytes; default 16 GiB):
    #: a transfer that grows beyond it is refused and its spool file deleted (issue 11;
    #: a chunk is also refused when it would leave under 64 MiB free on the spool's disk).
    #: Raise it for a state machine whose snapshots are larger.
    max_snapshot_bytes: int = 16 * 1024**3
    #: Seconds a ``forward=True`` call (`raftx.Raft.client_write`, ``client_write_many``,
    #: ``ensure_linearizable``) waits for a leader during an election before it raises
    #: `raftx.errors.ForwardToLeader`; also bounds each forwarded round trip.
    forward_timeout: float = 5.0
    #: A node whose stored vote is its own committed leadership (it was leader when it
    #: stopped) starts as leader of that same term at once, without an election
    #: (openraft ``enable_leader_restore``; e.g. a sole voter serves again right after a
    #: restart). Safe: the vote was granted by a quorum and no one else can lead that
    #: term; the restored leader appends a blank entry, so reads wait until everything
    #: committed before the restart is applied again. Off by default (openraft's
    #: default is on): a restarted leader then campaigns for a new term as in the paper.
    enable_leader_restore: bool = False
    #: A leader removed from the voters by a committed membership change keeps leading
    #: for this many ms (so the commit reaches the followers), then hands leadership to
    #: its most up-to-date voter (thesis §3.10 transfer) and, one ``heartbeat_interval``
    #: later, steps down even if the transfer did not happen (openraft
    #: ``removed_leader_step_down``, default ``After(150)``). None (openraft ``Never``):
    #: it keeps leading until it steps down for another reason.
    removed_leader_step_down: int | None = 150

    @property
    def max_payload_bytes(self) -> int:
        """The largest client payload one AppendEntries frame can carry (``max_frame_bytes``
        less room for the headers); `raftx.Raft.client_write` refuses larger ones."""
        return self.max_frame_bytes - 2048

    def validate(self) -> Config:
        """Check every field; return ``self`` so ``Config(...).validate()`` chains."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int) and not isinstance(v, bool) and v < 0:
                raise ConfigError(f"{f.name} must be >= 0, not {v}")
        if not self.cluster_name:
            raise ConfigError("cluster_name must not be empty")
        if self.election_timeout_min >= self.election_timeout_max:
            raise ConfigError(
                f"election_timeout_min ({self.election_timeout_min}) must be < "
                f"election_timeout_max ({self.election_timeout_max})"
            )
        if self.election_timeout_min <= self.heartbeat_interval:
            raise ConfigError(
                f"election_timeout_min ({self.election_timeout_min}) must be > "
                f"heartbeat_interval ({self.heartbeat_interval})"
            )
        for name in ("heartbeat_interval", "max_payload_entries", "purge_batch_size", "api_batch_capacity",
                     "max_inflight_appends", "max_inflight_bytes", "max_frame_bytes", "snapshot_max_chunk_size",
                     "max_snapshot_bytes"):
            if getattr(self, name) == 0:
                raise ConfigError(f"{name} must be > 0")
        if not isinstance(self.forward_timeout, (int, float)) or isinstance(self.forward_timeout, bool) \
                or not self.forward_timeout > 0:
            raise ConfigError(f"forward_timeout must be a number of seconds > 0, not {self.forward_timeout!r}")
        if self.max_frame_bytes < 4096:
            raise ConfigError(f"max_frame_bytes must be >= 4096, not {self.max_frame_bytes}")
        return self
