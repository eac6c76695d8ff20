"""raftx's one byte format: log entry records and network frames (pure-Python twin, the spec).

An entry is serialized once, on the leader, into a *record*; the same bytes go to the
segment file and onto the wire (DESIGN §2 rule 3). Every reader (storage recovery,
follower receiving AppendEntries) validates them here before trusting a single field.

Format version 1 (``FORMAT_VERSION``)
=====================================

All integers are little-endian. A *batch* is records laid end to end, nothing between.

Entry record = 32-byte header + payload::

    offset size field
    ------ ---- -----------------------------------------------------------------
         0    4 payload_length  u32, bytes of payload after the header,
                                <= MAX_RECORD_PAYLOAD (64 MiB)
         4    4 crc             u32, CRC-32C (Castagnoli, RFC 3720) of header
                                bytes 0..3 followed by bytes 8..31 and the payload,
                                i.e. everything in the record except this field
         8    8 term            u64, term of the leader that created the entry (§5.3)
        16    8 index           u64, log index of the entry (§5.3)
        24    1 kind            u8, KIND_BLANK=0 | KIND_NORMAL=1 | KIND_MEMBERSHIP=2
        25    7 reserved        must be zero (future flags); non-zero is corruption
        32    n payload         ``payload_length`` opaque bytes

A record's total length is ``RECORD_HEADER_SIZE + payload_length``. The header is
padded to 32 bytes so that term and index are 8-byte aligned when records are.

Validation (`decode_entries`, `scan_records`), in this order, for the record at
byte offset ``o`` (``o`` is what `raftx.errors.CorruptRecord.offset` reports):

1. the buffer holds the 32 header bytes (else *truncated*);
2. ``payload_length <= MAX_RECORD_PAYLOAD`` (else *corrupt*: a forged or damaged
   length never drives an allocation);
3. ``kind`` is known and the reserved bytes are zero (else *corrupt*);
4. the buffer holds the payload (else *truncated*);
5. the CRC matches (else *corrupt*);
6. index continuity: the first record's index equals ``expected_first_index`` when
   given, and each later record's index is the previous one + 1 (a gap or repeat is
   *corrupt*: the log has no holes, §5.3 Log Matching);
7. terms never decrease within a batch (§5.3; else *corrupt*).

`record_kinds`, `record_payloads` and `record_crc` read fields of records that were
validated earlier (located by `scan_records`' ``offsets`` and ``lengths``) and check
no CRC; they check only that every record they touch lies inside the buffer.
`ScanResult.last_crc` is the stored CRC of the last valid record (what a segment's
checksum chain continues from). Nothing outside this module (and its compiled twin)
reads a record's bytes: a format change touches the twins, their stub and the
golden vectors only.

`encode_entries` enforces the same rules on its input (raising
`raftx.errors.CodecError`), so whatever it returns decodes.

Network frame = 5-byte header + payload::

    offset size field
    ------ ---- -----------------------------------------------------------------
         0    4 length      u32, bytes of payload after the header
         4    1 frame_type  u8, meaning chosen by the transport
         5    n payload

`FrameDecoder` rejects a declared ``length`` above its ``max_frame_size`` as soon as
the 5 header bytes have arrived, before any byte of the body is buffered. Frames
carry no checksum of their own: TCP checksums the stream, and the entry records
inside AppendEntries carry their CRC-32C end to end.

The compiled twin ``codec_c`` has the same names and produces byte-identical output.
"""

from __future__ import annotations

import logging
import itertools
import operator
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any, Union

from raftx.errors import CodecError, CorruptRecord, ProtocolError

__all__ = [
    "FORMAT_VERSION",
    "RECORD_HEADER_SIZE",
    "FRAME_HEADER_SIZE",
    "MAX_RECORD_PAYLOAD",
    "MAX_FRAME_SIZE_LIMIT",
    "KIND_BLANK",
    "KIND_NORMAL",
    "KIND_MEMBERSHIP",
    "KIND_MAX",
    "crc32c",
    "encode_entries",
    "encode_normal",
    "decode_entries",
    "scan_records",
    "ScanResult",
    "record_kinds",
    "record_payloads",
    "record_crc",
    "encode_frame",
    "FrameDecoder",
]

logger = logging.getLogger(__name__)

Buffer = Union[bytes, bytearray, memoryview]
EntryTuple = tuple[int, int, int, bytes]

