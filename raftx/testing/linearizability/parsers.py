"""Readers for two Jepsen history formats (and worked examples of building histories).

Both formats have no timestamps: the line number is the time of each event, so
only the order of lines matters.

* `parse_jepsen_register_log` — the etcd 0.4 Jepsen logs (one register, read /
  write / cas) used by Knossos and Porcupine; check them with `CAS_REGISTER`.
* `parse_kv_edn` — EDN maps ``{:process P, :type :invoke|:ok, :f :get|:put|:append,
  :key "K", :value "V"}``; check them with `KV`.

An invocation without a matching completion by the end of the input has an unknown
outcome (output `UNKNOWN`, return time ``math.inf``).

>>> ops = parse_jepsen_register_log('''
... INFO  jepsen.util - 0	:invoke	:write	1
... INFO  jepsen.util - 1	:invoke	:read	nil
... INFO  jepsen.util - 0	:ok	:write	1
... INFO  jepsen.util - 1	:ok	:read	1
... ''')
>>> [(op.input, op.output) for op in ops]
[(('write', 1), None), (('read',), 1)]
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from raftx.errors import HistoryError
from raftx.testing.linearizability.model import UNKNOWN, Operation

__all__ = ["parse_jepsen_register_log", "parse_kv_edn"]

_JEPSEN_LINE = re.compile(r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:(\w+)\s+(.*?)\s*$")
_CAS_ARGS = re.compile(r"^\[\s*(-?\d+)\s+(-?\d+)\s*\]$")
_INT = re.compile(r"^-?\d+$")
_EDN_LINE = re.compile(
    r'^\{:process\s+(\d+),\s*:type\s+:(\w+),\s*:f\s+:(\w+),\s*:key\s+"((?:[^"\\]|\\.)*)",'
    r'\s*:value\s+(nil|"(?:[^"\\]|\\.)*")\s*\}$'
)


def _read_text(path_or_text: str | os.PathLike[str]) -> str:
    """A `pathlib.Path` (or a one-line ``str`` naming an existing file) is read; any
    other ``str`` is the history text itself."""
    if isinstance(path_or_text, os.PathLike):
        return Path(path_or_text).read_text(encoding="utf-8")
    if not isinstance(path_or_text, str):
        raise HistoryError(f"expected a path or the history text, got {type(path_or_text).__name__}")
    if "\n" not in path_or_text and path_or_text and os.path.isfile(path_or_text):
        return Path(path_or_text).read_text(encoding="utf-8")
    return path_or_text


class _Open:
    """Invocations awaiting their completion, by process, with line-number times."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[Any, int]] = {}
        self.ops: list[Operation | None] = []
        self.slot: dict[int, int] = {}

    def invoke(self, process: int, inp: Any, line: int) -> None:
        if process in self.pending:
            raise HistoryError(f"line {line}: process {process} invokes while its last operation is open")
        self.pending[process] = (inp, line)
        self.slot[process] = len(self.ops)
        self.ops.append(None)  # keeps operations in call order

    def finish(self, process: int, output: Any, line: int, expect: Any = None) -> None:
        if process not in self.pending:
            raise HistoryError(f"line {line}: process {process} completes an operation it never invoked")
        inp, call = self.pending.pop(process)
        if expect is not None and inp != expect:
            raise HistoryError(f"line {line}: completion {expect!r} does not match invocation {inp!r}")
        self.ops[self.slot.pop(process)] = Operation(process, inp, call, output, line)

    def drop(self, process: int, line: int) -> None:
        """The open operation certainly did not happen."""
        if process not in self.pending:
            raise HistoryError(f"line {line}: process {process} fails an operation it never invoked")
        del self.pending[process]
        self.slot.pop(process)

    def abandon(self, process: int, line: int) -> None:
        """The client gave up (Jepsen ``:info``): the outcome stays unknown for good,
        and the process may invoke again."""
        if process not in self.pending:
            raise HistoryError(f"line {line}: process {process} abandons an operation it never invoked")
        inp, call = self.pending.pop(process)
        self.ops[self.slot.pop(process)] = Operation(process, inp, call, UNKNOWN, math.inf)

    def close(self) -> list[Operation]:
        for process, (inp, call) in self.pending.items():
            self.ops[self.slot[process]] = Operation(process, inp, call, UNKNOWN, math.inf)
        return [op for op in self.ops if op is not None]


