"""The storage contracts, following openraft's v2 traits (``storage/v2``) in Python.

Four protocols (`typing.Protocol`, async methods):

* `RaftLogReader`: reads entries and the vote; many readers may run concurrently
  with each other and with the single writer.
* `RaftLogStorage`: the log and the vote/committed "hard state". All *writes*
  (``save_vote``, ``save_committed``, ``append``, ``truncate``, ``purge``) come from
  one task, one at a time, and take effect **in submission order** (R14): a vote
  write never overtakes an earlier append and vice versa.
* `RaftStateMachine` and `RaftSnapshotBuilder`: apply committed entries and build /
  install snapshots (§7).

Stores may subclass these protocols to inherit the default methods
(`RaftLogReader.limited_get_log_entries`, `RaftLogStorage.truncate_after`,
`RaftStateMachine.try_create_snapshot_builder`).

Log-shape rules every store obeys (openraft "no hole"; §5.3 Log Matching):

* the log is ``[last_purged_log_id.index + 1, last_log_id.index]`` with no hole;
* `append` must start at ``last_log_id.index + 1`` (or anywhere on an empty,
  never-purged log); overwriting a conflicting suffix is `truncate` then `append`;
* terms never decrease along the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, runtime_checkable

from raftx.errors import LeaderChanged
from raftx.storage.batch import EncodedBatch
from raftx.types import Entry, LogId, Snapshot, SnapshotMeta, StoredMembership, Vote

__all__ = [
    "IOCallback",
    "LogState",
    "RaftLogReader",
    "RaftLogStorage",
    "RaftSnapshotBuilder",
    "RaftStateMachine",
]

#: Called exactly once per `RaftLogStorage.append`: ``None`` when the entries are
#: durable, or the `raftx.errors.StorageError` that made them not durable.
IOCallback = Callable[[BaseException | None], None]


@dataclass(frozen=True, slots=True)
class LogState:
    """``last_purged_log_id`` (None: nothing purged) and ``last_log_id``.

    ``last_log_id`` is the id of the last entry, or ``last_purged_log_id`` when every
    entry has been purged, or None for a pristine log.
    """

    last_purged_log_id: LogId | None
    last_log_id: LogId | None


@runtime_checkable
class RaftLogReader(Protocol):
    """Reads the log. Safe to use concurrently with other readers and the writer.

    A reader obtained from `RaftLogStorage.get_log_reader` sees entries appended
    after it was created (it reads the store's current state, not a copy).
    """

    async def try_get_log_entries(self, start: int, stop: int) -> list[Entry]:
        """Entries with ``start <= index < stop`` (half-open), in order.

        Indexes outside the stored log are clamped away: the result is the stored
        part of the range (possibly empty). Raises `raftx.errors.StorageError` on an
        I/O error or a record that fails its checksum (R9).
        """
        ...

    async def try_get_log_bytes(self, start: int, stop: int) -> EncodedBatch:
        """The same range as `try_get_log_entries`, as validated encoded records.

        For replication: the bytes go onto the wire unchanged (DESIGN §2 rule 3).
        """
        ...

    async def read_vote(self) -> Vote | None:
        """The last saved vote, or None if none was ever saved."""
        ...

    async def limited_get_log_entries(self, start: int, stop: int) -> list[Entry]:
        """Like `try_get_log_entries` but may return fewer entries (a non-empty prefix
        when the range holds entries); used by replication to bound a message."""
        return await self.try_get_log_entries(start, stop)

    async def leader_bounded_entries(self, leader: Vote, start: int, stop: int) -> AsyncIterator[Entry]:
        """Yield the stored entries of ``[start, stop)`` while ``leader`` is still the
        stored, committed vote (openraft ``leader_bounded_stream``).

        Raises `raftx.errors.LeaderChanged` (once, before yielding anything further)
        if the stored vote is not ``leader`` committed: a deposed leader must not
        replicate (§5.1).
        """
        vote = await self.read_vote()
        if vote is None or not vote.committed or vote.leader_id != leader.leader_id:
            raise LeaderChanged(f"stored vote {vote!r} is not the committed vote of leader {leader!r}")
        for entry in await self.try_get_log_entries(start, stop):
            yield entry


@runtime_checkable
class RaftLogStorage(Protocol):
    """The durable log plus the vote and committed id (Raft Figure 2 persistent state).

    Writes are issued by a single task and applied in submission order (R14). Reads
    (`get_log_state`, `read_vote`, `read_committed`, readers) may interleave with
    writes. After any write fails the store is *failed*: that write and every later
    call raise `raftx.errors.StorageError` (storage errors are fatal, R10).
    """

    async def get_log_state(self) -> LogState:
        """The purge point and the last log id (see `LogState`)."""
        ...

    async def get_log_reader(self) -> RaftLogReader:
        """A reader over this log (cheap; sees later appends)."""
        ...

    async def save_vote(self, vote: Vote) -> None:
        """Persist ``vote``; it is durable when this returns (R5, Figure 2).

        Ordered after every earlier write: entries appended before are durable
        first, so a vote never overtakes an append (R14).
        """
        ...

    async def read_vote(self) -> Vote | None:
        """The last saved vote, or None."""
        ...

    async def save_committed(self, committed: LogId | None) -> None:
        """Persist the committed log id (optional for safety, R6).

        Never durable ahead of the entries it covers: earlier appends are made durable
        first (R6). Stores that do not persist it may make this a no-op and return
        None from `read_committed`.
        """
        ...

    async def read_committed(self) -> LogId | None:
        """The last saved committed log id, or None."""
        ...

    async def append(self, entries: Sequence[Entry] | EncodedBatch, callback: IOCallback | None = None) -> None:
        """Append entries at ``last_log_id.index + 1`` (no hole, §5.3).

        On return the entries are *readable* (replication may send them). They are
        *durable* when ``callback(None)`` fires, which may happen before or after
        this returns; it fires exactly once, in submission order across appends, with
        the `raftx.errors.StorageError` instead if the write or its fsync failed (the
        error is also raised if it is known before returning). One call is at most
        one write and one fsync for the whole batch (group commit). The caller must
        not acknowledge the entries (AppendEntries success, commit) before the
        callback (R4).
        """
        ...

    async def truncate(self, since: int) -> None:
        """Delete every entry with ``index >= since`` (a conflicting suffix, §5.3).

        Durable when it returns, never leaves a hole (R11). ``since`` above the last
        index is a no-op; ``since`` at or below the purge point leaves an empty log
        whose ``last_log_id`` is the purged id.
        """
        ...

    async def truncate_after(self, log_id: LogId | None) -> None:
        """openraft's ``truncate_after``: keep entries ``<= log_id.index`` (None: none)."""
        await self.truncate(0 if log_id is None else log_id.index + 1)

    async def purge(self, log_id: LogId) -> None:
        """Delete every entry with ``index <= log_id.index`` (inclusive) and record
        ``log_id`` durably as the last purged id (§7 log compaction).

        The caller guarantees a durable snapshot covers ``log_id`` (R12). Purging
        past the last entry empties the log; the next append is then at
        ``log_id.index + 1``. Complete when it returns.
        """
        ...

    async def close(self) -> None:
        """Make everything durable, release files; later calls raise StorageError."""
        ...


@runtime_checkable
class RaftSnapshotBuilder(Protocol):
    """Builds a snapshot of the state machine as of its last applied entry (§7)."""

    async def build_snapshot(self) -> Snapshot:
        """A durable snapshot; also becomes the state machine's current snapshot."""
        ...


@runtime_checkable
class RaftStateMachine(Protocol):
    """The replicated state machine. Called from one task at a time.

    Entries are applied exactly once each, in index order (R19); a membership entry
    updates the stored membership as it is applied.
    """

    async def applied_state(self) -> tuple[LogId | None, StoredMembership]:
        """``(last_applied, last_membership)``; ``(None, StoredMembership())`` when new."""
        ...

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        """Apply committed entries in order; one response per entry.

        The node passes a `raftx.types.EntryRange` (a ``Sequence[Entry]``); reading
        its ``first_index``, ``terms`` and ``payloads`` skips building an `Entry`
        per entry (`raftx.kv.KVStateMachine` does).
        """
        ...

    async def get_snapshot_builder(self) -> RaftSnapshotBuilder:
        """A builder for a snapshot of the current state."""
        ...

    async def try_create_snapshot_builder(self, force: bool) -> RaftSnapshotBuilder | None:
        """A builder, or None to defer when ``force`` is False (openraft semantics)."""
        return await self.get_snapshot_builder()

    async def begin_receiving_snapshot(self) -> BinaryIO:
        """A writable binary file object into which a snapshot from the leader is
        streamed; then passed to `install_snapshot`."""
        ...

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Replace the state with the snapshot read from ``snapshot`` (§7).

        Durable when it returns; the snapshot becomes the current one and
        `applied_state` becomes ``(meta.last_log_id, meta.last_membership)``.
        Raises `raftx.errors.StorageError` if the data is malformed (state unchanged).
        """
        ...

    async def get_current_snapshot(self) -> Snapshot | None:
        """The latest durable snapshot, or None."""
        ...
