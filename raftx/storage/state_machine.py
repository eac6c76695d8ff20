"""`MemStateMachine`: a small reference state machine for tests and the conformance suite.

It keeps the last applied log id, the last membership and the payload of every
applied NORMAL entry (``data``: index -> bytes). Snapshots go to a
`FileSnapshotStore` when ``snapshot_dir`` is given (durable, checksummed, R13), else
stay in memory. The response to a NORMAL entry is its payload; other kinds get None.

Snapshot data format (msgpack, streamed): a header ``[last_applied, membership_log_id,
membership_bytes, count]`` followed by ``count`` items ``[index, payload]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import msgpack

from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.snapshot import log_id_from_list, log_id_to_list, pack_chunks, unpack_items
from raftx.storage.snapshot_sm import SnapshotStateMachine
from raftx.types import Entry, EntryKind, LogId, Membership, SnapshotMeta, StoredMembership

__all__ = ["MemStateMachine"]

logger = logging.getLogger(__name__)

#: What a snapshot replaces at once: last applied log id, membership, and the rest of the
#: state (here the applied payloads, ``index -> bytes``; a subclass's own).
_State = tuple[LogId | None, StoredMembership, Any]


class MemStateMachine(SnapshotStateMachine[_State]):
    """Applied state, membership and applied payloads, with snapshots (see module doc)."""

    def __init__(self, snapshot_dir: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> None:
        self.last_applied: LogId | None = None
        self.last_membership = StoredMembership()
        self.data: dict[int, bytes] = {}
        self._init_snapshots(snapshot_dir, fsync)

    @classmethod
    async def open(cls, snapshot_dir: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> MemStateMachine:
        """A state machine restored from the newest snapshot in ``snapshot_dir`` (if any)."""
        sm = cls(snapshot_dir, fsync=fsync)
        await sm._restore_latest()
        return sm

    # -- RaftStateMachine -----------------------------------------------------------

    async def applied_state(self) -> tuple[LogId | None, StoredMembership]:
        return self.last_applied, self.last_membership

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        """Apply in index order; an entry at or below ``last_applied`` is refused (R19)."""
        out: list[Any] = []
        for e in entries:
            if self.last_applied is not None and e.log_id.index <= self.last_applied.index:
                raise StorageError(f"entry {e.log_id} applied out of order after {self.last_applied} (R19)")
            kind = e.kind
            if kind is EntryKind.NORMAL:
                out.append(self._apply_normal(e))
            else:
                if kind is EntryKind.MEMBERSHIP:
                    self.last_membership = StoredMembership(e.log_id, e.payload)  # type: ignore[arg-type]
                out.append(None)
            self.last_applied = e.log_id
        return out

    def _apply_normal(self, entry: Entry) -> Any:
        """Apply one NORMAL entry; return its response (a subclass's hook, e.g.
        `raftx.objects.ObjectStateMachine`)."""
        self.data[entry.log_id.index] = entry.payload  # type: ignore[assignment]
        return entry.payload

    # -- snapshot data ----------------------------------------------------------------

    def _chunks(self) -> Iterator[bytes]:
        m = self.last_membership
        header = [log_id_to_list(self.last_applied), log_id_to_list(m.log_id), m.membership.to_bytes(), len(self.data)]
        return pack_chunks(header, sorted(self.data.items()))

    def _snapshot_image(self) -> tuple[LogId | None, StoredMembership, Iterable[bytes]]:
        return self.last_applied, self.last_membership, list(self._chunks())  # encoded now: data changes

    def _install_state(self, state: _State) -> None:
        self.last_applied, self.last_membership, self.data = state

    def _parse_snapshot(self, meta: SnapshotMeta, f: BinaryIO) -> _State:
        """The state in snapshot bytes from ``f`` (StorageCorrupted if malformed)."""
        items = unpack_items(f)
        try:
            applied, mem_id, mem, count = next(items)
            data: dict[int, bytes] = {}
            for _ in range(int(count)):
                index, payload = next(items)
                data[int(index)] = bytes(payload)
            membership = StoredMembership(log_id_from_list(mem_id), Membership.from_bytes(mem))
            last_applied = log_id_from_list(applied)
        except (StopIteration, ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise StorageCorrupted(f"malformed state machine snapshot: {exc!r}") from exc
        except StorageError:
            raise
        except Exception as exc:  # e.g. ProtocolError from a bad membership payload
            raise StorageCorrupted(f"malformed state machine snapshot: {exc}") from exc
        if last_applied != meta.last_log_id:
            raise StorageCorrupted(f"snapshot data covers {last_applied}, meta says {meta.last_log_id}")
        return last_applied, membership, data
