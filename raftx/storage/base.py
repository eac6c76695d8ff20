"""What every raftx log store shares: the log-shape checks, the failed state, the reader.

A concrete store keeps ``_purged`` (last purged id), ``_last`` (id of the last
stored entry, None when it holds none) up to date and implements
``_read_batch(lo, hi)`` for an already clamped, non-empty range.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from raftx.errors import StorageError
from raftx.storage.batch import EncodedBatch, as_batch
from raftx.storage.protocols import IOCallback, LogState, RaftLogReader, RaftLogStorage
from raftx.types import Entry, LogId, Vote

__all__ = ["LogReader", "LogStoreBase", "check_callback", "check_index", "check_log_id", "check_vote", "fire"]

logger = logging.getLogger(__name__)


def fire(callback: IOCallback | None, error: BaseException | None) -> None:
    """Call an append callback, logging (not propagating) its own exceptions."""
    if callback is None:
        return
    try:
        callback(error)
    except Exception:  # a buggy callback must not wedge the store
        logger.exception("append callback raised")


# -- argument checks: every public store method runs them before touching any state --


def check_vote(vote: object) -> Vote:
    """``vote`` if it is a `Vote`, else `TypeError` (``save_vote(None)`` would erase it, §5.2)."""
    if not isinstance(vote, Vote):
        raise TypeError(f"vote must be a Vote, not {type(vote).__name__}")
    return vote


def check_log_id(log_id: object, *, optional: bool = False) -> LogId | None:
    """``log_id`` if it is a `LogId` (or None when ``optional``), else `TypeError`."""
    if log_id is None and optional:
        return None
    if not isinstance(log_id, LogId):
        raise TypeError(f"expected a LogId{' or None' if optional else ''}, not {type(log_id).__name__}")
    return log_id


def check_index(index: object, what: str = "index") -> int:
    """``index`` if it is an int ``>= 0`` (not a bool): `TypeError` / `ValueError` otherwise."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError(f"{what} must be an int, not {type(index).__name__}")
    if index < 0:
        raise ValueError(f"{what} must be >= 0, not {index}")
    return index


def check_callback(callback: object) -> None:
    """An append callback is None or callable (`TypeError` otherwise)."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, not {type(callback).__name__}")


class LogReader(RaftLogReader):
    """A reader that reads the store's live state (so it sees later appends)."""

    def __init__(self, store: LogStoreBase) -> None:
        self._store = store

    async def try_get_log_entries(self, start: int, stop: int) -> list[Entry]:
        """The store's entries ``start <= index < stop``."""
        return await self._store.try_get_log_entries(start, stop)

    async def try_get_log_bytes(self, start: int, stop: int) -> EncodedBatch:
        """The store's records ``start <= index < stop``, encoded."""
        return await self._store.try_get_log_bytes(start, stop)

    async def read_vote(self) -> Vote | None:
        """The store's last saved vote, or None."""
        return await self._store.read_vote()


