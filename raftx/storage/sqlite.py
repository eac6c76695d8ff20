"""`SqliteLogStore`: the log store contract over stdlib ``sqlite3`` — an adapter example.

One database file holds the log (one row per entry: index, term and the entry's
encoded `_core.codec` record, whose CRC32C is checked on every read, R9) and the
hard state (vote, committed, purge point) in a ``meta`` table. The database runs in
WAL mode with ``synchronous=FULL``, so a committed transaction is durable.

Every operation runs in one dedicated thread (sqlite connections are thread-bound),
which also gives submission order for free (R14). `append` commits before it returns,
then fires the callback. `purge` deletes rows and records the purge point in one
transaction (R12).

Every ``sqlite3`` error (a damaged page, a full disk, a locked database) surfaces as
`raftx.errors.StorageError` naming the database file, never as a raw
``sqlite3.Error``; one from a write fails the store (R10). One process owns the
database: an exclusive ``flock`` on the file is taken at open (`raftx.storage.dirlock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgpack

from raftx.errors import CorruptRecord, StorageCorrupted, StorageError
from raftx.storage.base import LogStoreBase, check_callback, check_log_id, check_vote, fire
from raftx.storage.batch import EncodedBatch
from raftx.storage.dirlock import lock_path
from raftx.storage.fileio import FileIO
from raftx.storage.protocols import IOCallback
from raftx.types import Entry, LogId, Vote

__all__ = ["SqliteLogStore"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


def _pack(v: Any) -> bytes:
    if isinstance(v, Vote):
        v = ["vote", v.term, v.node_id, v.committed]
    elif isinstance(v, LogId):
        v = ["log_id", v.leader_id, v.index]
    data: bytes = msgpack.packb(v, use_bin_type=True)
    return data


def _unpack(b: bytes | None, path: str, key: str, want: type) -> Any:
    """The meta value of ``key``, which must decode to ``want`` (or None)."""
    if b is None:
        return None
    v: Any = None
    try:
        v = msgpack.unpackb(b, raw=False)
        if v is None:
            return None
        if v[0] == "vote" and want is Vote:
            return Vote(int(v[1]), None if v[2] is None else int(v[2]), bool(v[3]))
        if v[0] == "log_id" and want is LogId:
            return LogId(int(v[1]), int(v[2]))
    except (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException) as exc:
        raise StorageCorrupted(f"malformed sqlite meta value {key!r}: {exc!r}", path) from exc
    raise StorageCorrupted(f"sqlite meta value {key!r} is {v!r}, not a {want.__name__}", path)


class SqliteLogStore(LogStoreBase):
    """A durable `RaftLogStorage` in one sqlite database (see module doc)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._init_base()
        self.path = os.fspath(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raftx-sqlite")
        self._db: sqlite3.Connection | None = None
        self._vote: Vote | None = None
        self._committed: LogId | None = None
        self._first_stored = 0
        self._lock = asyncio.Lock()
        self._lock_fd: int | None = None  # the file's flock: one owner (raftx.storage.dirlock)

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteLogStore:
        """Open (creating if needed) the database at ``path``."""
        store = cls(path)
        try:
            await store._run(store._open_sync)
        except BaseException:
            with contextlib.suppress(StorageError):
                await store._run(store._close_sync)
            store._executor.shutdown(wait=False)
            raise
        return store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _error(self, exc: sqlite3.Error, what: str) -> StorageError:
        """A sqlite error as the `StorageError` to raise, naming the file."""
        return StorageError(f"{what}: sqlite error in {self.path}: {exc}")

    async def _write(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        self._check()
        try:
            return await self._run(fn, *args)
        except sqlite3.Error as exc:
            raise self._fail(self._error(exc, what), what) from exc

    def _open_sync(self) -> None:
        try:
            self._lock_fd = lock_path(FileIO(), self.path, record_pid=False)
            db = self._db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._load(db)
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot open the sqlite log") from exc

    def _close_sync(self) -> None:
        """Close the connection, then release the file's lock (after sqlite let go of it)."""
        db, self._db = self._db, None
        try:
            if db is not None:
                db.close()
        except sqlite3.Error as exc:
            raise self._error(exc, "closing the sqlite log failed") from exc
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _load(self, db: sqlite3.Connection) -> None:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self._vote = _unpack(meta.get("vote"), self.path, "vote", Vote)
        self._committed = _unpack(meta.get("committed"), self.path, "committed", LogId)
        self._purged = _unpack(meta.get("purged"), self.path, "purged", LogId)
        row = db.execute("SELECT idx, term FROM log ORDER BY idx DESC LIMIT 1").fetchone()
        first = db.execute("SELECT MIN(idx), COUNT(*) FROM log").fetchone()
        if row is not None:
            self._last = LogId(int(row[1]), int(row[0]))
            self._first_stored = int(first[0])
            if first[1] != self._last.index - self._first_stored + 1:
                raise StorageCorrupted(f"sqlite log has a hole: {first[1]} rows in [{first[0]}, {row[0]}]", self.path)
            if self._purged is not None and self._first_stored > self._purged.index + 1:
                raise StorageCorrupted(f"hole after the purge point {self._purged}", self.path)

    def _first_stored_index(self) -> int:
        return self._first_stored

    # -- hard state ----------------------------------------------------------------

    def _put_meta(self, key: str, value: Any) -> None:
        assert self._db is not None
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _pack(value)))

    async def save_vote(self, vote: Vote) -> None:
        """Persist ``vote``; durable on return (``synchronous=FULL``, R5)."""
        check_vote(vote)
        async with self._lock:
            await self._write("saving the vote failed", self._put_meta, "vote", vote)
            self._vote = vote

    async def read_vote(self) -> Vote | None:
        """The last saved vote, or None."""
        self._check()
        return self._vote

    async def save_committed(self, committed: LogId | None) -> None:
        """Persist the committed log id; durable on return (R6)."""
        check_log_id(committed, optional=True)
        async with self._lock:
            await self._write("saving committed failed", self._put_meta, "committed", committed)
            self._committed = committed

    async def read_committed(self) -> LogId | None:
        """The last saved committed log id, or None."""
        self._check()
        return self._committed

    # -- log -----------------------------------------------------------------------

    async def append(self, entries: Sequence[Entry] | EncodedBatch, callback: IOCallback | None = None) -> None:
        """Append ``entries`` (§5.3: no hole, terms never decrease) in one transaction.

        Durable when ``callback`` fires, which it does before returning.
        """
        check_callback(callback)
        async with self._lock:
            try:
                batch = self._prepare_append(entries)
                if batch:
                    data, first = batch.data, batch.first_index
                    rows = [
                        (first + i, t, data[o : o + n])
                        for i, (t, o, n) in enumerate(zip(batch.terms, batch.offsets, batch.lengths))
                    ]
                    await self._write("append failed", self._append_sync, rows)
                    if self._last is None:
                        self._first_stored = first
                    self._last = batch.last_log_id
            except BaseException as exc:
                fire(callback, exc)
                raise
        fire(callback, None)

    def _append_sync(self, rows: list[tuple[int, int, bytes]]) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO log (idx, term, record) VALUES (?, ?, ?)", rows)

    async def truncate(self, since: int) -> None:
        """Delete every entry ``>= since`` (§5.3) in one transaction; durable on return."""
        async with self._lock:
            point = self._truncation_point(since)
            if point is None:
                return
            since = point
            term = await self._write("truncate failed", self._truncate_sync, since)
            self._after_truncate(since, term)

    def _truncate_sync(self, since: int) -> int | None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM log WHERE idx >= ?", (since,))
        row = self._db.execute("SELECT term FROM log WHERE idx = ?", (since - 1,)).fetchone()
        return None if row is None else int(row[0])

    async def purge(self, log_id: LogId) -> None:
        """Delete every entry ``<= log_id.index`` and record the purge point in one transaction (§7, R12)."""
        async with self._lock:
            if not self._check_purge(log_id):
                return
            await self._write("purge failed", self._purge_sync, log_id)
            self._after_purge(log_id)
            self._first_stored = log_id.index + 1

    def _purge_sync(self, log_id: LogId) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            self._put_meta("purged", log_id)
            self._db.execute("DELETE FROM log WHERE idx <= ?", (log_id.index,))

    async def _read_batch(self, lo: int, hi: int) -> EncodedBatch:
        try:
            rows = await self._run(self._read_sync, lo, hi)
        except sqlite3.Error as exc:
            raise self._fail(self._error(exc, "read failed"), "read failed") from exc
        data = b"".join(r[0] for r in rows)
        try:
            return EncodedBatch.from_bytes(data, lo)
        except CorruptRecord as exc:  # bit rot in a stored record (R9)
            raise self._fail(StorageCorrupted(f"bad record on read: {exc}", self.path), "read") from exc

    def _read_sync(self, lo: int, hi: int) -> list[tuple[bytes]]:
        assert self._db is not None
        return self._db.execute("SELECT record FROM log WHERE idx >= ? AND idx < ? ORDER BY idx", (lo, hi)).fetchall()

    async def close(self) -> None:
        """Close the database; later calls raise `StorageError`. Idempotent."""
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            try:
                await self._run(self._close_sync)
            finally:
                self._executor.shutdown(wait=False)

    # -- testing aid -----------------------------------------------------------------

    async def flip_bit(self, index: int, bit: int = 0) -> None:
        """Flip one bit of the stored record at ``index`` (to test corruption detection)."""

        def flip() -> None:
            assert self._db is not None
            row = self._db.execute("SELECT record FROM log WHERE idx = ?", (index,)).fetchone()
            if row is None:
                raise StorageError(f"no record at {index}")
            rec = bytearray(row[0])
            rec[(bit // 8) % len(rec)] ^= 1 << (bit % 8)
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("UPDATE log SET record = ? WHERE idx = ?", (bytes(rec), index))

        await self._run(flip)
