"""`SnapshotStateMachine`: the snapshot half of a state machine, written once.

`raftx.storage.MemStateMachine` (and `raftx.objects.ObjectStateMachine` on it) and
`raftx.kv.KVStateMachine` keep their snapshots the same way: in a
`FileSnapshotStore` when given a directory (durable, checksummed, R13), else in a
`MemSnapshotStore`; data streamed as msgpack chunks (`pack_chunks` /
`unpack_items`); a received snapshot validated whole before it is stored and before
the state changes (§7: a malformed one raises `raftx.errors.StorageCorrupted` and
changes nothing). This base class implements the `raftx.storage.RaftStateMachine`
snapshot methods on three hooks a subclass provides:

* `_snapshot_image` (on the event loop): the applied state captured now -- last
  applied log id, membership, and the data as chunks that may be consumed in a
  worker thread (so: copies, or already-encoded bytes);
* `_parse_snapshot` (in a worker thread): a new state from snapshot data, fully
  validated against the meta, without touching the current one;
* `_install_state` (on the event loop, or while nothing else uses the machine):
  make a parsed state the current one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterable
from typing import Any, BinaryIO, Generic, TypeVar

from raftx.storage.protocols import RaftSnapshotBuilder, RaftStateMachine
from raftx.storage.snapshot import (
    CHUNK_SIZE,
    FileSnapshotStore,
    MemSnapshotStore,
    StoredSnapshot,
    current_snapshot,
    open_snapshot,
    receive_file,
    snapshot_id,
    write_snapshot,
)
from raftx.types import LogId, Snapshot, SnapshotMeta, StoredMembership

__all__ = ["SnapshotStateMachine"]

S = TypeVar("S")


class _Builder(RaftSnapshotBuilder):
    def __init__(self, sm: SnapshotStateMachine[Any]) -> None:
        self._sm = sm

    async def build_snapshot(self) -> Snapshot:
        return await self._sm._build_snapshot()


class SnapshotStateMachine(RaftStateMachine, Generic[S]):
    """Snapshot building, storing, receiving, installing and restoring (see the module
    doc) for a state machine whose whole state is one value of type ``S``. Call
    `_init_snapshots` from ``__init__``."""

    _snapshots: FileSnapshotStore | MemSnapshotStore
    #: Where snapshot files live (None: in memory); received snapshots spool there too.
    _snapshot_dir: str | None

    def _init_snapshots(self, directory: str | os.PathLike[str] | None, fsync: bool) -> None:
        self._snapshot_dir = None if directory is None else os.fspath(directory)
        self._snapshots = (FileSnapshotStore(self._snapshot_dir, fsync=fsync) if self._snapshot_dir is not None
                           else MemSnapshotStore())
        self._snapshot_seq = itertools.count(1)

    # -- hooks ------------------------------------------------------------------------

    def _snapshot_image(self) -> tuple[LogId | None, StoredMembership, Iterable[bytes]]:
        """The applied state now: ``(last_applied, membership, chunks)`` (see module doc)."""
        raise NotImplementedError

    def _parse_snapshot(self, meta: SnapshotMeta, f: BinaryIO) -> S:
        """A validated state from the snapshot data in ``f`` (`StorageCorrupted` if malformed
        or not the state ``meta`` describes)."""
        raise NotImplementedError

    def _install_state(self, state: S) -> None:
        """Make ``state`` (from `_parse_snapshot`) the current state."""
        raise NotImplementedError

    # -- RaftStateMachine -------------------------------------------------------------

    async def get_snapshot_builder(self) -> RaftSnapshotBuilder:
        return _Builder(self)

    async def begin_receiving_snapshot(self) -> BinaryIO:
        """A spooled temp file (in the snapshot directory when set) to stream a snapshot into."""
        return receive_file(self._snapshot_dir)

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Validate the snapshot, store it durably (chunked copy, checksummed), then
        replace the whole state (§7). A malformed snapshot raises
        `raftx.errors.StorageCorrupted` and changes nothing; so does a failed store."""

        def install() -> S:
            snapshot.seek(0)
            state = self._parse_snapshot(meta, snapshot)  # fully validated before anything is stored
            snapshot.seek(0)
            write_snapshot(self._snapshots, meta, iter(lambda: snapshot.read(CHUNK_SIZE), b""))
            return state

        self._install_state(await asyncio.to_thread(install))

    async def verify_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Check received snapshot data without installing it (`StorageCorrupted` if
        malformed); `raftx.runtime.snapshot_recv` calls it before the node commits to
        it, so garbage from a peer is refused instead of failing the install (the data
        is parsed twice for a good snapshot: snapshots are rare, a stopped node is not)."""
        await asyncio.to_thread(self._parse_snapshot, meta, snapshot)

    async def get_current_snapshot(self) -> Snapshot | None:
        return await current_snapshot(self._snapshots)

    # -- building and restoring -------------------------------------------------------

    async def _build_snapshot(self) -> Snapshot:
        """Capture the state now; encode and write it off the event loop (durable, R13)."""
        last_applied, membership, chunks = self._snapshot_image()
        meta = SnapshotMeta(last_applied, membership, snapshot_id(last_applied, next(self._snapshot_seq)))
        return open_snapshot(await asyncio.to_thread(write_snapshot, self._snapshots, meta, chunks))

    def _load_latest(self) -> StoredSnapshot | None:
        """Blocking: install the newest stored snapshot (verified), if any; returns it."""
        stored = self._latest_stored()
        if stored is not None:
            self._install_state(self._parse_stored(stored))
        return stored

    async def _restore_latest(self) -> StoredSnapshot | None:
        """`_load_latest` with the file work in a worker thread and the install on the loop."""
        stored = await asyncio.to_thread(self._latest_stored)
        if stored is not None:
            self._install_state(await asyncio.to_thread(self._parse_stored, stored))
        return stored

    def _latest_stored(self) -> StoredSnapshot | None:
        store = self._snapshots
        return store.latest() if isinstance(store, FileSnapshotStore) else None

    def _parse_stored(self, stored: StoredSnapshot) -> S:
        with stored.open() as f:
            return self._parse_snapshot(stored.meta, f)