def parse_jepsen_register_log(path_or_text: str | os.PathLike[str]) -> list[Operation]:
    """Parse a Jepsen etcd register log into `CAS_REGISTER` operations.

    Lines are ``INFO  jepsen.util - P  :TYPE  :F  VALUE``. ``:ok :read V`` returns
    ``V`` (``nil`` -> ``None``); ``:fail :read :timed-out`` ends the read with an
    unknown result; ``:ok``/``:fail :cas [A B]`` return ``True``/``False``; ``:info``
    (a timeout) makes the outcome unknown: it may take effect later or never.
    Lines not starting with ``INFO  jepsen.util`` are ignored; malformed ones raise
    `HistoryError`.
    """
    state = _Open()
    for lineno, raw in enumerate(_read_text(path_or_text).splitlines(), 1):
        line = raw.strip()
        if not line.startswith("INFO"):
            continue
        m = _JEPSEN_LINE.match(line)
        if m is None:
            raise HistoryError(f"line {lineno}: not a jepsen.util history line: {raw!r}")
        process, kind, f, value = int(m[1]), m[2], m[3], m[4]
        inp = _jepsen_input(f, value, lineno) if value != ":timed-out" else None
        if kind == "invoke":
            if inp is None:
                raise HistoryError(f"line {lineno}: invocation without arguments: {raw!r}")
            state.invoke(process, inp, lineno)
        elif kind == "ok":
            if inp is None:
                raise HistoryError(f"line {lineno}: completion without a value: {raw!r}")
            if f == "read":
                state.finish(process, None if value == "nil" else inp[1], lineno)
            else:
                state.finish(process, True if f == "cas" else None, lineno, expect=inp)
        elif kind == "fail" and f == "cas" and inp is not None:
            state.finish(process, False, lineno, expect=inp)
        elif kind == "fail" and f == "read":
            state.finish(process, UNKNOWN, lineno)  # a read has no effect: its window closes here
        elif kind == "info":
            state.abandon(process, lineno)  # a timeout: may take effect later, or never
        else:
            raise HistoryError(f"line {lineno}: unsupported completion {kind!r} {f!r}: {raw!r}")
    return state.close()


def _jepsen_input(f: str, value: str, lineno: int) -> Any:
    """The model input of a jepsen register line (``("read", V)`` for a read's value)."""
    if f == "read":
        if value == "nil":
            return ("read",)
        if _INT.match(value):
            return ("read", int(value))
    elif f == "write" and _INT.match(value):
        return ("write", int(value))
    elif f == "cas":
        m = _CAS_ARGS.match(value)
        if m:
            return ("cas", int(m[1]), int(m[2]))
    raise HistoryError(f"line {lineno}: cannot parse :{f} {value!r}")


def _edn_string(token: str) -> str | None:
    """An EDN string literal (or ``nil``) as a Python value."""
    if token == "nil":
        return None
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), token[1:-1])


def parse_kv_edn(path_or_text: str | os.PathLike[str]) -> list[Operation]:
    """Parse Jepsen key-value EDN lines into `KV` operations.

    ``:invoke :get`` (value ``nil``) then ``:ok :get`` with the value read (``nil``
    -> ``""``); ``:put``/``:append`` carry the value on both lines. ``:fail`` drops
    the operation (it did not happen); ``:info`` leaves its outcome unknown. Blank lines are
    ignored; anything else raises `HistoryError`.
    """
    state = _Open()
    for lineno, raw in enumerate(_read_text(path_or_text).splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _EDN_LINE.match(line)
        if m is None:
            raise HistoryError(f"line {lineno}: not a kv EDN history line: {raw!r}")
        process, kind, f, key, value = int(m[1]), m[2], m[3], _edn_string(f'"{m[4]}"'), _edn_string(m[5])
        if f not in ("get", "put", "append"):
            raise HistoryError(f"line {lineno}: unknown function :{f}")
        if kind == "invoke":
            if f != "get" and value is None:
                raise HistoryError(f"line {lineno}: :{f} without a value")
            state.invoke(process, ("get", key) if f == "get" else (f, key, value), lineno)
        elif kind == "ok":
            if f == "get":
                state.finish(process, value or "", lineno, expect=("get", key))
            else:
                state.finish(process, None, lineno, expect=(f, key, value))
        elif kind == "fail":
            state.drop(process, lineno)
        elif kind == "info":
            state.abandon(process, lineno)
        else:
            raise HistoryError(f"line {lineno}: unknown type :{kind}")
    return state.close()