FORMAT_VERSION = 1
RECORD_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 5
MAX_RECORD_PAYLOAD = 64 * 1024 * 1024
MAX_FRAME_SIZE_LIMIT = 0xFFFFFFFF
KIND_BLANK = 0
KIND_NORMAL = 1
KIND_MEMBERSHIP = 2
KIND_MAX = KIND_MEMBERSHIP

_U64_MAX = 0xFFFFFFFFFFFFFFFF
# payload_length, crc, term, index, kind, reserved (1 + 2 + 4 bytes = 7)
_RECORD = struct.Struct("<IIQQBBHI")
_LEN = struct.Struct("<I")
_FRAME = struct.Struct("<IB")
assert _RECORD.size == RECORD_HEADER_SIZE and _FRAME.size == FRAME_HEADER_SIZE

# -- CRC-32C ------------------------------------------------------------------------

_POLY = 0x82F63B78  # Castagnoli polynomial 0x1EDC6F41, bit-reflected


def _make_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()
_TABLE16: list[int] = []  # built on first use: ~10 ms, halves the loop count
_LITTLE_ENDIAN = sys.byteorder == "little"


def _table16() -> list[int]:
    """``_TABLE16[x]``: the CRC register ``x`` (16 bits) advanced over 16 zero bits."""
    if not _TABLE16:
        t = _TABLE
        _TABLE16.extend(t[(t[x & 0xFF] ^ (x >> 8)) & 0xFF] ^ (t[x & 0xFF] >> 8) for x in range(65536))
    return _TABLE16


def crc32c(data: Buffer, value: int = 0) -> int:
    """CRC-32C (Castagnoli; RFC 3720 iSCSI) of ``data``, continuing from ``value``.

    ``crc32c(b, crc32c(a)) == crc32c(a + b)``; ``crc32c(b"123456789") == 0xE3069283``.
    ``data`` is any contiguous bytes-like object. Table driven: two bytes per step
    through a 64 Ki-entry table for inputs of 64 bytes or more, one byte per step
    otherwise.
    """
    value = operator.index(value)
    if not 0 <= value <= 0xFFFFFFFF:
        raise CodecError(f"crc32c value must be a u32, not {value!r}")
    mv = _as_bytes_view(data)
    crc = value ^ 0xFFFFFFFF
    n = len(mv)
    head = 0
    if n >= 64 and _LITTLE_ENDIAN:
        head = n & ~1
        t16 = _table16()
        for w in mv[:head].cast("H"):
            crc = t16[(crc ^ w) & 0xFFFF] ^ (crc >> 16)
    table = _TABLE
    for b in mv[head:]:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _as_bytes_view(data: Any) -> memoryview:
    """A flat unsigned-byte view of a contiguous bytes-like object (TypeError otherwise)."""
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise TypeError("buffer must be C-contiguous")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _check_u64(name: str, value: Any) -> int:
    """``value`` as an int in u64 (anything with ``__index__``); CodecError if out of range."""
    number = operator.index(value)
    if not 0 <= number <= _U64_MAX:
        raise CodecError(f"{name} {number} is outside u64")
    return number


# -- entry records ------------------------------------------------------------------


def encode_entries(entries: Iterable[tuple[int, int, int, Any]]) -> bytes:
    """Serialize ``(term, index, kind, payload)`` tuples into one contiguous batch.

    ``payload`` is any bytes-like object. Indexes must be consecutive and terms
    non-decreasing (§5.3), kinds known and payloads at most `MAX_RECORD_PAYLOAD`
    bytes; otherwise `raftx.errors.CodecError` (TypeError for non-int or
    non-bytes-like fields). An empty input gives ``b""``.
    """
    items = list(entries)
    views = []
    total = 0
    prev_index = prev_term = -1
    for pos, entry in enumerate(items):
        if len(entry) != 4:
            raise CodecError(f"entry {pos} must be (term, index, kind, payload), got {len(entry)} fields")
        term, index, kind, payload = entry
        term = _check_u64("term", term)
        index = _check_u64("index", index)
        kind = operator.index(kind)
        if not 0 <= kind <= KIND_MAX:
            raise CodecError(f"unknown entry kind {kind}")
        mv = _as_bytes_view(payload)
        if len(mv) > MAX_RECORD_PAYLOAD:
            raise CodecError(f"payload of {len(mv)} bytes exceeds MAX_RECORD_PAYLOAD={MAX_RECORD_PAYLOAD}")
        if pos and index != prev_index + 1:
            raise CodecError(f"entry {pos}: index {index} does not follow {prev_index} (§5.3)")
        if term < prev_term:
            raise CodecError(f"entry {pos}: term {term} is below the previous term {prev_term} (§5.3)")
        prev_index, prev_term = index, term
        items[pos] = (term, index, kind, mv)
        views.append(mv)
        total += RECORD_HEADER_SIZE + len(mv)

    out = bytearray(total)
    view = memoryview(out)
    o = 0
    pack_into = _RECORD.pack_into
    for (term, index, kind, _), mv in zip(items, views):
        n = len(mv)
        pack_into(out, o, n, 0, term, index, kind, 0, 0, 0)
        end = o + RECORD_HEADER_SIZE + n
        view[o + RECORD_HEADER_SIZE : end] = mv
        crc = crc32c(view[o + 8 : end], crc32c(view[o : o + 4]))
        _LEN.pack_into(out, o + 4, crc)
        o = end
    view.release()
    return bytes(out)


