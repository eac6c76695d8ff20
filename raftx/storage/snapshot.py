"""Snapshot files: durable, checksummed, streamed in chunks (§7, R13).

A snapshot file ``snapshot-<last index + 1 (20 digits)>-<id>.snap`` is::

    offset size field
    ------ ---- --------------------------------------------------------------
         0    8 magic  b"RXSNAP01"
         8    4 meta_length  u32 little-endian
        12    n meta   msgpack: [last_log_id, membership_log_id, membership, snapshot_id]
      12+n    m data   the state machine's bytes, opaque here
    end-24   24 trailer: u64 data_length, u32 CRC-32 (zlib) of meta+data,
                u32 reserved 0, magic b"RXSNEND1"

Writing (`FileSnapshotStore.begin` -> `SnapshotWriter`): stream into
``<name>.tmp``, then fsync, rename into place and fsync the directory (R7, R13);
only then are older snapshots deleted (the previous one stays until the new one is
durable). Reading verifies the trailer and the checksum first (`StoredSnapshot.verify`,
done by `FileSnapshotStore.latest`), streaming in chunks so a state larger than
memory works. The checksum is zlib's CRC-32 so that it runs at C speed whichever
`_core` twin is loaded.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import struct
import tempfile
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from raftx.errors import StorageCorrupted, StorageError
from raftx.records import decode_meta, encode_meta, log_id_from_list, log_id_to_list
from raftx.storage.fileio import FileIO
from raftx.types import LogId, Snapshot, SnapshotMeta

__all__ = [
    "CHUNK_SIZE",
    "FileSnapshotStore",
    "MemSnapshotStore",
    "SnapshotWriter",
    "StoredSnapshot",
    "current_snapshot",
    "decode_meta",
    "encode_meta",
    "log_id_from_list",
    "log_id_to_list",
    "open_snapshot",
    "pack_chunks",
    "receive_file",
    "snapshot_id",
    "unpack_items",
    "write_snapshot",
]

logger = logging.getLogger(__name__)

MAGIC = b"RXSNAP01"
END_MAGIC = b"RXSNEND1"
_HEAD = struct.Struct("<8sI")
_TRAILER = struct.Struct("<QII8s")
CHUNK_SIZE = 1 << 20
_MAX_META = 64 << 20


_SYNC = FileIO()  # the atomic replace of the durable stores (F_FULLFSYNC on macOS)


class _Section(io.RawIOBase):
    """A read-only window ``[offset, offset + size)`` of a file."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self._f = f
        self._start = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(b)[:n])  # type: ignore[attr-defined]
        self._pos += got or 0
        return got or 0

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A snapshot file: its meta, where its data lies, and its checksum."""

    path: Path
    meta: SnapshotMeta
    data_offset: int
    data_size: int
    checksum: int

    @classmethod
    def read_header(cls, path: Path) -> StoredSnapshot:
        """Parse the header and trailer (not the checksum; see `verify`)."""
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    raise StorageCorrupted("snapshot header truncated", str(path), 0)
                magic, meta_len = _HEAD.unpack(head)
                if magic != MAGIC:
                    raise StorageCorrupted(f"bad snapshot magic {magic!r}", str(path), 0)
                if meta_len > _MAX_META or _HEAD.size + meta_len + _TRAILER.size > size:
                    raise StorageCorrupted(f"snapshot meta length {meta_len} does not fit the file", str(path), 8)
                meta_bytes = f.read(meta_len)
                f.seek(size - _TRAILER.size)
                data_len, crc, _reserved, end = _TRAILER.unpack(f.read(_TRAILER.size))
        except OSError as exc:
            raise StorageError(f"cannot read snapshot {path}: {exc}") from exc
        if end != END_MAGIC:
            raise StorageCorrupted("snapshot trailer missing (incomplete file)", str(path), size - _TRAILER.size)
        if _reserved != 0:
            raise StorageCorrupted("snapshot trailer reserved bytes are not zero", str(path), size - 12)
        data_offset = _HEAD.size + meta_len
        if data_offset + data_len + _TRAILER.size != size:
            raise StorageCorrupted(f"snapshot data length {data_len} disagrees with file size {size}", str(path))
        return cls(path, decode_meta(meta_bytes), data_offset, data_len, crc)

    def verify(self) -> None:
        """Recompute the checksum over meta+data in chunks; `StorageCorrupted` on mismatch."""
        crc = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(_HEAD.size)
                left = self.data_offset - _HEAD.size + self.data_size
                while left:
                    chunk = f.read(min(CHUNK_SIZE, left))
                    if not chunk:
                        raise StorageCorrupted("snapshot shorter than its trailer says", str(self.path))
                    crc = zlib.crc32(chunk, crc)
                    left -= len(chunk)
        except OSError as exc:
            raise StorageError(f"cannot read snapshot {self.path}: {exc}") from exc
        if crc != self.checksum:
            raise StorageCorrupted(
                f"snapshot checksum mismatch: stored {self.checksum:#010x}, computed {crc:#010x}", str(self.path)
            )

    def open(self) -> BinaryIO:
        """A seekable binary reader of the data (state bytes only)."""
        try:
            f = open(self.path, "rb")
        except OSError as exc:
            raise StorageError(f"cannot open snapshot {self.path}: {exc}") from exc
        return io.BufferedReader(_Section(f, self.data_offset, self.data_size), CHUNK_SIZE)


class SnapshotWriter:
    """Streams one snapshot into a temp file; `commit` makes it durable and current."""

    def __init__(self, store: FileSnapshotStore, meta: SnapshotMeta) -> None:
        self._store = store
        self.meta = meta
        name = f"snapshot-{(meta.last_log_id.index + 1) if meta.last_log_id else 0:020d}-{uuid.uuid4().hex}.snap"
        self.final_path = store.directory / name
        self.tmp_path = self.final_path.with_suffix(".tmp")
        meta_bytes = encode_meta(meta)
        try:
            self._f: BinaryIO | None = open(self.tmp_path, "wb")
            self._f.write(_HEAD.pack(MAGIC, len(meta_bytes)))
            self._f.write(meta_bytes)
        except OSError as exc:
            raise StorageError(f"cannot create snapshot file {self.tmp_path}: {exc}") from exc
        self._crc = zlib.crc32(meta_bytes)
        self._size = 0
        self._meta_len = len(meta_bytes)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append state bytes (any chunk size)."""
        if self._f is None:
            raise StorageError("snapshot writer is closed")
        try:
            self._f.write(data)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot write snapshot {self.tmp_path}: {exc}") from exc
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        return len(data)

    def commit(self, expected_checksum: int | None = None) -> StoredSnapshot:
        """Trailer, fsync, rename, fsync dir (R7, R13); then drop older snapshots.

        ``expected_checksum`` (CRC-32 of meta+data, e.g. sent by the leader) is
        verified before the snapshot becomes visible: `StorageCorrupted` on mismatch.
        """
        f = self._f
        if f is None:
            raise StorageError("snapshot writer is closed")
        if expected_checksum is not None and expected_checksum != self._crc:
            self.abort()
            raise StorageCorrupted(
                f"received snapshot checksum {self._crc:#010x} != expected {expected_checksum:#010x}"
            )
        try:
            f.write(_TRAILER.pack(self._size, self._crc, 0, END_MAGIC))
            f.flush()
            _SYNC.replace(f.fileno(), str(self.tmp_path), str(self.final_path), sync=self._store.fsync)
            f.close()
            self._f = None
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot commit snapshot {self.final_path}: {exc}") from exc
        stored = StoredSnapshot(self.final_path, self.meta, _HEAD.size + self._meta_len, self._size, self._crc)
        self._store._committed(stored)
        return stored

    def abort(self) -> None:
        """Discard the temp file."""
        if self._f is not None:
            self._f.close()
            self._f = None
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    @property
    def checksum(self) -> int:
        return self._crc


