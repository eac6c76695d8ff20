"""The simulated disk of one node: a page cache in front of durable state.

Storage writes (vote, append, truncate, purge, snapshot install, commit index) are
*submitted* in order: they land in the cache at once, so the node reads its own
writes (the engine's entries are "readable once submitted"). `SimDisk.sync` (the
fsync) makes everything submitted so far durable, or fails with
`raftx.errors.StorageError` (the node must then stop as ``Fatal``: storage errors
are fatal and an fsync is never retried, DESIGN rule 7).

`SimDisk.crash` throws the cache away. Of the writes not yet synced it keeps a
random *prefix* (the writes reached the platter in order, as a single write-ahead
file does) and may tear the last kept one: an append keeps only a prefix of its
entries (the torn tail a segmented log's recovery truncates, correctness-notes
§5.7); a torn vote or commit record fails its checksum and is dropped. Nothing
unsynced was ever acknowledged (persist before acknowledge, §5.2 Figure 2), so
this loss must be harmless; the invariants check that it is.

The disk also checks the storage contract the engine promises: appends follow the
last entry, no truncation at or below the durable commit index, no purge beyond
the snapshot, a commit index that never moves back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from raftx.errors import StorageError
from raftx.testing.simulation.invariants import InvariantViolation
from raftx.types import Entry, LogId, SnapshotMeta, Vote

__all__ = ["DiskState", "SimDisk"]


def _idx(log_id: LogId | None) -> int:
    return -1 if log_id is None else log_id.index


@dataclass(slots=True)
class DiskState:
    """One consistent image of a node's stores: log, vote, commit index, snapshot."""

    vote: Vote = field(default_factory=Vote)
    #: Consecutive entries after ``purged``.
    entries: list[Entry] = field(default_factory=list)
    purged: LogId | None = None
    committed: LogId | None = None
    snapshot: SnapshotMeta | None = None
    snapshot_data: Any = None

    def copy(self) -> DiskState:
        return DiskState(self.vote, list(self.entries), self.purged, self.committed, self.snapshot,
                         self.snapshot_data)

    @property
    def first_index(self) -> int:
        return _idx(self.purged) + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.entries) - 1

    @property
    def last_log_id(self) -> LogId | None:
        return self.entries[-1].log_id if self.entries else self.purged

    def entry(self, index: int) -> Entry | None:
        k = index - self.first_index
        return self.entries[k] if 0 <= k < len(self.entries) else None

    def read(self, first: int, last: int) -> list[Entry] | None:
        """Entries ``first .. last`` (None if any of them is not stored)."""
        if last < first:
            return []
        lo, hi = first - self.first_index, last - self.first_index
        if lo < 0 or hi >= len(self.entries):
            return None
        return self.entries[lo:hi + 1]

    def snapshot_index(self) -> int:
        return -1 if self.snapshot is None else _idx(self.snapshot.last_log_id)

    def apply(self, op: tuple[Any, ...]) -> None:
        """Carry out one storage operation (see `SimDisk.submit`)."""
        kind = op[0]
        if kind == "vote":
            self.vote = op[1]
        elif kind == "append":
            entries: list[Entry] = op[1]
            if entries and entries[0].log_id.index != self.last_index + 1:
                raise InvariantViolation(
                    "storage contract",
                    f"append at {entries[0].log_id.index} does not follow the last index {self.last_index}")
            self.entries.extend(entries)
        elif kind == "truncate":
            after: LogId | None = op[1]
            keep = _idx(after)
            if keep < _idx(self.purged):
                raise InvariantViolation("storage contract", f"truncate after {after} below purged {self.purged}")
            del self.entries[max(0, keep - self.first_index + 1):]
        elif kind == "purge":
            upto: LogId = op[1]
            if upto.index <= _idx(self.purged):
                return
            k = upto.index - self.first_index + 1
            del self.entries[:k]
            self.purged = upto
        elif kind == "install":
            meta: SnapshotMeta = op[1]
            if _idx(meta.last_log_id) > self.snapshot_index():
                self.snapshot, self.snapshot_data = meta, op[2]
        elif kind == "committed":
            self.committed = op[1]
        else:
            raise AssertionError(f"unknown storage operation {op!r}")