def encode_normal(term: int, first_index: int, payloads: Sequence[bytes]) -> tuple[bytes, array[int], array[int]]:
    """The records of NORMAL entries ``first_index, first_index + 1, ...`` of ``term``
    with ``payloads`` (each exactly ``bytes``), as ``(data, offsets, lengths)``:
    ``data`` is what `encode_entries` gives for those entries, ``offsets[i]`` and
    ``lengths[i]`` (header included) locate record ``i`` in it.

    A leader's group commit in one call (no tuple per entry). `raftx.errors.CodecError`
    for a payload over `MAX_RECORD_PAYLOAD` or indexes past 2**64-1; TypeError for a
    payload that is not ``bytes``.
    """
    payloads = list(payloads)
    for p in payloads:
        if type(p) is not bytes:
            raise TypeError(f"a payload must be bytes, not {type(p).__name__}")
    term = _check_u64("term", term)
    first = _check_u64("first_index", first_index)
    if payloads and first + len(payloads) - 1 >= 1 << 64:
        raise CodecError(f"indexes from {first} overflow u64")
    data = encode_entries((term, first + i, KIND_NORMAL, p) for i, p in enumerate(payloads))
    lengths = array("I", [RECORD_HEADER_SIZE + len(p) for p in payloads])
    offsets = array("Q", itertools.accumulate(lengths, initial=0))
    offsets.pop()
    return data, offsets, lengths


class ScanResult:
    """What `scan_records` found: the valid prefix of a buffer and what stopped it.

    ``count`` records starting at ``first_index`` through ``last_index`` (both ``None``
    when ``count == 0``); ``end`` is the byte offset just after the last valid record
    (the scan's ``start`` when none); ``terms[i]``, ``offsets[i]`` (offset of record
    ``i`` within the buffer) and ``lengths[i]`` (record length, header included)
    describe record ``i``. ``error`` is the `CorruptRecord` that ended the scan, or
    ``None`` when the buffer ended exactly at a record boundary; ``error_kind`` is then
    ``"truncated"`` (the buffer ends inside a header or payload: a torn tail) or
    ``"corrupt"`` (bad length, kind, reserved byte, CRC, index or term).
    ``last_crc`` is the stored CRC-32C of the last valid record (``None`` when
    ``count == 0``).
    """

    __slots__ = ("count", "first_index", "last_index", "end", "terms", "offsets", "lengths", "error", "error_kind",
                 "last_crc")

    def __init__(
        self,
        count: int,
        first_index: int | None,
        last_index: int | None,
        end: int,
        terms: array[int],
        offsets: array[int],
        lengths: array[int],
        error: CorruptRecord | None,
        error_kind: str | None,
        last_crc: int | None = None,
    ) -> None:
        self.count = count
        self.first_index = first_index
        self.last_index = last_index
        self.end = end
        self.terms = terms
        self.offsets = offsets
        self.lengths = lengths
        self.error = error
        self.error_kind = error_kind
        self.last_crc = last_crc

    def __repr__(self) -> str:
        return (
            f"ScanResult(count={self.count}, first_index={self.first_index}, "
            f"last_index={self.last_index}, end={self.end}, error_kind={self.error_kind!r}, "
            f"error={self.error!r})"
        )


