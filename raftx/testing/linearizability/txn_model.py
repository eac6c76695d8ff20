"""`TXN_KV`: a model of the key-value service with revisions and multi-key transactions.

It follows `raftx.kv.KVClient` exactly (so a recorded client history checks as it
is): every put or delete of an existing key takes the next revision; a key's mod
revision is the revision of its last put.

=============================================  ==========================================
input                                          output
=============================================  ==========================================
``("put", key, value)``                        the new revision
``("delete", key)``                            the new revision, or 0 (key was absent)
``("get", key)``                               the value, or None
``("txn", compares, success, failure)``        ``(succeeded, responses)``
=============================================  ==========================================

A compare is ``("value", key, op, operand)`` (false for a missing key) or
``("mod_revision", key, op, revision)`` (0 for a missing key), ``op`` one of
``== != < <= > >=``; a branch is a tuple of ``("put", key, value)``, ``("delete",
key)``, ``("get", key)`` whose responses are as above except that a get answers
``(value, mod_revision)`` or None. Any output may be `UNKNOWN`.

Transactions span keys, so the model is not partitioned: the state is the whole
map and the revision, ``(revision, frozenset((key, value, mod_revision), ...))``.

>>> from raftx.testing.linearizability import Operation, check_operations
>>> put = Operation(0, ("put", "a", "1"), 0, 1, 1)
>>> cas = Operation(1, ("txn", (("value", "a", "==", "1"),), (("put", "b", "2"),), ()), 2, (True, (2,)), 3)
>>> check_operations(TXN_KV, [put, cas]).verdict.value
'ok'
>>> bad = Operation(1, ("txn", (("value", "a", "==", "1"),), (("put", "b", "2"),), ()), 2, (False, ()), 3)
>>> check_operations(TXN_KV, [put, bad]).verdict.value
'illegal'
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from raftx.errors import HistoryError
from raftx.testing.linearizability.model import UNKNOWN, Model

__all__ = ["TXN_KV"]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

_State = tuple[int, frozenset[tuple[Any, Any, int]]]


class _Map:
    """A mutable working copy of a model state for one step."""

    def __init__(self, state: _State) -> None:
        self.revision = state[0]
        self.items: dict[Any, tuple[Any, int]] = {k: (v, m) for k, v, m in state[1]}

    def frozen(self) -> _State:
        return self.revision, frozenset((k, v, m) for k, (v, m) in self.items.items())

    def put(self, key: Any, value: Any) -> int:
        self.revision += 1
        self.items[key] = (value, self.revision)
        return self.revision

    def delete(self, key: Any) -> int:
        if self.items.pop(key, None) is None:
            return 0
        self.revision += 1
        return self.revision

    def compare(self, c: Any) -> bool:
        target, key, op, operand = c
        got = self.items.get(key)
        if target == "value":
            return got is not None and bool(_OPS[op](got[0], operand))
        if target == "mod_revision":
            return bool(_OPS[op](0 if got is None else got[1], operand))
        raise HistoryError(f"txn_kv: unknown compare target {target!r}")

    def run(self, op: Any) -> Any:
        kind = op[0]
        if kind == "put":
            return self.put(op[1], op[2])
        if kind == "delete":
            return self.delete(op[1])
        if kind == "get":
            return self.items.get(op[1])
        raise HistoryError(f"txn_kv: unknown operation {op!r}")


def _step(state: _State, inp: Any, out: Any) -> tuple[bool, Any]:
    try:
        kind = inp[0]
        m = _Map(state)
        if kind == "get":
            got = m.items.get(inp[1])
            return (out is UNKNOWN or out == (None if got is None else got[0])), state
        if kind in ("put", "delete"):
            result = m.run(inp)
        elif kind == "txn":
            _, compares, success, failure = inp
            ok = all(m.compare(c) for c in compares)
            result = (ok, tuple(m.run(op) for op in (success if ok else failure)))
        else:
            raise HistoryError(f"txn_kv: unknown operation {inp!r}")
    except (TypeError, IndexError, ValueError, KeyError) as exc:
        raise HistoryError(f"txn_kv: malformed operation {inp!r}") from exc
    if out is not UNKNOWN and _normal(out) != _normal(result):
        return False, state
    return True, m.frozen()


def _normal(x: Any) -> Any:
    """Lists as tuples, recursively (a client may report either)."""
    if isinstance(x, (list, tuple)):
        return tuple(_normal(i) for i in x)
    return x


def _read_only(inp: Any, out: Any) -> bool:
    """A get, or a transaction known to have run a branch of gets only."""
    try:
        if inp[0] == "get":
            return True
        if inp[0] == "txn" and out is not UNKNOWN:
            branch = inp[2] if out[0] else inp[3]
            return all(op[0] == "get" for op in branch)
    except (TypeError, IndexError):
        pass
    return False


TXN_KV = Model(
    name="txn_kv",
    init=lambda: (0, frozenset()),
    step=_step,
    read_only=_read_only,
    describe_state=lambda s: f"rev {s[0]}: {dict(sorted(((k, v) for k, v, _ in s[1]), key=repr))}",
)
"""Revisions and multi-key transactions over one map (see the module docstring)."""
