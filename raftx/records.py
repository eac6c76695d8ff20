"""The one home of raftx's byte formats above `raftx._core.codec`: entry batches and snapshot metas.

`raftx._core.codec` owns the record layout (header, CRC-32C, validation; its twins,
stub and golden vectors are the only code that reads a record's bytes). This module
is what the rest of raftx holds those bytes in, shared by storage, the network and
the runtime without any of them importing another:

* `EncodedBatch`: consecutive log entries as one codec buffer, encoded once on the
  leader (DESIGN §2 rule 3): the same bytes are written to the segment file, sent to
  every follower (who validates them on receipt and writes them as they are) and
  kept in the log cache. It also has the engine's `raftx.messages.LogEntries`
  surface, so a received batch reaches the engine and the store without one Python
  object per entry.
* `encode_entries_batch`: the one way a not-yet-encoded `raftx.types.EntryRange`
  (a leader's group commit, or entries built by a test) becomes an `EncodedBatch`.
* `encode_meta` / `decode_meta`: a `raftx.types.SnapshotMeta` as bytes (snapshot
  file headers, InstallSnapshot chunks); `log_id_to_list` / `log_id_from_list`: a
  log id in raftx's small msgpack records.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import Any, Union, cast

import msgpack

from raftx import _core
from raftx.errors import StorageCorrupted
from raftx.types import Entry, EntryKind, EntryRange, LogId, Membership, SnapshotMeta, StoredMembership, term_runs

__all__ = [
    "Buffer",
    "EncodedBatch",
    "decode_meta",
    "encode_entries_batch",
    "encode_meta",
    "log_id_from_list",
    "log_id_to_list",
]

#: What an `EncodedBatch` holds its records in: ``bytes``, or a read-only view of a
#: ``bytes`` object (a received frame, kept without a copy).
Buffer = Union[bytes, memoryview]

_BYTES = {bytes}


def _frozen(data: Any) -> bytes | memoryview:
    """``data`` if its bytes can never change (``bytes``, or a flat read-only view of
    ``bytes``), else a ``bytes`` copy: validated records must stay as validated."""
    if type(data) is bytes:
        return data
    if (type(data) is memoryview and data.readonly and type(data.obj) is bytes and data.c_contiguous
            and data.format == "B" and data.ndim == 1):
        return data
    return bytes(data)


class EncodedBatch:
    """Consecutive log entries as one `_core.codec` buffer.

    ``data`` holds ``len(self)`` records for indexes ``first_index..last_index``
    (``bytes``, or a read-only `memoryview` of ``bytes``: a batch received in a frame
    is kept as a view into it); ``terms[i]``, ``offsets[i]`` and ``lengths[i]``
    describe record ``i``. Build one with `from_entries` (encodes), `from_bytes`
    (validates bytes from disk or the network; raises `raftx.errors.CorruptRecord`)
    or `encode_entries_batch`. Instances are immutable.

    It is also `raftx.messages.LogEntries` (``log_id_at``, ``term_runs``,
    ``memberships``, ``sliced``): the engine reads a received batch as it is.
    """

    __slots__ = ("data", "first_index", "terms", "offsets", "lengths", "_memberships")

    def __init__(self, data: Buffer, first_index: int, terms: array[int], offsets: array[int],
                 lengths: array[int]) -> None:
        self.data = data
        self.first_index = first_index
        self.terms = terms
        self.offsets = offsets
        self.lengths = lengths
        self._memberships: list[tuple[LogId, Membership]] | None = None

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Sequence[Entry]) -> EncodedBatch:
        """Encode ``entries`` (consecutive indexes, non-decreasing terms, §5.3).

        Raises `raftx.errors.CodecError` for entries the codec refuses.
        """
        data = _core.codec.encode_entries([e.to_record() for e in entries])
        return cls._scan_trusted(data, entries[0].log_id.index if entries else 0)

    @classmethod
    def from_bytes(cls, data: Any, expected_first_index: int | None = None) -> EncodedBatch:
        """Validate a buffer of records (every CRC, continuity, term order).

        ``bytes`` and read-only views of ``bytes`` are kept as they are (no copy); any
        other buffer is copied once first. Raises `raftx.errors.CorruptRecord` (with the
        byte offset) if any record is bad or incomplete; an empty buffer gives an empty
        batch.
        """
        data = _frozen(data)
        scan = _core.codec.scan_records(data, 0, expected_first_index)
        if scan.error is not None:
            raise scan.error
        first = scan.first_index if scan.first_index is not None else (expected_first_index or 0)
        return cls(data, first, scan.terms, scan.offsets, scan.lengths)

    @classmethod
    def _scan_trusted(cls, data: bytes, first_index: int) -> EncodedBatch:
        scan = _core.codec.scan_records(data, 0, first_index if data else None)
        if scan.error is not None:  # pragma: no cover - encode_entries output always scans
            raise scan.error
        return cls(data, first_index, scan.terms, scan.offsets, scan.lengths)

    @classmethod
    def empty(cls, first_index: int = 0) -> EncodedBatch:
        """A batch of no entries (at ``first_index``)."""
        return cls(b"", first_index, array("Q"), array("Q"), array("I"))

    # -- views --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.terms)

    def __bool__(self) -> bool:
        return len(self.terms) > 0

    def __repr__(self) -> str:
        return f"EncodedBatch({len(self)} entries from {self.first_index}, {len(self.data)} bytes)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncodedBatch):
            return NotImplemented
        return self.data == other.data and (self.first_index == other.first_index or not self.data)

    __hash__ = None  # type: ignore[assignment]

    @property
    def last_index(self) -> int:
        """Index of the last entry (``first_index - 1`` when empty)."""
        return self.first_index + len(self.terms) - 1

    @property
    def last_log_id(self) -> LogId | None:
        """Id of the last entry, or ``None`` when empty."""
        if not self.terms:
            return None
        return LogId(self.terms[-1], self.last_index)

    @property
    def last_crc(self) -> int | None:
        """The stored CRC-32C of the last record (what a segment's checksum chain
        continues from, R1), or ``None`` when empty."""
        if not self.terms:
            return None
        return _core.codec.record_crc(self.data, self.offsets[-1])

    def log_ids(self) -> list[LogId]:
        """The ids of all entries, in order."""
        first = self.first_index
        return [LogId(t, first + i) for i, t in enumerate(self.terms)]

    def entries(self) -> list[Entry]:
        """Decode every entry (validating each record again)."""
        recs = _core.codec.decode_entries(self.data, self.first_index if self.data else None)
        return [Entry.from_record(*r) for r in recs]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def slice(self, start: int, stop: int) -> EncodedBatch:
        """The entries with ``start <= index < stop`` (clamped), sharing no state."""
        lo = max(start, self.first_index) - self.first_index
        hi = min(stop, self.last_index + 1) - self.first_index
        if hi <= lo:
            return EncodedBatch.empty(max(start, self.first_index))
        base = self.offsets[lo]
        end = self.offsets[hi - 1] + self.lengths[hi - 1]
        offsets = self.offsets[lo:hi]
        if base:
            offsets = array("Q", map(base.__rsub__, offsets))
        return EncodedBatch(self.data[base:end], self.first_index + lo, self.terms[lo:hi], offsets, self.lengths[lo:hi])

    @classmethod
    def concat(cls, parts: Sequence[EncodedBatch]) -> EncodedBatch:
        """Join consecutive batches (the caller guarantees continuity)."""
        parts = [p for p in parts if p]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        terms, offsets, lengths = array("Q"), array("Q"), array("I")
        base = 0
        for p in parts:
            terms.extend(p.terms)
            offsets.extend(o + base for o in p.offsets)
            lengths.extend(p.lengths)
            base += len(p.data)
        return cls(b"".join(p.data for p in parts), parts[0].first_index, terms, offsets, lengths)

    # -- raftx.messages.LogEntries -----------------------------------------------------

    def log_id_at(self, pos: int) -> LogId:
        """The log id of the entry at position ``pos`` (IndexError outside the batch)."""
        if not 0 <= pos < len(self.terms):
            raise IndexError(pos)
        return LogId(self.terms[pos], self.first_index + pos)

    def term_runs(self) -> list[tuple[int, int]]:
        """``(first_index, term)`` for each run of equal terms, in log order."""
        return term_runs(self.first_index, self.terms)

    def memberships(self) -> list[tuple[LogId, Membership]]:
        """The membership entries of the batch, in log order (thesis §4.3); computed once."""
        if self._memberships is None:
            found: list[tuple[LogId, Membership]] = []
            kinds = _core.codec.record_kinds(self.data, self.offsets)  # no CRC check: validated on receipt
            p = kinds.find(EntryKind.MEMBERSHIP)
            while p >= 0:
                raw = _core.codec.record_payloads(self.data, self.offsets[p : p + 1], self.lengths[p : p + 1])[0]
                entry = Entry.from_record(self.terms[p], self.first_index + p, EntryKind.MEMBERSHIP, raw)
                found.append((entry.log_id, entry.payload))  # type: ignore[arg-type]
                p = kinds.find(EntryKind.MEMBERSHIP, p + 1)
            self._memberships = found
        return self._memberships

    def sliced(self, start: int) -> EncodedBatch:
        """The same batch without its first ``start`` entries."""
        return self.slice(self.first_index + start, self.last_index + 1)


def encode_entries_batch(entries: EntryRange) -> EncodedBatch:
    """Encode a not-yet-encoded `EntryRange` once (DESIGN §2 rule 3).

    A leader's group commit of client writes (one term, ``bytes`` payloads) takes one
    `_core.codec.encode_normal` call and reuses the range's ``terms``; anything else
    (blank or membership entries, several terms) goes through `encode_entries`.
    Raises `raftx.errors.CodecError` for entries the codec refuses.
    """
    terms, first, payloads = entries.terms, entries.first_index, entries.payloads
    n = len(payloads)
    if n and terms[0] == terms[-1] and set(map(type, payloads)) == _BYTES:  # client writes only: one C call
        data, offsets, lengths = _core.codec.encode_normal(terms[0], first, cast("Sequence[bytes]", payloads))
        t = terms if isinstance(terms, array) and terms.typecode == "Q" else array("Q", terms)
        return EncodedBatch(data, first, t, offsets, lengths)
    records = [(t, first + p, *Entry.payload_record(x)) for p, (t, x) in enumerate(zip(terms, payloads))]
    return EncodedBatch._scan_trusted(_core.codec.encode_entries(records), first)


# -- snapshot metas ---------------------------------------------------------------------


def log_id_to_list(log_id: LogId | None) -> list[int] | None:
    """``[term, index]`` (or None): how raftx's small msgpack records store a log id."""
    return None if log_id is None else [log_id.term, log_id.index]


def log_id_from_list(v: Any) -> LogId | None:
    """Inverse of `log_id_to_list` (TypeError/ValueError/IndexError if malformed)."""
    return None if v is None else LogId(int(v[0]), int(v[1]))


def encode_meta(meta: SnapshotMeta) -> bytes:
    """``meta`` as msgpack (the header of a snapshot file, and of each InstallSnapshot chunk)."""
    m = meta.last_membership
    data: bytes = msgpack.packb(
        [log_id_to_list(meta.last_log_id), log_id_to_list(m.log_id), m.membership.to_bytes(), meta.snapshot_id],
        use_bin_type=True,
    )
    return data


def decode_meta(data: bytes) -> SnapshotMeta:
    """Inverse of `encode_meta`; raises `StorageCorrupted` for malformed bytes."""
    try:
        last, mem_id, mem, sid = msgpack.unpackb(data, raw=False)
        membership = StoredMembership(log_id_from_list(mem_id), Membership.from_bytes(mem))
        return SnapshotMeta(log_id_from_list(last), membership, str(sid))
    except Exception as exc:  # msgpack/ValueError/TypeError/ProtocolError: all "malformed"
        raise StorageCorrupted(f"malformed snapshot meta: {exc}") from exc
