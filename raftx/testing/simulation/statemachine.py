"""The replicated state machine of the simulation: the key-value service's own.

Every node runs the production `raftx.kv.KVStateMachine` (commands of
`raftx.kv.commands`, snapshots in its msgpack format). Two things are simulated
around it, nothing inside it:

* its snapshot directory is a `raftx.storage.snapshot.MemSnapshotStore` that the
  node keeps across crashes (a committed snapshot is durable: the file store
  commits by fsync + rename, atomic at any crash point); a restarted node loads
  the newest one, as `KVStateMachine` does from its directory;
* `SimKVStateMachine.apply` reports every applied entry to ``observe`` (the
  invariant checker) after the real ``apply`` ran.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Callable

from raftx.kv.commands import encode_put as _kv_put
from raftx.kv.state_machine import KVStateMachine
from raftx.storage.snapshot import MemSnapshotStore
from raftx.types import Entry, EntryRange

__all__ = ["SimKVStateMachine", "encode_put"]


def encode_put(key: str, value: str) -> bytes:
    """The payload of ``put(key, value)`` (a `raftx.kv.commands` PUT)."""
    return _kv_put(key.encode(), value.encode())


class SimKVStateMachine(KVStateMachine):
    """`KVStateMachine` over a crash-surviving in-memory snapshot store (module doc)."""

    def __init__(self, snapshots: MemSnapshotStore, observe: Callable[[list[Entry]], None]) -> None:
        super().__init__(None, _load=False)
        self._snapshots = snapshots
        self._observe = observe
        if snapshots.current is not None:  # what KVStateMachine does with its directory
            meta, data = snapshots.current
            self._state = self._parse_snapshot(meta, io.BytesIO(data))

    def value(self, key: str) -> str:
        """The value of ``key`` ("" if unset)."""
        v = self.get(key.encode())
        return "" if v is None else v.decode()

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        out = await super().apply(entries)
        self._observe(list(entries) if type(entries) is EntryRange else list(entries))
        return out
