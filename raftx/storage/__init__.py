"""Durable storage for raftx: the storage protocols and the stores that implement them.

* Protocols (openraft v2 traits): `RaftLogStorage`, `RaftLogReader`,
  `RaftStateMachine`, `RaftSnapshotBuilder`; `LogState`; `EncodedBatch` (entries as
  `_core.codec` bytes, encoded once).
* Log stores: `SegmentedLogStore` (default, segment files), `MemLogStore` (memory),
  `SqliteLogStore` (stdlib sqlite3, an adapter example).
* `MemStateMachine` (reference state machine), `FileSnapshotStore` (snapshot files).
* Start-up helpers: `get_initial_state`, `get_membership_state`, ...
* `FileIO`: the file-system seam of the durable stores (`raftx.storage.fileio`); tests
  put `raftx.testing.FaultInjector` (crashes, tears, I/O errors on request) or
  `raftx.testing.SimFS` (an in-memory disk that loses power) in its place.
  ``raftx.storage.FaultInjector`` / ``SimulatedCrash`` still import, deprecated:
  they moved to `raftx.testing`.
* `raftx.storage.recovery.scan_log_dir`: the validation of a segmented log that
  ``open`` and ``raftx inspect --verify`` share; `raftx.storage.dirlock`: one owner
  per data directory.

Every store is checked by `raftx.testing.run_log_store_suite`.
"""

from typing import TYPE_CHECKING, Any

from raftx.storage.base import LogReader, LogStoreBase
from raftx.storage.batch import EncodedBatch, as_batch
from raftx.storage.fileio import FileIO
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

# The crash simulator moved to raftx.testing (test kits do not belong to the stores);
# the old names still import, with a DeprecationWarning, and without importing
# raftx.testing (which imports this package) until they are used.
_MOVED = {"FaultInjector": "raftx.testing.faultio", "SimulatedCrash": "raftx.testing.faultio"}

if TYPE_CHECKING:
    from raftx.testing.faultio import FaultInjector, SimulatedCrash  # noqa: F401
else:
    def __getattr__(name: str) -> Any:
        module = _MOVED.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib
        import warnings

        warnings.warn(f"raftx.storage.{name} is deprecated; import it from raftx.testing", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(module), name)
