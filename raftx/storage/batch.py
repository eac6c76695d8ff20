"""`as_batch`: what a log store's ``append`` accepts, checked and encoded once.

`EncodedBatch` itself lives in `raftx.records` (the one home of the byte format,
shared with the network and the runtime); it is re-exported here and from
`raftx.storage` for the stores and their users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from raftx.records import EncodedBatch
from raftx.types import Entry, LogId, Membership

__all__ = ["EncodedBatch", "as_batch"]


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