def _walk(
    mv: memoryview, start: int, expected_first_index: int | None, sink: list[tuple[int, int, int, int, int]]
) -> tuple[int, CorruptRecord | None, str | None, int | None]:
    """Validate records from ``start``; append ``(offset, term, index, kind, payload_length)``
    of each valid one to ``sink``. Returns ``(end, error, error_kind)``."""
    n = len(mv)
    o = start
    prev_term = -1
    expect = expected_first_index
    unpack_from = _RECORD.unpack_from
    last_crc: int | None = None
    while o < n:
        if n - o < RECORD_HEADER_SIZE:
            msg = f"record header truncated: {n - o} of {RECORD_HEADER_SIZE} bytes"
            return o, CorruptRecord(msg, o), "truncated", last_crc
        length, crc, term, index, kind, r1, r2, r3 = unpack_from(mv, o)
        if length > MAX_RECORD_PAYLOAD:
            msg = f"declared payload length {length} exceeds MAX_RECORD_PAYLOAD={MAX_RECORD_PAYLOAD}"
            return o, CorruptRecord(msg, o), "corrupt", last_crc
        if kind > KIND_MAX:
            return o, CorruptRecord(f"unknown entry kind {kind}", o), "corrupt", last_crc
        if r1 or r2 or r3:
            return o, CorruptRecord("reserved header bytes are not zero", o), "corrupt", last_crc
        end = o + RECORD_HEADER_SIZE + length
        if end > n:
            msg = f"record payload truncated: {n - o - RECORD_HEADER_SIZE} of {length} bytes"
            return o, CorruptRecord(msg, o), "truncated", last_crc
        actual = crc32c(mv[o + 8 : end], crc32c(mv[o : o + 4]))
        if actual != crc:
            return o, CorruptRecord(f"CRC32C mismatch: stored {crc:#010x}, computed {actual:#010x}", o), "corrupt", last_crc
        if expect is not None and index != expect:
            return o, CorruptRecord(f"index discontinuity: expected {expect}, found {index} (§5.3)", o), "corrupt", last_crc
        if term < prev_term:
            return o, CorruptRecord(f"term {term} decreases from {prev_term} (§5.3)", o), "corrupt", last_crc
        sink.append((o, term, index, kind, length))
        prev_term = term
        expect = index + 1
        last_crc = crc
        o = end
    return o, None, None, last_crc


def decode_entries(buf: Buffer, expected_first_index: int | None = None) -> list[EntryTuple]:
    """Parse a whole batch back into ``(term, index, kind, payload)`` tuples.

    Every record is validated (see the module docstring); any problem, including
    trailing bytes that do not form a whole record, raises
    `raftx.errors.CorruptRecord` whose ``offset`` is where the bad record starts.
    ``expected_first_index``, when given, must be the first record's index.
    """
    if expected_first_index is not None:
        expected_first_index = _check_u64("expected_first_index", expected_first_index)
    mv = _as_bytes_view(buf)
    found: list[tuple[int, int, int, int, int]] = []
    _, error, _, _ = _walk(mv, 0, expected_first_index, found)
    if error is not None:
        raise error
    out = []
    for o, term, index, kind, length in found:
        p = o + RECORD_HEADER_SIZE
        out.append((term, index, kind, bytes(mv[p : p + length])))
    return out


def scan_records(buf: Buffer, start: int = 0, expected_first_index: int | None = None) -> ScanResult:
    """Walk the valid prefix of ``buf`` from byte ``start`` without copying payloads.

    Used by storage recovery and to build the log index. Never raises for bad data:
    the first invalid or incomplete record ends the scan and is reported in
    ``ScanResult.error`` / ``error_kind``. Raises `raftx.errors.CodecError` only for a
    ``start`` outside ``0..len(buf)``.
    """
    if expected_first_index is not None:
        expected_first_index = _check_u64("expected_first_index", expected_first_index)
    mv = _as_bytes_view(buf)
    start = operator.index(start)
    if not 0 <= start <= len(mv):
        raise CodecError(f"start {start} is outside the buffer (0..{len(mv)})")
    found: list[tuple[int, int, int, int, int]] = []
    end, error, error_kind, last_crc = _walk(mv, start, expected_first_index, found)
    terms = array("Q", [f[1] for f in found])
    offsets = array("Q", [f[0] for f in found])
    lengths = array("I", [RECORD_HEADER_SIZE + f[4] for f in found])
    first: int | None = found[0][2] if found else None
    last: int | None = found[-1][2] if found else None
    if error is not None:
        logger.debug("scan_records stopped at offset %d (%s): %s", end, error_kind, error)
    return ScanResult(len(found), first, last, end, terms, offsets, lengths, error, error_kind, last_crc)


# -- fields of validated records -------------------------------------------------------

_KIND_AT = 24  # byte offset of ``kind`` in the record header
_CRC_AT = 4  # byte offset of ``crc`` in the record header


