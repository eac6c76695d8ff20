"""`replicated` methods and the `ReplicatedObject` base class.

A replicated object is a plain Python object whose state changes only through its
``@replicated`` methods. Calling one on a bound object (see
`raftx.objects.ObjectStateMachine`) does not run it: it returns a coroutine that
proposes the call through the node's Raft log (forwarded to the leader) and, once
the entry is applied, returns the method's result as every replica computed it.
The method body runs on every replica at apply time, in log order, so it must be
deterministic: no clocks, randomness or I/O (log-carried time is
`ReplicatedObject.log_time`). Methods without the decorator run locally and only
read.

Versioning (rolling upgrades): ``@replicated(version=N)`` marks a method added in
version ``N`` of the object's method set (default 0). A node refuses to propose it
until the cluster's active version (replicated, raised by
`ObjectStateMachine.upgrade`) is at least ``N``; so a new method is never applied by
a replica still running code that lacks it. Upgrade every node's code first, then
call ``await sm.upgrade(N)``; a node whose code is older than the active version
stops (`raftx.errors.Fatal`) instead of diverging. Methods are never removed or
changed in meaning within a version.

State for snapshots: `ReplicatedObject.repl_getstate` returns the instance's
attributes (not starting with ``_repl``) and must be msgpack-encodable; override
``repl_getstate`` / ``repl_setstate`` for other shapes (sets, deques, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from raftx.objects.machine import ObjectStateMachine

__all__ = ["ReplicatedObject", "replicated", "replicated_methods"]

_MARK = "__raftx_replicated__"


@overload
def replicated(fn: Callable[..., Any]) -> Callable[..., Any]: ...


@overload
def replicated(*, version: int = 0) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...


def replicated(fn: Any = None, *, version: int = 0) -> Any:
    """Mark a method of a `ReplicatedObject` as replicated (see the module docstring).

    Usable bare (``@replicated``) or with the version of the method set that added it
    (``@replicated(version=2)``). On a bound object the call returns a coroutine:
    ``await counter.inc(5)``.
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise TypeError(f"version must be an int >= 0, not {version!r}")

    def mark(f: Any) -> Any:
        @functools.wraps(f)
        def propose(self: ReplicatedObject, *args: Any, **kwargs: Any) -> Any:
            machine = self._repl_machine
            if machine is None:
                raise RuntimeError(f"{type(self).__name__} is not bound: pass it to ObjectStateMachine([...])")
            return machine.propose(self, f.__name__, args, kwargs)

        setattr(propose, _MARK, (f, version))
        return propose

    return mark(fn) if fn is not None else mark


def replicated_methods(cls: type) -> dict[str, tuple[Callable[..., Any], int]]:
    """``name -> (the undecorated function, version)`` of every replicated method of ``cls``."""
    out: dict[str, tuple[Callable[..., Any], int]] = {}
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            mark = getattr(attr, _MARK, None)
            if mark is not None:
                out[name] = mark
    return out


class ReplicatedObject:
    """Base class of replicated objects (PySyncObj's ``SyncObjConsumer``).

    Example::

        class Account(ReplicatedObject):
            def __init__(self) -> None:
                super().__init__()
                self.balance = 0

            @replicated
            def deposit(self, amount: int) -> int:
                self.balance += amount
                return self.balance

            @replicated(version=1)        # added in version 1 of the method set
            def withdraw(self, amount: int) -> int:
                self.balance -= amount
                return self.balance
    """

    def __init__(self) -> None:
        self._repl_machine: ObjectStateMachine | None = None

    @property
    def log_time(self) -> float:
        """Seconds since the epoch as carried by the log (the leader's clock, never
        going back; the same on every replica at the same log index)."""
        machine = self._repl_machine
        return 0.0 if machine is None else machine.log_time_ms / 1000

    def repl_getstate(self) -> Any:
        """The object's state for a snapshot (msgpack-encodable)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_repl")}

    def repl_setstate(self, state: Any) -> None:
        """Restore `repl_getstate` output (from a snapshot)."""
        if not isinstance(state, dict):
            raise TypeError(f"{type(self).__name__} state must be a dict, not {type(state).__name__}")
        for k, v in state.items():
            setattr(self, k, v)

    def repl_on_clock(self, now_ms: int) -> None:
        """Called on every replica when the log's clock advances (``now_ms``); e.g. to
        expire leases. Deterministic like a replicated method."""

    def repl_needs_clock(self) -> float | None:
        """Seconds between clock entries this object needs from the leader now (None:
        none; e.g. no lock is held)."""
        return None

    async def repl_tick(self) -> None:
        """Called periodically on every node (each `repl_needs_clock` seconds) while the
        object needs a clock: local upkeep such as refreshing this node's locks."""
