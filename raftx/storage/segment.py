"""On-disk formats of the segmented log: segment headers, file names, the hard-state file.

Segment file ``<sequence:016x>-<first index:016x>.seg`` = a 128-byte header, then
`raftx._core.codec` records laid end to end (each with its own CRC32C, R1)::

    offset size field
    ------ ---- ---------------------------------------------------------------
         0    8 magic             b"RAFTXSEG"
         8    2 segment format    u16 (SEGMENT_VERSION = 1)
        10    2 codec format      u16 (_core.codec.FORMAT_VERSION)
        12    4 reserved          zero
        16    8 node_id           u64
        24    8 sequence          u64, +1 per segment, no gaps (R3)
        32    8 first_index       u64, index of the first record (R17)
        40    4 prev_checksum     u32, CRC of the previous segment's last record
                                  (its header ``prev_checksum`` when it had none; 0
                                  for the first segment ever) -- chains segments (R1)
        44    4 cluster_len       u32, bytes of cluster name used
        48   64 cluster_name      utf-8, zero padded
       112   12 reserved          zero
       124    4 header_crc        u32, CRC32C of bytes 0..123

A segment is created as ``<name>.tmp`` (header written, fsynced), renamed into
place, then the directory is fsynced (R7); so a ``.seg`` file always has a whole
header, and a ``.tmp`` file is an interrupted creation (deleted on open).

Hard-state file ``hardstate`` (vote, committed, purged; replaced atomically by
temp file + fsync + rename + directory fsync, R5/R7)::

    magic b"RXHARD01" | u32 body_length | u32 CRC32C(body) | body (msgpack map)
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import msgpack

from raftx import _core
from raftx.errors import StorageCorrupted
from raftx.storage.snapshot import log_id_from_list, log_id_to_list
from raftx.types import LogId, Vote

__all__ = [
    "HARDSTATE_NAME",
    "HEADER_SIZE",
    "HardState",
    "SEGMENT_VERSION",
    "SegmentHeader",
    "parse_segment_name",
    "segment_name",
]

SEGMENT_MAGIC = b"RAFTXSEG"
SEGMENT_VERSION = 1
HEADER_SIZE = 128
_HEADER = struct.Struct("<8sHHIQQQII64s12sI")
assert _HEADER.size == HEADER_SIZE
_MAX_CLUSTER = 64

HARDSTATE_NAME = "hardstate"
HARD_MAGIC = b"RXHARD01"
_HARD = struct.Struct("<8sII")
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.seg$")


def segment_name(sequence: int, first_index: int) -> str:
    """``<sequence:016x>-<first_index:016x>.seg`` (sorts in sequence order)."""
    return f"{sequence:016x}-{first_index:016x}.seg"


def parse_segment_name(name: str) -> tuple[int, int] | None:
    """``(sequence, first_index)`` of a segment file name, or None if it is not one."""
    m = _NAME.match(name)
    return None if m is None else (int(m.group(1), 16), int(m.group(2), 16))


def cluster_bytes(cluster_name: str) -> bytes:
    """The cluster name as stored (utf-8, at most 64 bytes; ValueError otherwise)."""
    b = cluster_name.encode("utf-8")
    if len(b) > _MAX_CLUSTER:
        raise ValueError(f"cluster_name is {len(b)} bytes in utf-8; at most {_MAX_CLUSTER}")
    return b


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """The fields of a segment header (see module doc)."""

    cluster_name: str
    node_id: int
    sequence: int
    first_index: int
    prev_checksum: int

    def encode(self) -> bytes:
        """The 128-byte header, CRC included (``ValueError`` for a too-long cluster name)."""
        name = cluster_bytes(self.cluster_name)
        head = _HEADER.pack(
            SEGMENT_MAGIC, SEGMENT_VERSION, _core.codec.FORMAT_VERSION, 0, self.node_id, self.sequence,
            self.first_index, self.prev_checksum, len(name), name, b"", 0,
        )
        return head[:-4] + struct.pack("<I", _core.codec.crc32c(head[:-4]))

    @classmethod
    def decode(cls, data: bytes, path: str) -> SegmentHeader:
        """Parse and validate a header; `StorageCorrupted` naming ``path`` otherwise."""
        if len(data) < HEADER_SIZE:
            raise StorageCorrupted(f"segment header truncated ({len(data)} of {HEADER_SIZE} bytes)", path, 0)
        magic, version, codec_version, _r, node, seq, first, prev, clen, name, _r2, crc = _HEADER.unpack_from(data)
        if magic != SEGMENT_MAGIC:
            raise StorageCorrupted(f"not a raftx segment (magic {magic!r})", path, 0)
        actual = _core.codec.crc32c(data[: HEADER_SIZE - 4])
        if actual != crc:
            raise StorageCorrupted(f"segment header CRC32C mismatch (stored {crc:#010x}, computed {actual:#010x})", path, 0)
        if version != SEGMENT_VERSION:
            raise StorageCorrupted(f"unsupported segment format version {version}", path, 8)
        if codec_version != _core.codec.FORMAT_VERSION:
            raise StorageCorrupted(f"unsupported record format version {codec_version}", path, 10)
        if clen > _MAX_CLUSTER:
            raise StorageCorrupted(f"cluster name length {clen} > {_MAX_CLUSTER}", path, 44)
        try:
            cluster = name[:clen].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StorageCorrupted(f"cluster name is not utf-8: {exc}", path, 48) from exc
        return cls(cluster, node, seq, first, prev)


@dataclass(frozen=True, slots=True)
class HardState:
    """The small durable state next to the log: identity, vote, committed, purged."""

    cluster_name: str
    node_id: int
    vote: Vote | None = None
    committed: LogId | None = None
    purged: LogId | None = None

    def encode(self) -> bytes:
        """The hard-state file's bytes: magic, body length, CRC32C, msgpack body."""
        v = self.vote
        body: bytes = msgpack.packb(
            {
                "cluster": self.cluster_name,
                "node": self.node_id,
                "vote": None if v is None else [v.term, v.node_id, v.committed],
                "committed": log_id_to_list(self.committed),
                "purged": log_id_to_list(self.purged),
            },
            use_bin_type=True,
        )
        return _HARD.pack(HARD_MAGIC, len(body), _core.codec.crc32c(body)) + body

    @classmethod
    def decode(cls, data: bytes, path: str) -> HardState:
        """Parse and verify; `StorageCorrupted` naming ``path`` otherwise."""
        if len(data) < _HARD.size:
            raise StorageCorrupted("hard state truncated", path, 0)
        magic, length, crc = _HARD.unpack_from(data)
        if magic != HARD_MAGIC:
            raise StorageCorrupted(f"bad hard state magic {magic!r}", path, 0)
        body = data[_HARD.size :]
        if len(body) != length:
            raise StorageCorrupted(f"hard state body is {len(body)} bytes, header says {length}", path, 8)
        actual = _core.codec.crc32c(body)
        if actual != crc:
            raise StorageCorrupted(f"hard state CRC32C mismatch (stored {crc:#010x}, computed {actual:#010x})", path, 12)
        try:
            d = msgpack.unpackb(body, raw=False)
            v = d["vote"]
            vote = None if v is None else Vote(int(v[0]), None if v[1] is None else int(v[1]), bool(v[2]))
            return cls(str(d["cluster"]), int(d["node"]), vote, log_id_from_list(d["committed"]), log_id_from_list(d["purged"]))
        except (KeyError, TypeError, ValueError, IndexError, msgpack.UnpackException) as exc:
            raise StorageCorrupted(f"malformed hard state: {exc!r}", path, _HARD.size) from exc
