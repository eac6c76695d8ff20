"""Entry batches as the runtime moves them: encoded once, never rebuilt per entry.

* `BatchEntries` gives an `raftx.storage.EncodedBatch` (bytes received from the
  leader, already CRC-checked) the small `raftx.messages.LogEntries` surface the
  engine needs, so a follower hands the received bytes to its log store as they
  are (DESIGN §2 rule 3) without building one `Entry` per record.
* `encode_for_store` turns whatever an `AppendToLog` command carries (the leader's
  `PayloadBatch`, a `BatchEntries`, an `EntryList`) into what the store appends.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Any, Sequence, cast

from raftx import _core
from raftx.messages import EntryList, LogEntries, PayloadBatch
from raftx.storage.batch import EncodedBatch
from raftx.types import Entry, EntryKind, LogId, Membership

__all__ = ["BatchEntries", "as_engine_entries", "encode_for_store", "encode_payloads"]

_BYTES = {bytes}


class BatchEntries:
    """`raftx.messages.LogEntries` over a validated `EncodedBatch` (immutable)."""

    __slots__ = ("batch", "_memberships")

    def __init__(self, batch: EncodedBatch) -> None:
        self.batch = batch
        self._memberships: list[tuple[LogId, Membership]] | None = None

    def __len__(self) -> int:
        return len(self.batch.terms)

    def __repr__(self) -> str:
        return f"BatchEntries({self.batch!r})"

    def log_id_at(self, pos: int) -> LogId:
        """The log id of the entry at position ``pos`` (IndexError outside the batch)."""
        b = self.batch
        if not 0 <= pos < len(b.terms):
            raise IndexError(pos)
        return LogId(b.terms[pos], b.first_index + pos)

    def term_runs(self) -> list[tuple[int, int]]:
        """``(first_index, term)`` for each run of equal terms, in log order."""
        terms = self.batch.terms
        if not terms:
            return []
        first = self.batch.first_index
        if terms[0] == terms[-1]:  # terms never decrease (§5.3): one run
            return [(first, terms[0])]
        runs: list[tuple[int, int]] = []
        last = -1
        for p, t in enumerate(terms):
            if t != last:
                runs.append((first + p, t))
                last = t
        return runs

    def memberships(self) -> list[tuple[LogId, Membership]]:
        """The membership entries of the batch, in log order (thesis §4.3); computed once."""
        if self._memberships is None:
            b = self.batch
            found: list[tuple[LogId, Membership]] = []
            kinds = _core.codec.record_kinds(b.data, b.offsets)  # no CRC check: validated on receipt
            p = kinds.find(EntryKind.MEMBERSHIP)
            while p >= 0:
                off = b.offsets[p]
                rec = _core.codec.decode_entries(b.data[off : off + b.lengths[p]], b.first_index + p)[0]
                entry = Entry.from_record(*rec)
                found.append((entry.log_id, entry.payload))  # type: ignore[arg-type]
                p = kinds.find(EntryKind.MEMBERSHIP, p + 1)
            self._memberships = found
        return self._memberships

    def sliced(self, start: int) -> BatchEntries:
        """The same batch without its first ``start`` entries."""
        b = self.batch
        return BatchEntries(b.slice(b.first_index + start, b.last_index + 1))

    def entries(self) -> list[Entry]:
        """The batch decoded as `Entry` objects."""
        return self.batch.entries()


def as_engine_entries(entries: Any) -> Any:
    """Entries of an incoming AppendEntries as the engine wants them.

    An `EncodedBatch` is wrapped in `BatchEntries`; anything else is left to
    `raftx.messages.AppendEntriesRequest.validate` (which checks it).
    """
    if isinstance(entries, EncodedBatch):
        return BatchEntries(entries)
    return entries


def encode_payloads(batch: PayloadBatch) -> EncodedBatch:
    """Encode a leader's `PayloadBatch` once (DESIGN §2 rule 3), without re-scanning it.

    The record layout is fixed (`_core.codec`: a header then the payload), so the
    offsets and lengths follow from the payload sizes; `encode_entries` has checked
    every field.
    """
    term, first = batch.term, batch.first_index
    payloads = batch.payloads
    n = len(payloads)
    if set(map(type, payloads)) == _BYTES:  # client writes only: one C call
        data, offsets, lengths = _core.codec.encode_normal(term, first, cast("Sequence[bytes]", payloads))
        return EncodedBatch(data, first, array("Q", [term]) * n, offsets, lengths)
    records = [(term, first + p, *Entry.payload_record(x)) for p, x in enumerate(payloads)]
    data = _core.codec.encode_entries(records)
    header = _core.codec.RECORD_HEADER_SIZE
    lengths = array("I", [header + len(r[3]) for r in records])
    offsets = array("Q", accumulate(lengths, initial=0))
    offsets.pop()
    return EncodedBatch(data, first, array("Q", [term]) * n, offsets, lengths)


def encode_for_store(entries: LogEntries) -> EncodedBatch | Sequence[Entry]:
    """What to pass to `raftx.storage.RaftLogStorage.append` for an `AppendToLog`."""
    if isinstance(entries, BatchEntries):
        return entries.batch
    if isinstance(entries, PayloadBatch):
        return encode_payloads(entries)
    if isinstance(entries, EntryList):
        return list(entries.entries)
    raise TypeError(f"cannot store entries of type {type(entries).__name__}")