class LogStoreBase(RaftLogStorage):
    """Shared bookkeeping for `MemLogStore`, `SqliteLogStore` and `SegmentedLogStore`."""

    _purged: LogId | None
    _last: LogId | None
    _failed: BaseException | None
    _closed: bool

    def _init_base(self) -> None:
        self._purged = None
        self._last = None
        self._failed = None
        self._closed = False

    # -- state ----------------------------------------------------------------------

    def _check(self) -> None:
        """Raise if the store failed (R10: storage errors are sticky) or is closed."""
        if self._failed is not None:
            raise StorageError(f"log store has failed: {self._failed}") from self._failed
        if self._closed:
            raise StorageError("log store is closed")

    def _fail(self, exc: BaseException, what: str) -> StorageError:
        """Mark the store failed (R10) and return the StorageError to raise."""
        err = exc if isinstance(exc, StorageError) else StorageError(f"{what}: {exc}")
        if self._failed is None:
            self._failed = err
            logger.error("log store failed: %s", err)
        return err

    @property
    def failed(self) -> bool:
        """True once a write or fsync failed; every later call raises StorageError."""
        return self._failed is not None

    def _first_index(self) -> int:
        """The first index a read may return (``purged + 1``)."""
        if self._purged is not None:
            return self._purged.index + 1
        return self._first_stored_index()

    def _first_stored_index(self) -> int:
        return 0

    def _last_index(self) -> int:
        """Index of the last entry or of the purge point; -1 for a pristine log."""
        if self._last is not None:
            return self._last.index
        return -1 if self._purged is None else self._purged.index

    # -- checks ----------------------------------------------------------------------

    def _prepare_append(self, entries: Sequence[Entry] | EncodedBatch) -> EncodedBatch:
        """Check and encode the arguments (`as_batch`), then that the batch continues
        the log (§5.3, no hole)."""
        batch = as_batch(entries)
        self._check()
        if not batch:
            return batch
        last = self._last if self._last is not None else self._purged
        if last is not None:
            expected = self._last_index() + 1
            if batch.first_index != expected:
                raise StorageError(
                    f"append at index {batch.first_index} does not continue the log at {expected} "
                    "(truncate a conflicting suffix first; no hole, §5.3)"
                )
        if last is not None and batch.terms[0] < last.term:
            raise StorageError(f"append of term {batch.terms[0]} after term {last.term}: terms never decrease (§5.3)")
        return batch

    def _clamp(self, start: int, stop: int) -> tuple[int, int]:
        check_index(start, "start")
        check_index(stop, "stop")
        self._check()
        return max(start, self._first_index()), min(stop, self._last_index() + 1 if self._last is not None else 0)

    # -- reads -----------------------------------------------------------------------

    async def get_log_state(self) -> LogState:
        """The purge point and the last log id (the purge point when the log is empty)."""
        self._check()
        return LogState(self._purged, self._last if self._last is not None else self._purged)

    async def get_log_reader(self) -> RaftLogReader:
        """A `LogReader` over this store's live state."""
        self._check()
        return LogReader(self)

    async def try_get_log_entries(self, start: int, stop: int) -> list[Entry]:
        """Entries ``start <= index < stop`` (clamped to what is stored), decoded."""
        return (await self.try_get_log_bytes(start, stop)).entries()

    async def try_get_log_bytes(self, start: int, stop: int) -> EncodedBatch:
        """Records ``start <= index < stop`` (clamped to what is stored), CRC-checked (R9)."""
        lo, hi = self._clamp(start, stop)
        if hi <= lo:
            return EncodedBatch.concat([])
        return await self._read_batch(lo, hi)

    async def _read_batch(self, lo: int, hi: int) -> EncodedBatch:
        raise NotImplementedError

    # -- purge / truncate bookkeeping ----------------------------------------------------

    def _after_truncate(self, since: int, last_term_at: int | None) -> None:
        """Update ``_last`` after deleting ``>= since``; ``last_term_at`` = term at since-1."""
        if since <= self._first_index():
            self._last = None
        else:
            assert last_term_at is not None
            self._last = LogId(last_term_at, since - 1)

    def _after_purge(self, log_id: LogId) -> None:
        self._purged = log_id
        if self._last is not None and self._last.index <= log_id.index:
            self._last = None

    def _truncation_point(self, since: int) -> int | None:
        """Check ``since`` and the store; ``since`` raised to the first readable index,
        or None when no entry is at or after it (the truncate is a no-op, §5.3)."""
        check_index(since, "since")
        self._check()
        since = max(since, self._first_index())
        if self._last is None or since > self._last.index:
            return None
        return since

    def _check_purge(self, log_id: LogId) -> bool:
        """Check ``log_id`` and the store; True if the purge changes anything (purging
        never goes backwards)."""
        check_log_id(log_id)
        self._check()
        if self._purged is not None and log_id.index <= self._purged.index:
            return False
        return True
