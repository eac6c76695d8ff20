"""raftx: Raft consensus for Python, with openraft's API and compiled hot paths."""

from raftx._version import __version__
from raftx.config import Config, SnapshotPolicy
from raftx.metrics import RaftMetrics
from raftx.raft import Raft
from raftx.types import (
    BasicNode,
    ChangeMembers,
    ClientWriteResponse,
    Entry,
    EntryKind,
    EntryRange,
    LeaderId,
    LogId,
    Membership,
    ReadPolicy,
    ServerState,
    Snapshot,
    SnapshotMeta,
    StoredMembership,
    Vote,
)

__all__ = [
    "__version__",
    "BasicNode",
    "ChangeMembers",
    "ClientWriteResponse",
    "Config",
    "Entry",
    "EntryKind",
    "EntryRange",
    "LeaderId",
    "LogId",
    "Membership",
    "Raft",
    "RaftMetrics",
    "ReadPolicy",
    "ServerState",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotPolicy",
    "StoredMembership",
    "Vote",
]
