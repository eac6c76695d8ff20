"""`LogCache`: the node's most recent log entries, as the bytes it encoded or received.

DESIGN §2 rule 3 ("encode once"): the leader encodes a client batch once; the same
`raftx.storage.EncodedBatch` goes to the log store, onto the wire to every follower
and, with the payloads it was built from, to the state machine. A follower keeps the
CRC-checked batch it received the same way for its own apply. Without this cache
the replicators and the apply worker would read back from the store what the node
wrote a moment ago (a ``pread``, a CRC scan and a decode per entry, per reader).

The cache mirrors the engine's accepted log: the core task puts every
`raftx.engine.AppendToLog` batch into it and cuts it on `TruncateLog` (§5.3
conflicting suffix) and `InstallSnapshot` (§7), in command order, so whatever it
holds is exactly what the store holds (or will hold once the write lands) at those
indexes. It is bounded (bytes and batches; oldest dropped first) and a miss is
not an error: the caller reads the store as before.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

from raftx import _core
from raftx.storage.batch import EncodedBatch
from raftx.types import Entry, EntryKind, EntryRange

__all__ = ["LogCache"]


_NORMAL = int(EntryKind.NORMAL)
#: ``kinds.translate(_NOT_NORMAL)``: 0 for a NORMAL record, 1 for any other kind.
_NOT_NORMAL = bytes(0 if k == _NORMAL else 1 for k in range(256))


def _payloads(batch: EncodedBatch, lo: int = 0, hi: int | None = None) -> list[Any]:
    """The payloads (`Entry.payload`) of the records ``lo <= i < hi`` of ``batch``
    (all by default).

    The records were CRC-checked when received (`EncodedBatch.from_bytes`) or
    encoded here, so they are sliced out by their offsets, not decoded again.
    """
    codec = _core.codec
    data, offsets, lengths = batch.data, batch.offsets, batch.lengths
    if hi is None:
        hi = len(offsets)
    if (lo, hi) != (0, len(offsets)):  # only the records asked for: no copy of the rest
        offsets, lengths = offsets[lo:hi], lengths[lo:hi]
    kinds = codec.record_kinds(data, offsets)
    payloads: list[Any] = codec.record_payloads(data, offsets, lengths)
    if kinds.count(_NORMAL) == len(kinds):  # client entries only: the bytes are the payloads
        return payloads
    # the few others (a leader's blank entry, a membership change), found at C speed
    marks = kinds.translate(_NOT_NORMAL)
    p = marks.find(1)
    while p >= 0:
        payloads[p] = Entry.from_record(batch.terms[lo + p], batch.first_index + lo + p, kinds[p], payloads[p]).payload
        p = marks.find(1, p + 1)
    return payloads


class _Chunk:
    """One cached batch: its encoded records and, on the leader, the payloads."""

    __slots__ = ("batch", "first", "last", "payloads")

    def __init__(self, batch: EncodedBatch, payloads: Sequence[Any] | None) -> None:
        self.batch = batch
        self.first = batch.first_index
        self.last = batch.first_index + len(batch.terms) - 1
        #: ``None`` (blank), bytes or a `Membership` per entry; None: decode ``batch``.
        self.payloads = payloads


class LogCache:
    """Consecutive recent log batches (see the module docstring).

    ``max_bytes`` bounds the encoded bytes held; ``max_batches`` the number of
    batches. Both only bound memory: an evicted range is read from the store.
    """

    __slots__ = ("_chunks", "_bytes", "max_bytes", "max_batches", "hits", "misses")

    def __init__(self, max_bytes: int = 32 << 20, max_batches: int = 1024) -> None:
        self._chunks: deque[_Chunk] = deque()
        self._bytes = 0
        self.max_bytes = max_bytes
        self.max_batches = max_batches
        #: Lookups served / not served (for tests and profiling).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """The number of entries held."""
        c = self._chunks
        return 0 if not c else c[-1].last - c[0].first + 1

    @property
    def first_index(self) -> int:
        """The first index held (-1 when empty)."""
        return self._chunks[0].first if self._chunks else -1

    @property
    def last_index(self) -> int:
        """The last index held (-1 when empty)."""
        return self._chunks[-1].last if self._chunks else -1

    # -- mirroring the log -----------------------------------------------------------

    def append(self, batch: EncodedBatch, payloads: Sequence[Any] | None = None) -> None:
        """Add ``batch`` (the entries after the last held one; otherwise the cache
        restarts from it). ``payloads``, if given, are the entries' payloads."""
        if not batch.terms:
            return
        chunks = self._chunks
        if chunks and chunks[-1].last + 1 != batch.first_index:
            self.clear()
        chunks.append(_Chunk(batch, payloads))
        self._bytes += len(batch.data)
        while len(chunks) > 1 and (self._bytes > self.max_bytes or len(chunks) > self.max_batches):
            self._bytes -= len(chunks.popleft().batch.data)

    def truncate_after(self, index: int) -> None:
        """Forget every entry after ``index`` (§5.3: a conflicting suffix was removed)."""
        chunks = self._chunks
        while chunks and chunks[-1].first > index:
            self._bytes -= len(chunks.pop().batch.data)
        if chunks and chunks[-1].last > index:
            old = chunks.pop()
            self._bytes -= len(old.batch.data)
            cut = old.batch.slice(old.first, index + 1)
            payloads = None if old.payloads is None else old.payloads[: index + 1 - old.first]
            chunks.append(_Chunk(cut, payloads))
            self._bytes += len(cut.data)

    def clear(self) -> None:
        """Drop every cached batch."""
        self._chunks.clear()
        self._bytes = 0

    # -- reading -------------------------------------------------------------------

    def _covering(self, start: int, stop: int) -> list[_Chunk] | None:
        """The chunks holding ``[start, stop)``, or None if any index is missing."""
        chunks = self._chunks
        if stop <= start or not chunks or start < chunks[0].first or stop - 1 > chunks[-1].last:
            self.misses += 1
            return None
        self.hits += 1
        if chunks[-1].first <= start:  # the common case: the newest batch
            return [chunks[-1]]
        out: list[_Chunk] = []
        for ch in reversed(chunks):
            if ch.last < start:
                break
            if ch.first < stop:
                out.append(ch)
        out.reverse()
        return out

    def get_batch(self, start: int, stop: int) -> EncodedBatch | None:
        """The encoded entries ``start <= index < stop``, or None if not all held."""
        found = self._covering(start, stop)
        if found is None:
            return None
        parts = []
        for ch in found:
            b = ch.batch
            parts.append(b if ch.first >= start and ch.last < stop else b.slice(start, stop))
        return parts[0] if len(parts) == 1 else EncodedBatch.concat(parts)

    def get_entries(self, start: int, stop: int) -> EntryRange | None:
        """The entries ``start <= index < stop`` as an `EntryRange`, or None."""
        found = self._covering(start, stop)
        if found is None:
            return None
        terms: Any = None
        payloads: list[Any] = []
        for ch in found:
            lo, hi = max(start, ch.first) - ch.first, min(stop, ch.last + 1) - ch.first
            part = ch.batch.terms[lo:hi]
            terms = part if terms is None else terms + part
            if ch.payloads is not None:
                payloads += ch.payloads[lo:hi]
            else:
                payloads += _payloads(ch.batch, lo, hi)
        return EntryRange(start, terms, payloads)
