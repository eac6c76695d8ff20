"""`Compare` and `Op`: the parts of a key-value transaction (`KVClient.txn`).

::

    from raftx.kv import Compare, Op
    ok, responses = await kv.txn(
        compare=[Compare.value("cfg") == b"v1", Compare.mod_revision("lock") == 0],
        success=[Op.put("cfg", b"v2"), Op.get("other")],
        failure=[Op.get("cfg")],
    )

A transaction is one log entry: its compares are evaluated and one branch is run
atomically on every replica, in log order (so it is linearizable like any write).
``Compare.value(k) <op> v`` compares the key's value as bytes; it is false for a
missing key. ``Compare.mod_revision(k) <op> r`` compares the revision of the key's
last put; a missing key's is 0, so ``Compare.mod_revision(k) == 0`` means "absent".
Any of ``== != < <= > >=`` works.

The responses, one per operation of the branch that ran: a put answers its
revision (int), a delete its revision or 0 (the key did not exist), a get
``(value, mod_revision)`` or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raftx.errors import BadCommand
from raftx.kv import commands as C

__all__ = ["Compare", "Op"]


@dataclass(frozen=True)
class Compare:
    """One compare of a transaction; build it with ``Compare.value(k) == v`` or
    ``Compare.mod_revision(k) < r`` (see the module docstring)."""

    target: int
    key: bytes
    op: str
    operand: Any

    @staticmethod
    def value(key: str | bytes) -> _Operand:
        """The value of ``key`` (compared as bytes; str operands as UTF-8)."""
        return _Operand(C.TARGET_VALUE, C.to_bytes(key, "key", C.MAX_KEY_BYTES))

    @staticmethod
    def mod_revision(key: str | bytes) -> _Operand:
        """The mod revision of ``key`` (0 if absent)."""
        return _Operand(C.TARGET_MOD, C.to_bytes(key, "key", C.MAX_KEY_BYTES))

    def to_wire(self) -> list[Any]:
        return [self.target, self.key, C.CMP_OPS.index(self.op), self.operand]


class _Operand:
    """The left side of a compare; a comparison operator makes the `Compare`."""

    __slots__ = ("target", "key")

    def __init__(self, target: int, key: bytes) -> None:
        self.target = target
        self.key = key

    def _make(self, op: str, other: Any) -> Compare:
        if self.target == C.TARGET_VALUE:
            operand: Any = C.to_bytes(other, "compared value", C.MAX_VALUE_BYTES)
        elif type(other) is int and 0 <= other < 2**63:
            operand = other
        else:
            raise BadCommand(f"a mod_revision is compared with an int >= 0, not {other!r:.50}")
        return Compare(self.target, self.key, op, operand)

    def __eq__(self, other: Any) -> Compare:  # type: ignore[override]
        return self._make("==", other)

    def __ne__(self, other: Any) -> Compare:  # type: ignore[override]
        return self._make("!=", other)

    def __lt__(self, other: Any) -> Compare:
        return self._make("<", other)

    def __le__(self, other: Any) -> Compare:
        return self._make("<=", other)

    def __gt__(self, other: Any) -> Compare:
        return self._make(">", other)

    def __ge__(self, other: Any) -> Compare:
        return self._make(">=", other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Op:
    """One operation of a transaction branch: `Op.put`, `Op.delete`, `Op.get`."""

    kind: int
    key: bytes
    value: bytes | None = None
    lease: int = 0

    @staticmethod
    def put(key: str | bytes, value: str | bytes, *, lease: int | None = None) -> Op:
        """Set ``key`` (attached to lease ``lease``, if given)."""
        lid = 0 if lease is None else lease
        if type(lid) is not int or not 0 <= lid < 2**63:
            raise BadCommand(f"lease must be a lease id, not {lease!r:.50}")
        return Op(C.PUT, C.to_bytes(key, "key", C.MAX_KEY_BYTES), C.to_bytes(value, "value", C.MAX_VALUE_BYTES),
                  lid)

    @staticmethod
    def delete(key: str | bytes) -> Op:
        """Delete ``key``."""
        return Op(C.DELETE, C.to_bytes(key, "key", C.MAX_KEY_BYTES))

    @staticmethod
    def get(key: str | bytes) -> Op:
        """Read ``key`` (inside the transaction, at its place in the log)."""
        return Op(C.GET, C.to_bytes(key, "key", C.MAX_KEY_BYTES))

    def to_wire(self) -> list[Any]:
        if self.kind == C.PUT:
            return [C.PUT, self.key, self.value, self.lease]
        return [self.kind, self.key]