class FileSnapshotStore:
    """A directory of snapshot files; keeps the newest ``retain`` (>= 1) of them."""

    def __init__(self, directory: str | os.PathLike[str], *, retain: int = 1, fsync: bool = True) -> None:
        if retain < 1:
            raise ValueError(f"retain must be >= 1, not {retain}")
        self.directory = Path(directory)
        self.retain = retain
        self.fsync = fsync
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for tmp in self.directory.glob("snapshot-*.tmp"):  # an interrupted write: never durable
                tmp.unlink()
        except OSError as exc:
            raise StorageError(f"cannot prepare snapshot directory {self.directory}: {exc}") from exc
        self._latest: StoredSnapshot | None = None
        self._loaded = False

    def begin(self, meta: SnapshotMeta) -> SnapshotWriter:
        """Start writing a snapshot described by ``meta``."""
        return SnapshotWriter(self, meta)

    def paths(self) -> list[Path]:
        """Complete snapshot files, oldest first."""
        return sorted(self.directory.glob("snapshot-*.snap"))

    def latest(self) -> StoredSnapshot | None:
        """The newest snapshot, verified (checksum) the first time it is read."""
        if not self._loaded:
            paths = self.paths()
            if paths:
                snap = StoredSnapshot.read_header(paths[-1])
                snap.verify()
                self._latest = snap
            self._loaded = True
        return self._latest

    def _committed(self, stored: StoredSnapshot) -> None:
        self._latest = stored
        self._loaded = True
        for old in self.paths()[: -self.retain]:
            if old != stored.path:
                try:
                    old.unlink()
                except OSError as exc:  # the new snapshot is durable; a leftover is harmless
                    logger.warning("could not delete old snapshot %s: %s", old, exc)