class SimDisk:
    """A node's storage with a volatile cache; see the module docstring.

    ``fsync_failure`` is the probability that a `sync` fails; ``keep_unsynced``
    and ``torn_writes`` allow a crash to keep part of the unsynced writes.
    """

    def __init__(self, rng: random.Random, fsync_failure: float = 0.0, keep_unsynced: bool = True,
                 torn_writes: bool = True) -> None:
        self.rng = rng
        self.fsync_failure = fsync_failure
        self.keep_unsynced = keep_unsynced
        self.torn_writes = torn_writes
        #: What survives a crash.
        self.durable = DiskState()
        #: What the node reads: durable state plus every submitted write.
        self.cache = DiskState()
        #: Submitted, not yet synced: (io id or None, operation).
        self.pending: list[tuple[int | None, tuple[Any, ...]]] = []
        self.syncs = self.crashes = self.torn = 0

    # -- writes -----------------------------------------------------------------------

    def submit(self, io_id: int | None, op: tuple[Any, ...]) -> None:
        """Submit one write: ``("vote", Vote)``, ``("append", [Entry])``, ``("truncate",
        LogId | None)``, ``("purge", LogId)``, ``("install", SnapshotMeta, data)``,
        ``("committed", LogId)``. Checks the storage contract first."""
        c = self.cache
        kind = op[0]
        if kind == "truncate" and _idx(op[1]) < _idx(c.committed):
            raise InvariantViolation("truncated committed entries",
                                     f"truncate after {op[1]} but {c.committed} is saved as committed")
        if kind == "purge" and op[1].index > c.snapshot_index():
            raise InvariantViolation("purge beyond snapshot", f"purge up to {op[1]}, snapshot {c.snapshot}")
        if kind == "committed" and _idx(op[1]) < _idx(c.committed):
            raise InvariantViolation("monotonic commit", f"commit index saved back from {c.committed} to {op[1]}")
        c.apply(op)
        self.pending.append((io_id, op))

    def store_snapshot(self, meta: SnapshotMeta, data: Any) -> None:
        """A built snapshot: written to its own file, fsynced and renamed (durable now)."""
        for state in (self.durable, self.cache):
            state.apply(("install", meta, data))

    def sync(self) -> int | None:
        """fsync: every submitted write becomes durable. Returns the largest io id
        covered (None if none). Raises `StorageError` on an injected failure."""
        self.syncs += 1
        if self.fsync_failure and self.rng.random() < self.fsync_failure:
            raise StorageError("simulated fsync failure (EIO)")
        last: int | None = None
        for io_id, op in self.pending:
            self.durable.apply(op)
            if io_id is not None:
                last = io_id
        self.pending.clear()
        return last

    # -- crash ------------------------------------------------------------------------

    def crash(self) -> str:
        """Lose the cache and some unsynced writes; return what happened (for the trace)."""
        self.crashes += 1
        n = len(self.pending)
        keep = self.rng.randint(0, n) if self.keep_unsynced and n else 0
        for _, op in self.pending[:keep]:
            self.durable.apply(op)
        note = f"kept {keep}/{n} unsynced"
        if self.torn_writes and keep < n and self.rng.random() < 0.5:
            _, op = self.pending[keep]
            if op[0] == "append" and len(op[1]) > 1:
                cut = self.rng.randint(1, len(op[1]) - 1)
                self.durable.apply(("append", op[1][:cut]))
                self.torn += 1
                note += f", torn append kept {cut}/{len(op[1])} entries"
        self.pending.clear()
        self.cache = self.durable.copy()
        return note
