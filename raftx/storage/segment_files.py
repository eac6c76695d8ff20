"""The segmented log's blocking file operations: what `SegmentedLogStore` runs on its
I/O thread (`raftx.storage.io_thread.IOThread`), or at open, in submission order (R14).

`SegmentFiles` is the half of `raftx.storage.segmented.SegmentedLogStore` that
touches files and never awaits: recovery at open (R8, R9, R16, R17), creating a
segment (R7), the hard-state file (R5, R7), truncation (R11) and detaching purged
segments (R12). The other half (the asyncio API, group commit, the lock that keeps
submission order) is in `raftx.storage.segmented`. The file formats are
`raftx.storage.segment`'s; the record bytes are only ever read by `raftx._core.codec`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from raftx import _core
from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.dirlock import lock_path
from raftx.storage.fileio import FileIO
from raftx.storage.recovery import LOCK_NAME, SegmentScan, scan_log_dir
from raftx.storage.segment import HARDSTATE_NAME, HEADER_SIZE, HardState, SegmentHeader, segment_name
from raftx.types import LogId

__all__ = ["Segment", "SegmentFiles"]

logger = logging.getLogger("raftx.storage.segmented")  # one logger for the store


class Segment:
    """One open segment file."""

    __slots__ = ("seq", "first_index", "path", "fd", "size", "last_crc", "count")

    def __init__(self, seq: int, first_index: int, path: Path, fd: int, size: int, last_crc: int, count: int) -> None:
        self.seq = seq
        self.first_index = first_index
        self.path = path
        self.fd = fd
        self.size = size  # bytes, header included
        self.last_crc = last_crc  # CRC of the last record (or the header's prev_checksum)
        self.count = count  # records held (before any purge)

    @property
    def last_index(self) -> int:
        return self.first_index + self.count - 1


class SegmentFiles:
    """The blocking file operations of a `SegmentedLogStore` (see the module docstring).

    The attributes are the store's (set by its constructor); these methods are only
    called on its I/O thread or while it opens, never concurrently.
    """

    directory: Path
    fsync: bool
    cluster_name: str
    node_id: int
    _io: FileIO
    _segments: list[Segment]
    _index: _core.logindex.LogIndex
    _hard: HardState
    _next_seq: int
    _chain_crc: int
    _lock_fd: int | None
    _purged: LogId | None
    _last: LogId | None

    def _unlink(self, paths: list[str]) -> None:  # the store's (its chunk size is patched in tests)
        raise NotImplementedError

    def _seg_path(self, seq: int, first_index: int) -> Path:
        return self.directory / segment_name(seq, first_index)

    def _close_files(self) -> None:
        """Close every segment, then release the directory lock."""
        for seg in self._segments:
            try:
                self._io.close(seg.fd)
            except OSError:
                pass
        self._segments = []
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            try:
                self._io.close(fd)
            except OSError:
                pass

    def _recover(self) -> None:
        """Lock the directory, validate it (`raftx.storage.recovery.scan_log_dir`, the
        checks ``raftx inspect --verify`` runs too), then make the repairs it lists."""
        io = self._io
        d = self.directory
        try:
            io.makedirs(str(d))
        except OSError as exc:
            raise StorageError(f"cannot open log directory {d}: {exc}") from exc
        self._lock_fd = lock_path(io, str(d / LOCK_NAME), record_pid=True)
        scan = scan_log_dir(io, d, cluster_name=self.cluster_name, node_id=self.node_id)
        for n in scan.stale:  # interrupted segment creation or hard-state save: never durable (R7)
            logger.warning("removing interrupted file %s", n)
            io.unlink(n)
        if scan.stale:
            io.fsync_dir(str(d))
        for n in scan.unknown:
            logger.warning("ignoring unknown file %s in log directory", n)
        if scan.fresh:  # a new log: its hard state exists from now on (a lost one is detected)
            self._write_hard_sync(self._hard.encode())
        elif scan.hard is not None:
            self._hard = scan.hard
        if scan.purged_files:  # finish an interrupted purge (R12)
            self._unlink(scan.purged_files)
        for seg in scan.segments:
            self._open_segment(seg)
        purged = self._hard.purged
        if purged is not None:
            self._index.purge_upto(purged.index)
            self._purged = purged
        last = self._index.last_index
        if len(self._index):
            self._last = LogId(self._index.term_at(last), last)
        if self._segments:
            self._next_seq = self._segments[-1].seq + 1
            self._chain_crc = self._segments[-1].last_crc
        logger.info(
            "opened log %s: %d segments, entries %d..%d, purged %s", d, len(self._segments),
            self._index.first_index, last, purged,
        )

    def _open_segment(self, scan: SegmentScan) -> None:
        """Open a validated segment for writing; cut a torn tail (R8); index its records."""
        io = self._io
        fd = io.open(str(scan.path), os.O_RDWR)
        seg = Segment(scan.seq, scan.first_index, scan.path, fd, scan.end, scan.last_crc, scan.count)
        self._segments.append(seg)  # closed by _close_files on failure
        if scan.torn is not None:
            logger.warning("%s: cutting a torn write of %d bytes at offset %d: %s (R8)",
                           scan.path, scan.size - scan.end, scan.end, scan.torn)
            io.ftruncate(fd, scan.end)
        # After a process crash (kill -9) the page cache may still hold records whose
        # fdatasync never ran: they read back fine, and the node will treat its whole
        # log as durable (acknowledge it, count it toward commit, §5.3). Sync before
        # that, or a later power loss takes entries this node already vouched for.
        io.fdatasync(fd)
        if scan.count:
            self._index.extend(scan.first_index, scan.terms, scan.seq, scan.offsets, scan.lengths)

    def _detach_purged_segments(self, upto: int) -> list[str]:
        """Close and forget, oldest first, every segment whose entries are all ``<= upto``;
        return their paths."""
        paths = []
        while self._segments and self._segments[0].last_index <= upto:
            seg = self._segments.pop(0)
            self._io.close(seg.fd)
            paths.append(str(seg.path))
            if not self._segments:
                self._chain_crc = seg.last_crc
        return paths

    def _create_segment(self, first_index: int) -> Segment:
        """Create the next segment: temp file, header, fsync, rename, fsync dir (R7)."""
        io = self._io
        seq = self._next_seq
        prev = self._segments[-1].last_crc if self._segments else self._chain_crc
        header = SegmentHeader(self.cluster_name, self.node_id, seq, first_index, prev).encode()
        path = self._seg_path(seq, first_index)
        fd = io.create_atomic(str(path), header, sync=self.fsync)
        seg = Segment(seq, first_index, path, fd, HEADER_SIZE, prev, 0)
        self._segments.append(seg)
        self._next_seq = seq + 1
        logger.debug("created segment %s", path)
        return seg

    def _write_hard_sync(self, data: bytes) -> None:
        self._io.write_atomic(str(self.directory / HARDSTATE_NAME), data, sync=self.fsync)

    def _truncate_sync(self, since: int) -> None:
        io = self._io
        removed = False
        while self._segments and self._segments[-1].first_index >= since:  # newest first: never a hole
            seg = self._segments.pop()
            io.close(seg.fd)
            io.unlink(str(seg.path))
            self._next_seq = seg.seq
            removed = True
        if removed and self.fsync:
            io.fsync_dir(str(self.directory))
        if not self._segments:
            return
        seg = self._segments[-1]
        if since > seg.last_index:
            return
        _, offset, _ = self._index.locate(since)
        io.ftruncate(seg.fd, offset)
        if self.fsync:
            io.fdatasync(seg.fd)
        seg.count = since - seg.first_index
        seg.size = offset
        seg.last_crc = self._crc_before(seg, since, offset)

    def _crc_before(self, seg: Segment, since: int, offset: int) -> int:
        """The CRC of the record before ``since`` (at ``offset``) in ``seg``: what the
        next segment's header chains to (R1)."""
        io = self._io
        if since == seg.first_index:
            return SegmentHeader.decode(io.pread(seg.fd, HEADER_SIZE, 0), str(seg.path)).prev_checksum
        if since - 1 >= self._index.first_index:
            prev_off = self._index.locate(since - 1)[1]
            return _core.codec.record_crc(io.pread(seg.fd, _core.codec.RECORD_HEADER_SIZE, prev_off))
        # ``since - 1`` is purged (a truncate right after a purge, e.g. a snapshot then a
        # conflict): still in the file, no longer in the index, so find it by a scan
        scan = _core.codec.scan_records(io.pread(seg.fd, offset - HEADER_SIZE, HEADER_SIZE), 0, seg.first_index)
        if scan.error is not None or scan.count != since - seg.first_index:
            raise StorageCorrupted(f"bad record before {since} on truncate: {scan.error} (R9)", str(seg.path), HEADER_SIZE + scan.end)
        assert scan.last_crc is not None  # since > seg.first_index: at least one record
        return int(scan.last_crc)