def _is_frozen_view(data: Any) -> bool:
    """``data`` is a flat read-only `memoryview` of a ``bytes`` object: its bytes can
    never change, so it is trusted like the ``bytes`` itself (no copy). A received
    AppendEntries batch is such a view into its frame."""
    return (type(data) is memoryview and data.readonly and type(data.obj) is bytes
            and data.c_contiguous and data.format == "B" and data.ndim == 1)


def _trusted_bytes(data: Buffer) -> bytes | memoryview:
    """``data`` itself when it is ``bytes`` or a frozen view of one (`_is_frozen_view`);
    one ``bytes`` copy of any other buffer, so the records read cannot change underneath."""
    if isinstance(data, bytes) and type(data) is bytes:
        return data
    if isinstance(data, memoryview) and _is_frozen_view(data):
        return data
    return _as_bytes_view(data).tobytes()


def record_kinds(data: Buffer, offsets: Sequence[int]) -> bytes:
    """The ``kind`` byte of the record at each of ``offsets`` in ``data``, in order
    (``len(offsets)`` bytes).

    For records already validated, e.g. by `scan_records` (whose ``offsets`` these
    are): no CRC is checked and the kinds are returned as stored. Raises
    `raftx.errors.CodecError` if a record header (`RECORD_HEADER_SIZE` bytes from
    an offset) does not lie inside ``data``. ``data`` is any contiguous bytes-like
    object; ``offsets`` any sequence of ints.
    """
    buf = _trusted_bytes(data)
    n = len(offsets)
    if n == 0:
        return b""
    limit = len(buf) - RECORD_HEADER_SIZE  # the last offset a whole header fits at
    first, last = offsets[0], offsets[-1]
    step = (last - first) // (n - 1) if n > 1 else 1
    if step > 0 and isinstance(offsets, array) and offsets == array(offsets.typecode, range(first, last + 1, step)):
        # equally spaced (equal-sized records, the common case): one strided slice
        if first < 0 or last > limit:
            raise CodecError(f"record header at offset {first if first < 0 else last} is outside the buffer "
                             f"of {len(buf)} bytes")
        return bytes(buf[first + _KIND_AT : last + _KIND_AT + 1 : step])
    at = list(map(_KIND_AT.__add__, offsets))
    lo, hi = min(at) - _KIND_AT, max(at) - _KIND_AT
    if lo < 0 or hi > limit:
        raise CodecError(f"record header at offset {lo if lo < 0 else hi} is outside the buffer of {len(buf)} bytes")
    return bytes(map(buf.__getitem__, at))


