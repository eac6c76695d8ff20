"""Entry batches as the runtime moves them: encoded once, never rebuilt per entry.

A batch has two forms (`raftx.records`): an `raftx.records.EncodedBatch` (records
received from the leader, already CRC-checked, or encoded here) and a not-yet-encoded
`raftx.types.EntryRange` (the engine's `raftx.messages.PayloadBatch` of a leader's
group commit, or entries a caller built). Both are the engine's
`raftx.messages.LogEntries`, so a follower hands the received bytes to its log store
as they are (DESIGN §2 rule 3) without building one `Entry` per record.
`encode_for_store` turns what an `AppendToLog` command carries into what the store
appends.
"""

from __future__ import annotations

from typing import Any, Sequence

from raftx.messages import LogEntries, PayloadBatch
from raftx.records import EncodedBatch, encode_entries_batch
from raftx.types import Entry, EntryRange

__all__ = ["BatchEntries", "as_engine_entries", "encode_for_store", "encode_payloads"]


def BatchEntries(batch: EncodedBatch) -> EncodedBatch:  # noqa: N802 - the old class name
    """Deprecated: an `EncodedBatch` is `raftx.messages.LogEntries` itself; returns ``batch``."""
    return batch


def as_engine_entries(entries: Any) -> Any:
    """Entries of an incoming AppendEntries as the engine wants them: as they are (an
    `EncodedBatch` is `LogEntries`; anything else is checked by
    `raftx.messages.AppendEntriesRequest.validate`)."""
    return entries


def encode_payloads(batch: EntryRange) -> EncodedBatch:
    """Encode a leader's batch once (DESIGN §2 rule 3); `raftx.records.encode_entries_batch`."""
    return encode_entries_batch(batch)


def encode_for_store(entries: LogEntries) -> EncodedBatch | Sequence[Entry]:
    """What to pass to `raftx.storage.RaftLogStorage.append` for an `AppendToLog`.

    A leader's `PayloadBatch` is encoded here (its payloads come from the engine);
    any other `EntryRange` goes to the store as the sequence of `Entry` it is, which
    the store checks and encodes (`raftx.storage.as_batch`).
    """
    if isinstance(entries, EncodedBatch):
        return entries
    if isinstance(entries, PayloadBatch):
        return encode_entries_batch(entries)
    if isinstance(entries, EntryRange):
        return entries
    raise TypeError(f"cannot store entries of type {type(entries).__name__}")
