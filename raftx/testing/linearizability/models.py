"""The models shipped with the checker: `REGISTER`, `CAS_REGISTER` and `KV`.

Inputs are small tuples whose first item names the operation:

=================  ===============================  ===============================
model              input                            output
=================  ===============================  ===============================
`REGISTER`         ``("read",)``                    the value read (``None`` = never
                                                    written)
                   ``("write", v)``                 ignored (``None`` by convention)
`CAS_REGISTER`     the two above, and
                   ``("cas", expected, new)``       ``True`` (swapped) / ``False``
                                                    (value was not ``expected``)
`KV`               ``("get", key)``                 the value (``""`` if never written)
                   ``("put", key, value)``          ignored
                   ``("append", key, value)``       ignored (appends a ``str``)
=================  ===============================  ===============================

Any output may be `UNKNOWN` (the outcome was not observed). `KV` is partitioned by
key (P-compositionality): each key is checked on its own, its state being that key's
string.

>>> from raftx.testing.linearizability import Operation, check_operations
>>> ops = [Operation(0, ("write", 1), 0, None, 2), Operation(1, ("read",), 1, 1, 3)]
>>> check_operations(REGISTER, ops).verdict.value
'ok'
>>> ops = [Operation(0, ("put", "k", "a"), 0, None, 1), Operation(1, ("get", "k"), 2, "", 3)]
>>> check_operations(KV, ops).verdict.value
'illegal'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftx.errors import HistoryError
from raftx.testing.linearizability.model import UNKNOWN, Model, Operation

__all__ = ["CAS_REGISTER", "KV", "REGISTER"]


def _bad_input(model: str, inp: Any) -> HistoryError:
    """The error for an input the model does not understand."""
    return HistoryError(f"{model}: unknown operation {inp!r}")


def _register_step(state: Any, inp: Any, out: Any) -> tuple[bool, Any]:
    """Read/write register: a read must return the last value written."""
    try:
        kind = inp[0]
        if kind == "read":
            return (out is UNKNOWN or out == state), state
        if kind == "write":
            return True, inp[1]
    except (TypeError, IndexError):
        pass
    raise _bad_input("register", inp)


def _cas_register_step(state: Any, inp: Any, out: Any) -> tuple[bool, Any]:
    """Read/write/compare-and-swap register."""
    try:
        kind = inp[0]
        if kind == "read":
            return (out is UNKNOWN or out == state), state
        if kind == "write":
            return True, inp[1]
        if kind == "cas":
            _, expected, new = inp
            if state == expected:
                return (out is UNKNOWN or out is True), new
            return (out is UNKNOWN or out is False), state
    except (TypeError, IndexError, ValueError):
        pass
    raise _bad_input("cas_register", inp)


def _register_read_only(inp: Any, out: Any) -> bool:
    """Reads, and compare-and-swaps known to have failed, never change the register."""
    try:
        return inp[0] == "read" or (inp[0] == "cas" and out is False)
    except (TypeError, IndexError):
        return False


def _kv_read_only(inp: Any, out: Any) -> bool:
    """A get never changes the value."""
    try:
        is_get: bool = inp[0] == "get"
        return is_get
    except (TypeError, IndexError):
        return False


def _describe_register(inp: Any, out: Any) -> str:
    """``read() -> 3``, ``write(4)``, ``cas(1, 2) -> True``."""
    if isinstance(inp, tuple) and inp:
        args = ", ".join(repr(a) for a in inp[1:])
        shown = f"{inp[0]}({args})"
        return shown if inp[0] == "write" and out is None else f"{shown} -> {out!r}"
    return f"{inp!r} -> {out!r}"


def _kv_step(state: str, inp: Any, out: Any) -> tuple[bool, Any]:
    """One key of a string map: get returns the value, put sets it, append extends it."""
    try:
        kind = inp[0]
        if kind == "get":
            return (out is UNKNOWN or out == state), state
        if kind == "put":
            return True, inp[2]
        if kind == "append":
            return True, state + inp[2]
    except (TypeError, IndexError):
        pass
    raise _bad_input("kv", inp)


def partition_by_key(operations: Sequence[Operation]) -> list[list[Operation]]:
    """Split a key-value history into one sub-history per key (``input[1]``), in
    order of first appearance. Keys are independent, so the history is linearizable
    iff every sub-history is (Horn & Kroening, P-compositionality)."""
    by_key: dict[Any, list[Operation]] = {}
    for op in operations:
        try:
            key = op.input[1]
            by_key.setdefault(key, []).append(op)
        except (TypeError, IndexError) as exc:
            raise HistoryError(f"kv: operation without a key: {op.input!r}") from exc
    return list(by_key.values())


REGISTER = Model(
    name="register",
    init=lambda: None,
    step=_register_step,
    read_only=_register_read_only,
    describe_operation=_describe_register,
)
"""A single read/write register, initially ``None``."""

CAS_REGISTER = Model(
    name="cas_register",
    init=lambda: None,
    step=_cas_register_step,
    read_only=_register_read_only,
    describe_operation=_describe_register,
)
"""A single read/write/compare-and-swap register, initially ``None``."""

KV = Model(
    name="kv",
    init=lambda: "",
    step=_kv_step,
    partition=partition_by_key,
    read_only=_kv_read_only,
    describe_operation=_describe_register,
)
"""A string-valued map with get/put/append, checked key by key."""
