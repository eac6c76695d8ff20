"""`History`: record client operations during a simulation or a live test.

>>> from raftx.testing.linearizability import REGISTER
>>> h = History()
>>> w = h.invoke("a", ("write", 1))          # times default to a logical clock
>>> r = h.invoke("b", ("read",))
>>> h.complete(r, 1)                          # the read saw the concurrent write...
>>> lost = h.invoke("c", ("write", 2))        # ...a write whose reply was lost: left open
>>> h.complete(w, None)
>>> h.check(REGISTER).verdict.value
'ok'

Each operation gets one of three endings:

* `History.complete` — it returned ``output`` at ``time``;
* `History.fail` — it *certainly* did not take effect (e.g. rejected before it was
  proposed); it is dropped from the history;
* none — its outcome is unknown (timeout, lost connection, crashed client): it may
  take effect at any time after its call, or never (output `UNKNOWN`, return time
  ``math.inf``). A client that gave up on an operation should not be reused for a
  new one in Jepsen's model, but the checker does not rely on that.

Use either explicit times (e.g. a simulator's virtual clock or
``time.monotonic_ns()``) for every event or none at all (a logical clock that
advances by one per event); mixing the two would compare unrelated clocks.
The recorder is thread-safe.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from raftx.errors import HistoryError
from raftx.testing.linearizability.checker import CheckResult, check_operations
from raftx.testing.linearizability.model import UNKNOWN, Model, Operation, _check_time

__all__ = ["History"]

_OPEN = object()  # output placeholder of an operation that has not returned
_FAILED = object()  # output placeholder of an operation that certainly did not happen


@dataclass(slots=True)
class _Record:
    """One invoked operation and what is known of its outcome so far."""

    client_id: Any
    input: Any
    call: float
    output: Any = _OPEN
    return_time: float = math.inf


class History:
    """A recorder of invoked/completed operations; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[_Record] = []
        self._clock = 0

    def _now(self, time: float | None) -> float:
        """The explicit ``time`` (validated) or the next tick of the logical clock."""
        if time is None:
            self._clock += 1
            return self._clock
        _check_time("time", time)
        if math.isinf(time):
            raise HistoryError(f"event time must be finite, got {time!r}")
        return time

    def _record(self, op: int) -> _Record:
        """The record behind a handle returned by `invoke`."""
        if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < len(self._records):
            raise HistoryError(f"no such operation: {op!r}")
        rec = self._records[op]
        if rec.output is not _OPEN:
            state = "failed" if rec.output is _FAILED else "completed"
            raise HistoryError(f"operation {op} already {state}")
        return rec

    def invoke(self, client_id: Any, input: Any, time: float | None = None) -> int:
        """Record the call of ``input`` by ``client_id``; returns the operation's handle."""
        with self._lock:
            self._records.append(_Record(client_id, input, self._now(time)))
            return len(self._records) - 1

    def complete(self, op: int, output: Any, time: float | None = None) -> None:
        """Record that operation ``op`` returned ``output`` at ``time``.

        ``output`` may be `UNKNOWN` for an operation known to have finished by
        ``time`` with an unseen result (e.g. a read that timed out).
        """
        with self._lock:
            rec = self._record(op)
            at = self._now(time)
            if at < rec.call:
                raise HistoryError(f"operation {op} returns ({at}) before its call ({rec.call})")
            rec.output = output
            rec.return_time = at

    def fail(self, op: int) -> None:
        """Record that operation ``op`` certainly did not take effect (it is dropped)."""
        with self._lock:
            self._record(op).output = _FAILED

    def __len__(self) -> int:
        """The number of operations invoked so far (failed ones included)."""
        return len(self._records)

    @property
    def pending(self) -> int:
        """How many operations have no outcome yet (they count as unknown)."""
        with self._lock:
            return sum(1 for r in self._records if r.output is _OPEN)

    def operations(self) -> list[Operation]:
        """The history as `Operation` objects: completed ones as recorded, open ones
        with output `UNKNOWN` and return time ``math.inf``, failed ones left out."""
        with self._lock:
            records = list(self._records)
        out = []
        for r in records:
            if r.output is _FAILED:
                continue
            if r.output is _OPEN:
                out.append(Operation(r.client_id, r.input, r.call, UNKNOWN, math.inf))
            else:
                out.append(Operation(r.client_id, r.input, r.call, r.output, r.return_time))
        return out

    def check(self, model: Model, budget: int | None = None, timeout: float | None = None) -> CheckResult:
        """`check_operations` on `operations`."""
        return check_operations(model, self.operations(), budget=budget, timeout=timeout)
