"""`MemStateMachine`: a small reference state machine for tests and the conformance suite.

It keeps the last applied log id, the last membership and the payload of every
applied NORMAL entry (``data``: index -> bytes). Snapshots go to a
`FileSnapshotStore` when ``snapshot_dir`` is given (durable, checksummed, R13), else
stay in memory. The response to a NORMAL entry is its payload; other kinds get None.

Snapshot data format (msgpack, streamed): a header ``[last_applied, membership_log_id,
membership_bytes, count]`` followed by ``count`` items ``[index, payload]``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import msgpack

from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.protocols import RaftSnapshotBuilder, RaftStateMachine
from raftx.storage.snapshot import (
    CHUNK_SIZE,
    FileSnapshotStore,
    MemSnapshotStore,
    current_snapshot,
    log_id_from_list,
    log_id_to_list,
    open_snapshot,
    pack_chunks,
    receive_file,
    snapshot_id,
    unpack_items,
    write_snapshot,
)
from raftx.types import Entry, EntryKind, LogId, Membership, Snapshot, SnapshotMeta, StoredMembership

__all__ = ["MemStateMachine"]

logger = logging.getLogger(__name__)


class _Builder(RaftSnapshotBuilder):
    def __init__(self, sm: MemStateMachine) -> None:
        self._sm = sm

    async def build_snapshot(self) -> Snapshot:
        return await self._sm._build_snapshot()


class MemStateMachine(RaftStateMachine):
    """Applied state, membership and applied payloads, with snapshots (see module doc)."""

    def __init__(self, snapshot_dir: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> None:
        self.last_applied: LogId | None = None
        self.last_membership = StoredMembership()
        self.data: dict[int, bytes] = {}
        self._snapshot_dir = snapshot_dir
        self._snapshots: FileSnapshotStore | MemSnapshotStore = (
            FileSnapshotStore(snapshot_dir, fsync=fsync) if snapshot_dir is not None else MemSnapshotStore()
        )
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, snapshot_dir: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> MemStateMachine:
        """A state machine restored from the newest snapshot in ``snapshot_dir`` (if any)."""
        sm = cls(snapshot_dir, fsync=fsync)
        if isinstance(sm._snapshots, FileSnapshotStore):
            stored = await asyncio.to_thread(sm._snapshots.latest)
            if stored is not None:
                with stored.open() as f:
                    await asyncio.to_thread(sm._load, stored.meta, f)
        return sm

    # -- RaftStateMachine -----------------------------------------------------------

    async def applied_state(self) -> tuple[LogId | None, StoredMembership]:
        return self.last_applied, self.last_membership

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        """Apply in index order; an entry at or below ``last_applied`` is refused (R19)."""
        out: list[Any] = []
        for e in entries:
            if self.last_applied is not None and e.log_id.index <= self.last_applied.index:
                raise StorageError(f"entry {e.log_id} applied out of order after {self.last_applied} (R19)")
            kind = e.kind
            if kind is EntryKind.NORMAL:
                out.append(self._apply_normal(e))
            else:
                if kind is EntryKind.MEMBERSHIP:
                    self.last_membership = StoredMembership(e.log_id, e.payload)  # type: ignore[arg-type]
                out.append(None)
            self.last_applied = e.log_id
        return out

    def _apply_normal(self, entry: Entry) -> Any:
        """Apply one NORMAL entry; return its response (a subclass's hook, e.g.
        `raftx.objects.ObjectStateMachine`)."""
        self.data[entry.log_id.index] = entry.payload  # type: ignore[assignment]
        return entry.payload

    async def get_snapshot_builder(self) -> RaftSnapshotBuilder:
        return _Builder(self)

    async def begin_receiving_snapshot(self) -> BinaryIO:
        """A spooled temp file (in ``snapshot_dir`` when set) to stream a snapshot into."""
        return receive_file(self._snapshot_dir)

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Store the snapshot durably (chunked copy, checksummed), then load it (§7)."""

        def install() -> None:
            snapshot.seek(0)
            self._load(meta, snapshot)  # validate and load first: a malformed one changes nothing
            snapshot.seek(0)
            write_snapshot(self._snapshots, meta, iter(lambda: snapshot.read(CHUNK_SIZE), b""))

        saved = (self.last_applied, self.last_membership, self.data)
        try:
            await asyncio.to_thread(install)
        except BaseException:
            self.last_applied, self.last_membership, self.data = saved
            raise

    async def verify_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Check received snapshot data without installing it (`StorageCorrupted` if
        malformed); `raftx.runtime.snapshot_recv` calls it before the node commits to it."""
        await asyncio.to_thread(self._parse, meta, snapshot)

    async def get_current_snapshot(self) -> Snapshot | None:
        return await current_snapshot(self._snapshots)

    # -- snapshot data ----------------------------------------------------------------

    def _chunks(self) -> Iterator[bytes]:
        m = self.last_membership
        header = [log_id_to_list(self.last_applied), log_id_to_list(m.log_id), m.membership.to_bytes(), len(self.data)]
        return pack_chunks(header, sorted(self.data.items()))

    async def _build_snapshot(self) -> Snapshot:
        la = self.last_applied
        meta = SnapshotMeta(la, self.last_membership, snapshot_id(la, next(self._ids)))
        chunks = list(self._chunks())  # capture the state now; write it off the event loop
        return open_snapshot(await asyncio.to_thread(write_snapshot, self._snapshots, meta, chunks))

    def _load(self, meta: SnapshotMeta, f: BinaryIO) -> None:
        """Replace the state with snapshot bytes from ``f`` (StorageCorrupted if malformed)."""
        self.last_applied, self.last_membership, self.data = self._parse(meta, f)

    @staticmethod
    def _parse(meta: SnapshotMeta, f: BinaryIO) -> tuple[LogId | None, StoredMembership, dict[int, bytes]]:
        """The state in snapshot bytes from ``f`` (StorageCorrupted if malformed)."""
        items = unpack_items(f)
        try:
            applied, mem_id, mem, count = next(items)
            data: dict[int, bytes] = {}
            for _ in range(int(count)):
                index, payload = next(items)
                data[int(index)] = bytes(payload)
            membership = StoredMembership(log_id_from_list(mem_id), Membership.from_bytes(mem))
            last_applied = log_id_from_list(applied)
        except (StopIteration, ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise StorageCorrupted(f"malformed state machine snapshot: {exc!r}") from exc
        except StorageError:
            raise
        except Exception as exc:  # e.g. ProtocolError from a bad membership payload
            raise StorageCorrupted(f"malformed state machine snapshot: {exc}") from exc
        if last_applied != meta.last_log_id:
            raise StorageCorrupted(f"snapshot data covers {last_applied}, meta says {meta.last_log_id}")
        return last_applied, membership, data
