"""Durable storage for raftx: the storage protocols and the stores that implement them.

* Protocols (openraft v2 traits): `RaftLogStorage`, `RaftLogReader`,
  `RaftStateMachine`, `RaftSnapshotBuilder`; `LogState`; `EncodedBatch` (entries as
  `_core.codec` bytes, encoded once).
* Log stores: `SegmentedLogStore` (default, segment files), `MemLogStore` (memory),
  `SqliteLogStore` (stdlib sqlite3, an adapter example).
* `MemStateMachine` (reference state machine), `FileSnapshotStore` (snapshot files).
* Start-up helpers: `get_initial_state`, `get_membership_state`, ...
* `FileIO` / `FaultInjector` / `SimulatedCrash`: the file-system seam used by the
  crash and fault tests (`raftx.testing.simfs.SimFS` is an in-memory one that loses
  power).
* `raftx.storage.recovery.scan_log_dir`: the validation of a segmented log that
  ``open`` and ``raftx inspect --verify`` share; `raftx.storage.dirlock`: one owner
  per data directory.

Every store is checked by `raftx.testing.run_log_store_suite`.
"""

from raftx.storage.base import LogReader, LogStoreBase
from raftx.storage.batch import EncodedBatch, as_batch
from raftx.storage.faults import FaultInjector, FileIO, SimulatedCrash
from raftx.storage.helper import (
    InitialState,
    MembershipState,
    get_initial_state,
    get_key_log_ids,
    get_log_id,
    get_membership_state,
    last_membership_in_log,
    try_get_log_entry,
)
from raftx.storage.mem import MemLogStore
from raftx.storage.protocols import (
    IOCallback,
    LogState,
    RaftLogReader,
    RaftLogStorage,
    RaftSnapshotBuilder,
    RaftStateMachine,
)
from raftx.storage.segmented import DEFAULT_SEGMENT_BYTES, SegmentedLogStore
from raftx.storage.snapshot import FileSnapshotStore, MemSnapshotStore, SnapshotWriter, StoredSnapshot
from raftx.storage.sqlite import SqliteLogStore
from raftx.storage.state_machine import MemStateMachine

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "EncodedBatch",
    "FaultInjector",
    "FileIO",
    "FileSnapshotStore",
    "IOCallback",
    "InitialState",
    "LogReader",
    "LogState",
    "LogStoreBase",
    "MemLogStore",
    "MemSnapshotStore",
    "MemStateMachine",
    "MembershipState",
    "RaftLogReader",
    "RaftLogStorage",
    "RaftSnapshotBuilder",
    "RaftStateMachine",
    "SegmentedLogStore",
    "SimulatedCrash",
    "SnapshotWriter",
    "SqliteLogStore",
    "StoredSnapshot",
    "as_batch",
    "get_initial_state",
    "get_key_log_ids",
    "get_log_id",
    "get_membership_state",
    "last_membership_in_log",
    "try_get_log_entry",
]
