"""Operations and models: what the linearizability checker checks, and against what.

An `Operation` is one client request as observed from outside the system: who sent
it, what it asked (``input``), when it was sent (``call``), what came back
(``output``) and when (``return_time``). The interval ``[call, return_time]`` is
*closed*: two operations whose intervals touch at one instant are concurrent (the
rule Porcupine uses; with a monotonic clock it is the only safe one).

An operation whose outcome is unknown (a timeout, a lost connection, a client that
crashed) has ``output`` = `UNKNOWN` and, unless the client knows it cannot take
effect any more, ``return_time`` = ``math.inf``: it may take effect at any instant
after its call, or never.

A `Model` is a sequential specification: an initial state and a pure ``step``
function. The checker searches for an order of the operations that respects real
time and that ``step`` accepts (Herlihy & Wing's linearizability).

>>> op = Operation(client_id=1, input=("write", 5), call=0, output=None, return_time=3)
>>> op.concurrent_with(Operation(2, ("read",), 3, 5, 4))
True
>>> Operation(3, ("write", 7), 5, UNKNOWN, math.inf).unknown
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Final

from raftx.errors import HistoryError

__all__ = ["UNKNOWN", "Model", "Operation", "StepFn", "PartitionFn"]


class _Unknown:
    """The type of `UNKNOWN`; a singleton that survives copy and pickle."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"

    def __copy__(self) -> _Unknown:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Unknown:
        return self


UNKNOWN: Final = _Unknown()
"""The output of an operation whose outcome was never observed. Models accept any
state for it (a read with an unknown result says nothing; a write with an unknown
result may have been applied)."""


def _check_time(name: str, value: object) -> None:
    """Raise `HistoryError` unless ``value`` is a real, non-NaN number."""
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
        raise HistoryError(f"{name} must be a real number, got {value!r}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation: ``[call, return_time]`` is the closed interval in which
    it took effect (once), ``output`` what the client saw.

    ``client_id`` is informational (diagnostics); the checker does not require a
    client's operations to be sequential. ``return_time`` may be ``math.inf`` (the
    outcome is unknown and the operation may still take effect, or never will);
    ``call`` must be finite and not after ``return_time``.

    >>> Operation(0, ("read",), 10, 3, 9)
    Traceback (most recent call last):
    ...
    raftx.errors.HistoryError: operation returns (9) before its call (10)
    """

    client_id: Any
    input: Any
    call: float
    output: Any
    return_time: float

    def __post_init__(self) -> None:
        _check_time("call", self.call)
        _check_time("return_time", self.return_time)
        if math.isinf(self.call):
            raise HistoryError(f"call time must be finite, got {self.call!r}")
        if self.return_time < self.call:
            raise HistoryError(f"operation returns ({self.return_time}) before its call ({self.call})")

    @property
    def unknown(self) -> bool:
        """True if the client never saw the outcome (``output is UNKNOWN``)."""
        return self.output is UNKNOWN

    @property
    def pending(self) -> bool:
        """True if the operation may take effect at any time after its call, or never."""
        return math.isinf(self.return_time)

    def concurrent_with(self, other: Operation) -> bool:
        """True if neither operation returned strictly before the other was called."""
        return not (self.return_time < other.call or other.return_time < self.call)


StepFn = Callable[[Any, Any, Any], tuple[bool, Any]]
"""``step(state, input, output) -> (legal, next_state)``; must be pure."""

PartitionFn = Callable[[Sequence[Operation]], list[list[Operation]]]
"""Splits a history into independent sub-histories (P-compositionality)."""


@dataclass(frozen=True)
class Model:
    """A sequential specification to check a history against.

    * ``init()`` returns the initial state.
    * ``step(state, input, output)`` returns ``(legal, next_state)``: whether the
      operation ``input`` may return ``output`` in ``state``, and the state after it.
      It must be pure and must accept ``output is UNKNOWN`` in every state (an
      unknown outcome is consistent with anything). States must be hashable and
      compare by value (``==``/``hash``): the checker memoises visited
      ``(linearized set, state)`` pairs, so two equal states must mean the same
      future.
    * ``partition(operations)`` (optional) splits a history into sub-histories that
      are linearizable independently (Horn & Kroening's P-compositionality), e.g. one
      per key; each is then checked from ``init()``.
    * ``read_only(input, output)`` (optional, a search hint) returns True only if
      ``step`` never changes the state for this operation whenever it accepts it (a
      read; a compare-and-swap that failed). The checker then linearizes such an
      operation as soon as it is legal, without trying alternatives first (it can be
      moved before any other choice without changing a later step). A wrong hint
      makes verdicts wrong; leave it ``None`` when in doubt.

    >>> counter = Model(
    ...     name="counter",
    ...     init=lambda: 0,
    ...     step=lambda s, inp, out: (True, s + 1) if inp == "incr"
    ...     else (out is UNKNOWN or out == s, s),
    ... )
    >>> counter.step(counter.init(), "get", 0)
    (True, 0)
    """

    name: str
    init: Callable[[], Hashable]
    step: StepFn
    partition: PartitionFn | None = None
    read_only: Callable[[Any, Any], bool] | None = None
    describe_operation: Callable[[Any, Any], str] | None = None
    describe_state: Callable[[Any], str] | None = None

    def describe_op(self, op: Operation) -> str:
        """A one-line description of ``op`` for diagnostics."""
        if self.describe_operation is not None:
            return self.describe_operation(op.input, op.output)
        return f"{op.input!r} -> {op.output!r}"

    def describe(self, state: Any) -> str:
        """A one-line description of a model state for diagnostics."""
        if self.describe_state is not None:
            return self.describe_state(state)
        return repr(state)
