"""`ReplLockManager`: distributed locks that a dead holder loses after ``auto_unlock_time``.

Who holds a lock is replicated state; *when* it expires is decided by the log, never
by each replica's wall clock. The argument:

* Time enters the state only through ``CLOCK`` entries, which only a node that
  believes it is the leader proposes, stamped with its clock (`time.time`), while
  some lock is held (`raftx.objects.ObjectStateMachine`). An entry commits only as
  part of the log of the leader of its term (§5.3, §5.4), so the log's clock is the
  clock of successive leaders; every replica applies the same ``CLOCK`` entries at
  the same indexes and so drops a lock at the same index, whatever its own clock
  says. A replica with a wrong clock (or that was asleep) cannot expire a lock early
  or late: it only ever compares log time with log time.
* The log clock never goes back (``log_time_ms`` is the largest stamp applied): a
  new leader whose clock lags only delays expiry (safe: a lock then lives longer).
* A lock is held from the entry that took or refreshed it; its countdown starts at
  the first ``CLOCK`` entry after that (``deadline = tick + auto_unlock_time``), and
  it is dropped at the first ``CLOCK`` entry at or past the deadline. So, measured
  on the leaders' clocks, a lock lives at least ``auto_unlock_time`` after its last
  refresh, and a dead holder's lock is gone within about ``auto_unlock_time`` plus
  two clock periods (``auto_unlock_time / 4`` each).
* Assumption (the only clock one): the clocks of nodes that may lead advance at
  about real-time rate and disagree by at most some ``epsilon`` (NTP). A leader
  change with a clock ahead by ``epsilon`` can shorten a lock's life by up to
  ``epsilon``; choose ``auto_unlock_time`` well above it. Clients must still treat
  a lock as advisory near its expiry (as with any lease, e.g. etcd's): a paused
  holder may believe it holds a lock the log already dropped.

A live holder keeps its locks: each node refreshes the locks it holds every
``auto_unlock_time / 4`` (one log entry per node with locks). The holder is the
node's `ObjectStateMachine` session (``client_id``, new at every start), so a
restarted process holds no lock of its previous life.
"""

from __future__ import annotations

from typing import Any

from raftx.objects.base import ReplicatedObject, replicated

__all__ = ["ReplLockManager"]


class ReplLockManager(ReplicatedObject):
    """Named locks with automatic unlock (PySyncObj's ``ReplLockManager(autoUnlockTime)``).

    Example::

        locks = ReplLockManager(auto_unlock_time=10.0)   # seconds
        sm = ObjectStateMachine([locks]); ...; sm.bind(raft)
        if await locks.try_acquire("job-42"):
            try: ...
            finally: await locks.release("job-42")
    """

    def __init__(self, auto_unlock_time: float) -> None:
        super().__init__()
        if not isinstance(auto_unlock_time, (int, float)) or isinstance(auto_unlock_time, bool) \
                or not auto_unlock_time > 0:
            raise ValueError(f"auto_unlock_time must be a number of seconds > 0, not {auto_unlock_time!r}")
        self.auto_unlock_time = float(auto_unlock_time)
        #: name -> [holder client_id, deadline in log milliseconds or None (counting from the next tick)]
        self.locks: dict[str, list[Any]] = {}

    def _holder(self) -> int:
        machine = self._repl_machine
        if machine is None:
            raise RuntimeError("ReplLockManager is not bound: pass it to ObjectStateMachine([...])")
        return machine.client_id

    # -- the front end (this node is the holder) --------------------------------------

    async def try_acquire(self, name: str) -> bool:
        """Take lock ``name`` for this node, or refresh it if this node holds it; False
        if another holder has it."""
        return bool(await self.acquire_for(name, self._holder()))

    async def release(self, name: str) -> bool:
        """Release lock ``name`` if this node holds it; returns whether it did."""
        return bool(await self.release_for(name, self._holder()))

    def is_acquired(self, name: str) -> bool:
        """This node holds lock ``name`` (local applied state)."""
        held = self.locks.get(name)
        return held is not None and held[0] == self._holder()

    def is_locked(self, name: str) -> bool:
        """Some node holds lock ``name`` (local applied state)."""
        return name in self.locks

    # -- replicated -----------------------------------------------------------------------

    @replicated
    def acquire_for(self, name: str, holder: int) -> bool:
        """Take or refresh ``name`` for ``holder``."""
        if not isinstance(name, str):
            raise TypeError("lock names are str")
        held = self.locks.get(name)
        if held is not None and held[0] != holder:
            return False
        self.locks[name] = [holder, None]
        return True

    @replicated
    def release_for(self, name: str, holder: int) -> bool:
        """Release ``name`` if ``holder`` holds it."""
        held = self.locks.get(name)
        if held is None or held[0] != holder:
            return False
        del self.locks[name]
        return True

    @replicated
    def prolong_for(self, holder: int) -> int:
        """Refresh every lock of ``holder``; returns how many."""
        n = 0
        for held in self.locks.values():
            if held[0] == holder:
                held[1] = None
                n += 1
        return n

    # -- time (log-carried, see the module docstring) -------------------------------------

    def repl_on_clock(self, now_ms: int) -> None:
        ttl_ms = int(self.auto_unlock_time * 1000)
        for name in list(self.locks):
            held = self.locks[name]
            if held[1] is None:
                held[1] = now_ms + ttl_ms
            elif now_ms >= held[1]:
                del self.locks[name]

    def repl_needs_clock(self) -> float | None:
        return self.auto_unlock_time / 4 if self.locks else None

    async def repl_tick(self) -> None:
        holder = self._holder()
        if any(held[0] == holder for held in self.locks.values()):
            await self.prolong_for(holder)
