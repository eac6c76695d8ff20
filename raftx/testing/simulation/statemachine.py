"""The replicated state machine of the simulation: a small string key-value map.

A normal entry's payload is ``b"put\\0<key>\\0<value>"`` (`encode_put`); blank and
membership entries only move the applied index (and the membership). The state
machine is volatile, like `raftx.storage.MemStateMachine`: after a crash it is
rebuilt from the last durable snapshot, and the engine re-applies the committed
entries after it (§7).
"""

from __future__ import annotations

from typing import Any

from raftx.errors import ProtocolError
from raftx.types import Entry, LogId, Membership, SnapshotMeta, StoredMembership

__all__ = ["KVStateMachine", "decode_put", "encode_put"]


def encode_put(key: str, value: str) -> bytes:
    """The payload of ``put(key, value)``."""
    if "\0" in key or "\0" in value:
        raise ProtocolError("keys and values must not contain NUL")
    return b"put\0" + key.encode() + b"\0" + value.encode()


def decode_put(payload: bytes) -> tuple[str, str]:
    """``(key, value)`` of a put payload; `ProtocolError` if it is not one."""
    parts = bytes(payload).split(b"\0")
    if len(parts) != 3 or parts[0] != b"put":
        raise ProtocolError(f"not a put payload: {payload!r}")
    return parts[1].decode(), parts[2].decode()


class KVStateMachine:
    """``data``: key -> value; ``applied``: the last applied log id (§5.3)."""

    __slots__ = ("data", "applied", "membership")

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.applied: LogId | None = None
        self.membership = StoredMembership()

    @property
    def applied_index(self) -> int:
        return -1 if self.applied is None else self.applied.index

    def apply(self, entry: Entry) -> Any:
        """Apply one committed entry; return its output (the previous value for a put)."""
        out: Any = None
        p = entry.payload
        if isinstance(p, Membership):
            self.membership = StoredMembership(entry.log_id, p)
        elif p is not None:
            key, value = decode_put(p)
            out = self.data.get(key, "")
            self.data[key] = value
        self.applied = entry.log_id
        return out

    def get(self, key: str) -> str:
        return self.data.get(key, "")

    def snapshot(self, snapshot_id: str) -> tuple[SnapshotMeta, dict[str, str]]:
        """The current state as a snapshot (meta, data)."""
        return SnapshotMeta(self.applied, self.membership, snapshot_id), dict(self.data)

    def restore(self, meta: SnapshotMeta | None, data: dict[str, str] | None) -> None:
        """Replace the state with a snapshot's (or the empty state)."""
        self.data = dict(data or {})
        self.applied = None if meta is None else meta.last_log_id
        self.membership = StoredMembership() if meta is None else meta.last_membership
