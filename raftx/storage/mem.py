"""`MemLogStore`: the log store contract, in memory (tests, simulations, examples).

Same semantics as the durable stores except durability: a write is "durable" as
soon as it is applied, so the append callback fires before `append` returns.
Entries are kept as their encoded records (validated on every read, like a disk).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from raftx.storage.base import LogStoreBase, check_callback, check_log_id, check_vote, fire
from raftx.storage.batch import EncodedBatch
from raftx.storage.protocols import IOCallback
from raftx.types import Entry, LogId, Vote

__all__ = ["MemLogStore"]

logger = logging.getLogger(__name__)


class MemLogStore(LogStoreBase):
    """An in-memory `RaftLogStorage` (not durable; see module doc)."""

    def __init__(self) -> None:
        self._init_base()
        self._records: list[bytes] = []  # one encoded record per entry
        self._terms: list[int] = []
        self._first = 0  # index of _records[0]
        self._vote: Vote | None = None
        self._committed: LogId | None = None

    def _first_stored_index(self) -> int:
        return self._first

    async def save_vote(self, vote: Vote) -> None:
        """Keep ``vote`` (in memory: not durable)."""
        check_vote(vote)
        self._check()
        self._vote = vote

    async def read_vote(self) -> Vote | None:
        """The last saved vote, or None."""
        self._check()
        return self._vote

    async def save_committed(self, committed: LogId | None) -> None:
        """Keep the committed log id (in memory: not durable)."""
        check_log_id(committed, optional=True)
        self._check()
        self._committed = committed

    async def read_committed(self) -> LogId | None:
        """The last saved committed log id, or None."""
        self._check()
        return self._committed

    async def append(self, entries: Sequence[Entry] | EncodedBatch, callback: IOCallback | None = None) -> None:
        """Append ``entries`` (§5.3: no hole, terms never decrease); ``callback`` fires before return."""
        check_callback(callback)
        try:
            batch = self._prepare_append(entries)
        except BaseException as exc:
            fire(callback, exc)
            raise
        if batch:
            if self._last is None:
                self._records.clear()
                self._terms.clear()
                self._first = batch.first_index
            data = batch.data
            for o, n in zip(batch.offsets, batch.lengths):
                self._records.append(bytes(data[o : o + n]))
            self._terms.extend(batch.terms)
            self._last = batch.last_log_id
        fire(callback, None)

    async def truncate(self, since: int) -> None:
        """Delete every entry ``>= since`` (§5.3)."""
        point = self._truncation_point(since)
        if point is None:
            return
        since = point
        keep = max(0, since - self._first)
        del self._records[keep:]
        del self._terms[keep:]
        self._after_truncate(since, self._terms[-1] if self._terms else None)

    async def purge(self, log_id: LogId) -> None:
        """Delete every entry ``<= log_id.index`` and record the purge point (§7)."""
        if not self._check_purge(log_id):
            return
        drop = min(len(self._records), max(0, log_id.index + 1 - self._first))
        del self._records[:drop]
        del self._terms[:drop]
        self._first = log_id.index + 1 if not self._records else self._first + drop
        self._after_purge(log_id)

    async def close(self) -> None:
        """Mark the store closed; later calls raise `StorageError`."""
        self._closed = True

    async def _read_batch(self, lo: int, hi: int) -> EncodedBatch:
        data = b"".join(self._records[lo - self._first : hi - self._first])
        return EncodedBatch.from_bytes(data, lo)