def record_payloads(data: Buffer, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
    """The payload of each record of ``data``, in order: record ``i`` is
    ``data[offsets[i] : offsets[i] + lengths[i]]`` (header included in the length),
    its payload what follows the `RECORD_HEADER_SIZE`-byte header.

    For records already validated, e.g. by `scan_records` (whose ``offsets`` and
    ``lengths`` these are): no CRC is checked and the header's ``payload_length`` is
    not read. Raises `raftx.errors.CodecError` if ``len(offsets) != len(lengths)``,
    a length is below `RECORD_HEADER_SIZE` or a record does not lie inside ``data``.
    ``data`` is any contiguous bytes-like object; ``offsets`` and ``lengths`` any
    sequences of ints. The payloads are ``bytes`` copies.
    """
    buf = _trusted_bytes(data)
    if len(offsets) != len(lengths):
        raise CodecError(f"{len(offsets)} offsets but {len(lengths)} lengths")
    if len(offsets) == 0:
        return []
    if min(lengths) < RECORD_HEADER_SIZE:
        raise CodecError(f"record length {min(lengths)} is below the header size {RECORD_HEADER_SIZE}")
    ends = list(map(operator.add, offsets, lengths))
    if min(offsets) < 0 or max(ends) > len(buf):
        pos = next(i for i, (o, e) in enumerate(zip(offsets, ends)) if o < 0 or e > len(buf))
        raise CodecError(
            f"record {pos} at offset {offsets[pos]} of {lengths[pos]} bytes is outside the buffer of {len(buf)} bytes")
    starts = map(RECORD_HEADER_SIZE.__add__, offsets)
    parts: Iterable[Any] = map(buf.__getitem__, map(slice, starts, ends))
    return list(parts) if type(buf) is bytes else list(map(bytes, parts))


def record_crc(data: Buffer, offset: int = 0) -> int:
    """The CRC-32C stored in the header of the record at byte ``offset`` of ``data``
    (as written by `encode_entries`; not recomputed, not checked).

    For records already validated, e.g. the last one of a batch a segment's checksum
    chain continues from (R1). Only the header must lie in ``data``: a buffer of just
    the `RECORD_HEADER_SIZE` header bytes will do. Raises `raftx.errors.CodecError`
    if it does not.
    """
    offset = operator.index(offset)
    mv = _as_bytes_view(data)
    if not 0 <= offset <= len(mv) - RECORD_HEADER_SIZE:
        raise CodecError(f"record header at offset {offset} is outside the buffer of {len(mv)} bytes")
    return int(_LEN.unpack_from(mv, offset + _CRC_AT)[0])


# -- network frames -----------------------------------------------------------------


def encode_frame(frame_type: int, payload: Buffer) -> bytes:
    """One network frame: u32 little-endian payload length, u8 ``frame_type``, payload."""
    frame_type = operator.index(frame_type)
    if not 0 <= frame_type <= 0xFF:
        raise CodecError(f"frame_type {frame_type} is outside u8")
    mv = _as_bytes_view(payload)
    if len(mv) > MAX_FRAME_SIZE_LIMIT:
        raise CodecError(f"frame payload of {len(mv)} bytes does not fit a u32 length")
    return _FRAME.pack(len(mv), frame_type) + mv.tobytes()


class FrameDecoder:
    """Incremental decoder for a stream of frames (see the module docstring).

    ``feed(data)`` returns every frame completed by ``data`` as ``(frame_type,
    payload)``, keeping a partial frame buffered for the next call. A declared length
    above ``max_frame_size`` raises `raftx.errors.ProtocolError` as soon as its header
    is complete, before the body is buffered (DESIGN §2 rule 8); the decoder then stays
    failed and every later ``feed`` raises too (frames already completed earlier in the
    failing call are dropped: the connection is to be closed).
    """

    __slots__ = ("max_frame_size", "_buf", "_error")

    def __init__(self, max_frame_size: int) -> None:
        max_frame_size = operator.index(max_frame_size)
        if not 0 <= max_frame_size <= MAX_FRAME_SIZE_LIMIT:
            raise CodecError(f"max_frame_size {max_frame_size} is outside 0..{MAX_FRAME_SIZE_LIMIT}")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._error: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held for the next `feed`."""
        return len(self._buf)

    @property
    def failed(self) -> bool:
        """True once the decoder has rejected the stream."""
        return self._error is not None

    def _fail(self, length: int) -> ProtocolError:
        self._error = f"frame length {length} exceeds max_frame_size {self.max_frame_size}"
        self._buf = bytearray()
        logger.debug("FrameDecoder: %s", self._error)
        return ProtocolError(self._error)

    def feed(self, data: Buffer) -> list[tuple[int, bytes]]:
        """Consume ``data``; return the frames it completed, in order."""
        if self._error is not None:
            raise ProtocolError(f"frame decoder already failed: {self._error}")
        mv = _as_bytes_view(data)
        frames: list[tuple[int, bytes]] = []
        buf = self._buf
        if buf:
            # Complete the pending frame from the front of ``data``.
            if len(buf) < FRAME_HEADER_SIZE:
                take = FRAME_HEADER_SIZE - len(buf)
                buf += mv[:take]
                mv = mv[take:]
                if len(buf) < FRAME_HEADER_SIZE:
                    return frames
                length = _LEN.unpack_from(buf, 0)[0]
                if length > self.max_frame_size:
                    raise self._fail(length)
            length, frame_type = _FRAME.unpack_from(buf, 0)
            take = FRAME_HEADER_SIZE + length - len(buf)
            buf += mv[:take]
            mv = mv[take:]
            if len(buf) < FRAME_HEADER_SIZE + length:
                return frames
            frames.append((frame_type, bytes(buf[FRAME_HEADER_SIZE:])))
            buf.clear()
        # Whole frames straight from ``data``, then buffer the remainder.
        n = len(mv)
        o = 0
        limit = self.max_frame_size
        unpack_from = _FRAME.unpack_from
        while n - o >= FRAME_HEADER_SIZE:
            length, frame_type = unpack_from(mv, o)
            if length > limit:
                raise self._fail(length)
            end = o + FRAME_HEADER_SIZE + length
            if end > n:
                break
            frames.append((frame_type, mv[o + FRAME_HEADER_SIZE : end].tobytes()))
            o = end
        if o < n:
            buf += mv[o:]
        return frames

