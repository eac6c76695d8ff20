"""`EncodedBatch`: log entries that travel as the bytes of `raftx._core.codec`.

An entry is encoded once, on the leader (DESIGN §2 rule 3): the same buffer is
written to the segment file and sent to followers, who validate it (CRC32C, index
continuity, §5.3 term order) and write it as it is. An `EncodedBatch` carries that
buffer plus what the runtime needs without decoding it: the first/last index, the
per-entry terms and the byte offset/length of each record inside the buffer.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence

from raftx import _core
from raftx.types import Entry, LogId, Membership

__all__ = ["EncodedBatch", "as_batch"]


class EncodedBatch:
    """Consecutive log entries as one `_core.codec` buffer.

    ``data`` holds ``len(self)`` records for indexes ``first_index..last_index``;
    ``terms[i]``, ``offsets[i]`` and ``lengths[i]`` describe record ``i``. Build one
    with `from_entries` (encodes) or `from_bytes` (validates bytes from disk or the
    network; raises `raftx.errors.CorruptRecord`). Instances are treated as immutable.
    """

    __slots__ = ("data", "first_index", "terms", "offsets", "lengths")

    def __init__(self, data: bytes, first_index: int, terms: array[int], offsets: array[int],
                 lengths: array[int]) -> None:
        self.data = data
        self.first_index = first_index
        self.terms = terms
        self.offsets = offsets
        self.lengths = lengths

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Sequence[Entry]) -> EncodedBatch:
        """Encode ``entries`` (consecutive indexes, non-decreasing terms, §5.3).

        Raises `raftx.errors.CodecError` for entries the codec refuses.
        """
        data = _core.codec.encode_entries([e.to_record() for e in entries])
        return cls._scan_trusted(data, entries[0].log_id.index if entries else 0)

    @classmethod
    def from_bytes(cls, data: bytes, expected_first_index: int | None = None) -> EncodedBatch:
        """Validate a buffer of records (every CRC, continuity, term order).

        Raises `raftx.errors.CorruptRecord` (with the byte offset) if any record is
        bad or incomplete; an empty buffer gives an empty batch.
        """
        data = bytes(data)
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
            return EncodedBatch(b"", max(start, self.first_index), array("Q"), array("Q"), array("I"))
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
            return cls(b"", 0, array("Q"), array("Q"), array("I"))
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


def as_batch(entries: Sequence[Entry] | EncodedBatch) -> EncodedBatch:
    """``entries`` as an `EncodedBatch` (encoding a sequence of `Entry` once).

    Raises `TypeError` for anything but an `EncodedBatch` or a sequence of `Entry`
    whose ids are `LogId` and payloads ``None``, bytes-like or a `Membership`, and
    `raftx.errors.CodecError` (a ValueError) for entries the codec refuses (not
    consecutive, a decreasing term, an oversized payload) -- before anything is stored.
    """
    if isinstance(entries, EncodedBatch):
        return entries
    if isinstance(entries, str | bytes | bytearray | memoryview) or not isinstance(entries, Sequence | Iterable):
        raise TypeError(f"entries must be a sequence of Entry or an EncodedBatch, not {type(entries).__name__}")
    items = list(entries)
    for k, e in enumerate(items):
        if not isinstance(e, Entry):
            raise TypeError(f"entries[{k}] is a {type(e).__name__}, not an Entry")
        if not isinstance(e.log_id, LogId):
            raise TypeError(f"entries[{k}].log_id is a {type(e.log_id).__name__}, not a LogId")
        p = e.payload
        if p is not None and not isinstance(p, bytes | bytearray | memoryview | Membership):
            # bytes(123) would store 123 zero bytes, bytes([1, 2]) b"\x01\x02": refuse instead
            raise TypeError(f"entries[{k}].payload is a {type(p).__name__}, not bytes, a Membership or None")
    return EncodedBatch.from_entries(items)
