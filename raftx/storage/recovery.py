"""The one validation of a segmented log directory, shared by `SegmentedLogStore.open`
and ``raftx inspect --verify`` (so the two cannot disagree).

`scan_log_dir` reads a directory through a `FileIO`, changes nothing, and either
returns a `LogScan` (what is there, and the repairs ``open`` will make) or raises
`raftx.errors.StorageCorrupted` naming the file and offset of the first thing
``open`` refuses (rules of correctness-notes §5.7):

* identity (R3): the hard state and every segment header carry the same cluster
  name and node id (the caller's, when it gives them);
* lost files: segments without a hard state (``open`` creates the hard state with
  the directory, so it was deleted: the vote is gone, §5.2), or a first segment
  whose sequence is above 1 in a log that was never purged (the head of the log
  was deleted);
* segments in sequence without gaps (R3), each starting where the previous one
  ended (R17), the checksum chain unbroken (R1), every record valid (R9);
* a torn write (R8) is accepted only at the end of the *last* segment, see
  `is_torn_write`; it is cut by ``open``;
* after an interrupted purge (R12) whole segments at or below the purge point are
  left over (deleted by ``open``), but no hole may follow the purge point;
* the saved committed id is not beyond the durable log (R6).
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raftx import _core
from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.fileio import FileIO
from raftx.storage.segment import HARDSTATE_NAME, HEADER_SIZE, HardState, SegmentHeader, parse_segment_name

__all__ = ["LOCK_NAME", "LogScan", "SECTOR_SIZE", "SegmentScan", "is_torn_write", "scan_log_dir"]

logger = logging.getLogger(__name__)

SECTOR_SIZE = 512
#: The file whose ``flock`` makes one process the owner of the directory (`raftx.storage.dirlock`).
LOCK_NAME = "LOCK"
_RESERVED = b"\0" * 7  # header bytes 25..31 of every valid record (codec format 1)
_MIN_PIECE = 8  # payload_length + crc: never both zero in a valid record
_HEADER_SIZE = 32  # entry record header (codec format 1)
_TERM_INDEX_KIND = struct.Struct("<QQB")  # record header bytes 8..24


@dataclass
class SegmentScan:
    """One segment as validated: its valid records and, for the last one, a torn tail."""

    seq: int
    first_index: int
    path: Path
    size: int  # file size
    header: SegmentHeader
    end: int = HEADER_SIZE  # bytes of header + valid records
    terms: Any = None
    offsets: Any = None
    lengths: Any = None
    count: int = 0
    last_crc: int = 0
    #: why the bytes ``end..size`` are a torn write that ``open`` cuts (R8), or None
    torn: str | None = None

    @property
    def last_index(self) -> int:
        return self.first_index + self.count - 1


@dataclass
class LogScan:
    """What `scan_log_dir` found; the lists are the repairs ``open`` makes."""

    directory: Path
    hard: HardState | None
    segments: list[SegmentScan] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # *.tmp: interrupted creations (R7)
    purged_files: list[str] = field(default_factory=list)  # left by an interrupted purge (R12)
    unknown: list[str] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        """Nothing of a log here yet (``open`` creates the hard state)."""
        return self.hard is None and not self.segments and not self.purged_files

    @property
    def last_index(self) -> int:
        """Index of the last valid entry, or of the purge point (-1: none)."""
        purged = -1 if self.hard is None or self.hard.purged is None else self.hard.purged.index
        live = [s for s in self.segments if s.count]
        return max(purged, live[-1].last_index) if live else purged


def _zero(chunk: bytes) -> bool:
    return chunk.count(0) == len(chunk)


def _first_zero_sector(buf: Any, start: int, size: int, short_ok: bool) -> int | None:
    """Offset of the first 512-byte sector piece ``[max(s, start), min(s+512, size))``
    (``s`` a multiple of 512) that is all zeros, or None. Only the first piece (from
    ``start``, the bad record) and the last (at the end of the file) can be short;
    the first counts from 8 bytes on -- a record whose length and CRC fields are both
    zero is impossible, while fewer zero bytes there can be a real length's -- or when
    ``short_ok`` (the rest of the record is shown to be the expected one's)."""
    s = start - start % SECTOR_SIZE
    while s < size:
        lo, hi = max(s, start), min(s + SECTOR_SIZE, size)
        if (hi - lo >= _MIN_PIECE or hi == size or short_ok) and _zero(bytes(buf[lo:hi])):
            return lo
        s += SECTOR_SIZE
    return None


def _expected_header(buf: Any, o: int, size: int, index: int, min_term: int) -> bool:
    """Do bytes 8..31 of the record at ``o`` read as the header of entry ``index``
    (term not below ``min_term``, known kind, zero reserved bytes)? When a tear kept
    everything of a record but its first sector piece (fewer than 8 bytes: its length
    and part of its CRC), this is what shows that the zeros there are a tear."""
    if o + _HEADER_SIZE > size:
        return False
    term, idx, kind = _TERM_INDEX_KIND.unpack_from(bytes(buf[o + 8 : o + 25]))
    known_kind = kind <= _core.codec.KIND_MAX  # the codec's bound: a new kind needs no edit here
    return idx == index and term >= min_term and known_kind and bytes(buf[o + 25 : o + 32]) == _RESERVED


def _valid_record_in(buf: Any, lo: int, hi: int, size: int) -> int | None:
    """Offset of a CRC-valid record starting in ``[lo, hi)``, or None. Candidates are
    found by the seven zero reserved bytes every record header has (then checked in full)."""
    data = bytes(buf[lo : min(size, hi + 32)])
    pos = data.find(_RESERVED, 25)
    while pos != -1 and pos - 25 < hi - lo:
        o = lo + pos - 25
        if _core.codec.scan_records(buf, o).count:
            return o
        pos = data.find(_RESERVED, pos + 1)
    return None


def is_torn_write(
    buf: Any, end: int, size: int, kind: str | None, *, index: int = -1, min_term: int = 0
) -> str | None:
    """Is the bad record at ``end`` in the *last* segment (``buf[:size]``) the tear of
    an interrupted, never-acknowledged write (R8)? Returns why, or None (corruption, R9).

    etcd's WAL rule (``decoder.go isTornEntry``), for a write of many records torn at
    sector granularity: a record running past the end of the file is torn; otherwise
    the damage must be explained by a tear -- some 512-byte sector from the bad
    record on reads as zeros (the part of the write that never reached the disk;
    the file size was kept) -- and no valid record may lie between the bad record and
    that sector. Damage with a valid record after it and before any zero sector
    (a flipped bit, garbage) is corruption. ``index`` / ``min_term``: the entry the
    bad record should hold and the last valid record's term (see `_expected_header`).
    """
    if kind == "truncated":
        return f"record at {end} runs past the end of the file ({size} bytes)"
    z = _first_zero_sector(buf, end, size, _expected_header(buf, end, size, index, min_term))
    if z is None:
        return None
    other = _valid_record_in(buf, end + 1, z, size)
    if other is not None:
        return None
    return f"the sector at {z - z % SECTOR_SIZE} reads as zeros"


def _corrupt(what: str, path: Path | str, offset: int | None = 0) -> StorageCorrupted:
    return StorageCorrupted(what, str(path), offset)


def _read_hard(io: FileIO, d: Path, names: list[str]) -> HardState | None:
    if HARDSTATE_NAME not in names:
        return None
    path = d / HARDSTATE_NAME
    try:
        data = io.read_file(str(path))
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    return HardState.decode(data, str(path))


def scan_log_dir(
    io: FileIO, directory: str | os.PathLike[str], *, cluster_name: str | None = None, node_id: int | None = None,
    into: LogScan | None = None,
) -> LogScan:
    """Validate the log in ``directory`` without changing it (see module doc).

    ``cluster_name`` / ``node_id``: the identity the log must have (R3); None takes
    it from the hard state. Raises `StorageCorrupted` for anything ``open`` refuses,
    `StorageError` for a lost file or a directory that cannot be read. ``into``
    (a `LogScan` for the same directory) is filled as the scan goes, so a caller
    that reports (``raftx inspect``) still has what came before a failure.
    """
    d = Path(directory)
    scan = into if into is not None else LogScan(d, None)
    try:
        names = sorted(io.listdir(str(d)))
    except OSError as exc:
        raise StorageError(f"cannot read log directory {d}: {exc}") from exc
    hard = scan.hard = _read_hard(io, d, names)
    files: list[tuple[int, int, Path]] = []
    for n in names:
        parsed = parse_segment_name(n)
        if parsed is not None:
            files.append((parsed[0], parsed[1], d / n))
        elif n.endswith(".tmp"):
            scan.stale.append(str(d / n))
        elif n not in (HARDSTATE_NAME, LOCK_NAME):
            scan.unknown.append(str(d / n))
    files.sort()
    if hard is not None:
        ident = (hard.cluster_name, hard.node_id)
        want = (hard.cluster_name if cluster_name is None else cluster_name, hard.node_id if node_id is None else node_id)
        if want != ident:
            raise _corrupt(
                f"hard state belongs to cluster {hard.cluster_name!r} node {hard.node_id}, "
                f"not cluster {want[0]!r} node {want[1]} (R3)", d / HARDSTATE_NAME,
            )
    elif files:
        raise StorageError(
            f"hard state file {d / HARDSTATE_NAME} is missing although the log has {len(files)} segment(s): "
            "the saved vote and purge point are lost (§5.2); restore this node from the leader"
        )
    else:
        return scan
    purged = hard.purged

    # Segments the next one shows to be wholly at or below the purge point: what an
    # interrupted purge left (maybe cut short). Not read; `open` deletes them.
    gone = 0
    while purged is not None and gone + 1 < len(files) and files[gone + 1][1] <= purged.index + 1:
        gone += 1
    scan.purged_files = [str(p) for _, _, p in files[:gone]]
    for k, (seq, first, path) in enumerate(files[gone:], gone):
        prev = scan.segments[-1] if scan.segments else None
        scan.segments.append(_scan_segment(io, seq, first, path, ident, prev, last=(k == len(files) - 1)))
    while purged is not None and scan.segments and scan.segments[0].last_index <= purged.index:
        scan.purged_files.append(str(scan.segments.pop(0).path))  # finish the purge (R12)
    if scan.segments:
        head = scan.segments[0]
        if purged is None and head.seq != 1:
            raise _corrupt(
                f"the log was never purged but its first segment has sequence {head.seq}: "
                f"segment(s) 1..{head.seq - 1} holding the head of the log are missing", head.path,
            )
        if purged is not None and head.first_index > purged.index + 1:
            raise _corrupt(f"hole after the purge point {purged}: first segment starts at {head.first_index}", head.path)
    committed = hard.committed
    if committed is not None and committed.index > scan.last_index:
        raise _corrupt(
            f"saved committed id {committed} is beyond the durable log (last {scan.last_index}): "
            "acknowledged entries are missing (R6, R9)", d / HARDSTATE_NAME, None,
        )
    return scan


def _scan_segment(
    io: FileIO, seq: int, first: int, path: Path, ident: tuple[str, int], prev: SegmentScan | None, last: bool
) -> SegmentScan:
    try:
        fd = io.open(str(path), os.O_RDONLY)
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    try:
        size = io.size(fd)
        hdr = SegmentHeader.decode(io.pread(fd, HEADER_SIZE, 0), str(path))
        if (hdr.cluster_name, hdr.node_id) != ident:
            raise _corrupt(
                f"segment belongs to cluster {hdr.cluster_name!r} node {hdr.node_id}, "
                f"not cluster {ident[0]!r} node {ident[1]} (R3)", path,
            )
        if hdr.sequence != seq or hdr.first_index != first:
            raise _corrupt(f"header (seq {hdr.sequence}, first {hdr.first_index}) disagrees with the file name", path)
        if prev is not None:
            if seq != prev.seq + 1:
                raise _corrupt(f"segment sequence gap: {prev.seq} then {seq} (R3)", path)
            if first != prev.last_index + 1:
                raise _corrupt(f"index gap: previous segment ends at {prev.last_index}, this starts at {first} (R17)", path)
            if hdr.prev_checksum != prev.last_crc:
                raise _corrupt(
                    f"checksum chain broken: header says {hdr.prev_checksum:#010x}, previous segment ends with "
                    f"{prev.last_crc:#010x} (R1)", path, 40,
                )
        seg = SegmentScan(seq, first, path, size, hdr, last_crc=hdr.prev_checksum)
        if size <= HEADER_SIZE:
            return seg
        with io.mapped(fd, size) as mm:
            rec = _core.codec.scan_records(mm, HEADER_SIZE, first)
            if rec.error is not None:
                min_term = rec.terms[-1] if rec.count else 0
                seg.torn = is_torn_write(
                    mm, rec.end, size, rec.error_kind, index=first + rec.count, min_term=min_term
                ) if last else None
                if seg.torn is None:
                    raise _corrupt(f"{rec.error_kind} record: {rec.error} (R9)", path, rec.end)
            if rec.last_crc is not None:  # the chain continues from the last valid record (R1)
                seg.last_crc = rec.last_crc
        seg.end, seg.count = rec.end, rec.count
        seg.terms, seg.offsets, seg.lengths = rec.terms, rec.offsets, rec.lengths
        return seg
    finally:
        io.close(fd)