class _MemWriter(io.BytesIO):
    def __init__(self, store: MemSnapshotStore, meta: SnapshotMeta) -> None:
        super().__init__()
        self._store = store
        self.meta = meta

    def commit(self, expected_checksum: int | None = None) -> tuple[SnapshotMeta, bytes]:
        data = self.getvalue()
        if expected_checksum is not None and expected_checksum != zlib.crc32(data, zlib.crc32(encode_meta(self.meta))):
            raise StorageCorrupted("received snapshot checksum mismatch")
        self._store.current = (self.meta, data)
        return self._store.current

    def abort(self) -> None:
        self.close()


class MemSnapshotStore:
    """Keeps the current snapshot in memory (for tests and `MemStateMachine`)."""

    def __init__(self) -> None:
        self.current: tuple[SnapshotMeta, bytes] | None = None

    def begin(self, meta: SnapshotMeta) -> _MemWriter:
        return _MemWriter(self, meta)


# -- helpers shared by the state machines (`MemStateMachine`, `KVStateMachine`) ----------

#: What `SnapshotStore.begin(...).commit()` returns: a file, or (meta, bytes) in memory.
Committed = StoredSnapshot | tuple[SnapshotMeta, bytes]


def snapshot_id(last_applied: LogId | None, seq: int) -> str:
    """``<term>-<index>-<seq>``: a snapshot id unique within one state machine's life."""
    if last_applied is None:
        return f"0--1-{seq}"
    return f"{last_applied.term}-{last_applied.index}-{seq}"


def write_snapshot(store: FileSnapshotStore | MemSnapshotStore, meta: SnapshotMeta,
                   chunks: Iterable[bytes]) -> Committed:
    """Stream ``chunks`` into a new snapshot of ``store`` and commit it (durable, R13).

    Blocking (file I/O): run it in a worker thread. On any error the partial
    snapshot is discarded and the error propagates.
    """
    writer = store.begin(meta)
    try:
        for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def open_snapshot(committed: Committed) -> Snapshot:
    """A `Snapshot` (meta and a reader of the data) of a committed snapshot."""
    if isinstance(committed, StoredSnapshot):
        return Snapshot(committed.meta, committed.open())
    meta, data = committed
    return Snapshot(meta, io.BytesIO(data))


async def current_snapshot(store: FileSnapshotStore | MemSnapshotStore) -> Snapshot | None:
    """The newest snapshot of ``store`` (verified once, off the event loop), or None."""
    committed: Committed | None
    if isinstance(store, FileSnapshotStore):
        committed = await asyncio.to_thread(store.latest)
    else:
        committed = store.current
    return None if committed is None else open_snapshot(committed)


def receive_file(directory: str | os.PathLike[str] | None) -> BinaryIO:
    """A spooled temp file (on disk in ``directory`` once large) to stream a snapshot into."""
    d = None if directory is None else os.fspath(directory)
    return tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 8, dir=d)  # type: ignore[return-value]


def pack_chunks(header: Any, items: Iterable[Any]) -> Iterator[bytes]:
    """``header`` then every item as msgpack, joined into chunks of about `CHUNK_SIZE`."""
    pack = msgpack.Packer(use_bin_type=True).pack
    buf = [pack(header)]
    size = len(buf[0])
    for item in items:
        b = pack(item)
        buf.append(b)
        size += len(b)
        if size >= CHUNK_SIZE:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def unpack_items(f: BinaryIO) -> Iterator[Any]:
    """The msgpack objects of a stream written by `pack_chunks`, read in chunks.

    Malformed bytes raise msgpack's exceptions (or ValueError) from ``next``; the
    caller turns them into `StorageCorrupted`.
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=CHUNK_SIZE * 64)
    while True:
        yield from unpacker
        chunk = f.read(CHUNK_SIZE)
        if not chunk:
            return
        unpacker.feed(chunk)
