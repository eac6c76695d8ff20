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
import io
import itertools
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import msgpack

from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.protocols import RaftSnapshotBuilder, RaftStateMachine
from raftx.storage.snapshot import (
    CHUNK_SIZE,
    FileSnapshotStore,
    MemSnapshotStore,
    StoredSnapshot,
    log_id_from_list,
    log_id_to_list,
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
                self.data[e.log_id.index] = e.payload  # type: ignore[assignment]
                out.append(e.payload)
            else:
                if kind is EntryKind.MEMBERSHIP:
                    self.last_membership = StoredMembership(e.log_id, e.payload)  # type: ignore[arg-type]
                out.append(None)
            self.last_applied = e.log_id
        return out

    async def get_snapshot_builder(self) -> RaftSnapshotBuilder:
        return _Builder(self)

    async def try_create_snapshot_builder(self, force: bool) -> RaftSnapshotBuilder | None:
        return _Builder(self)

    async def begin_receiving_snapshot(self) -> BinaryIO:
        """A spooled temp file (in ``snapshot_dir`` when set) to stream a snapshot into."""
        d = None if self._snapshot_dir is None else os.fspath(self._snapshot_dir)
        return tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 8, dir=d)  # type: ignore[return-value]

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Store the snapshot durably (chunked copy, checksummed), then load it (§7)."""

        def install() -> None:
            snapshot.seek(0)
            self._load(meta, snapshot)  # validate and load first: a malformed one changes nothing
            snapshot.seek(0)
            writer = self._snapshots.begin(meta)
            try:
                for chunk in iter(lambda: snapshot.read(CHUNK_SIZE), b""):
                    writer.write(chunk)
            except BaseException:
                writer.abort()
                raise
            writer.commit()

        saved = (self.last_applied, self.last_membership, self.data)
        try:
            await asyncio.to_thread(install)
        except BaseException:
            self.last_applied, self.last_membership, self.data = saved
            raise

    async def get_current_snapshot(self) -> Snapshot | None:
        store = self._snapshots
        if isinstance(store, FileSnapshotStore):
            stored = await asyncio.to_thread(store.latest)
            return None if stored is None else Snapshot(stored.meta, stored.open())
        if store.current is None:
            return None
        meta, data = store.current
        return Snapshot(meta, io.BytesIO(data))

    # -- snapshot data ----------------------------------------------------------------

    def _chunks(self) -> Iterator[bytes]:
        packer = msgpack.Packer(use_bin_type=True)
        m = self.last_membership
        buf = [packer.pack([log_id_to_list(self.last_applied), log_id_to_list(m.log_id), m.membership.to_bytes(), len(self.data)])]
        size = len(buf[0])
        for index, payload in sorted(self.data.items()):
            b = packer.pack([index, payload])
            buf.append(b)
            size += len(b)
            if size >= CHUNK_SIZE:
                yield b"".join(buf)
                buf, size = [], 0
        if buf:
            yield b"".join(buf)

    async def _build_snapshot(self) -> Snapshot:
        la = self.last_applied
        sid = f"{la.leader_id if la else 0}-{la.index if la else -1}-{next(self._ids)}"
        meta = SnapshotMeta(la, self.last_membership, sid)
        chunks = list(self._chunks())  # capture the state now; write it off the event loop

        def write() -> StoredSnapshot | tuple[SnapshotMeta, bytes]:
            writer = self._snapshots.begin(meta)
            try:
                for c in chunks:
                    writer.write(c)
            except BaseException:
                writer.abort()
                raise
            return writer.commit()

        stored = await asyncio.to_thread(write)
        if isinstance(stored, StoredSnapshot):
            return Snapshot(meta, stored.open())
        return Snapshot(meta, io.BytesIO(stored[1]))

    def _load(self, meta: SnapshotMeta, f: BinaryIO) -> None:
        """Replace the state with snapshot bytes from ``f`` (StorageCorrupted if malformed)."""
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=CHUNK_SIZE * 64)
        items = self._items(unpacker, f)
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
        self.last_applied, self.last_membership, self.data = last_applied, membership, data

    @staticmethod
    def _items(unpacker: msgpack.Unpacker, f: BinaryIO) -> Iterator[Any]:
        while True:
            for obj in unpacker:
                yield obj
            chunk = f.read(CHUNK_SIZE)
            if not chunk:
                return
            unpacker.feed(chunk)
