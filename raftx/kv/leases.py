"""`LeaseKeeper`: the leader's clock decides when key-value leases expire; the log
carries the decision.

Why expiry is safe and the same on every replica:

* **Replicas never expire on their own clocks.** A lease ends only when a
  ``LEASE_EXPIRE(lease_id, version)`` (or ``LEASE_REVOKE``) entry is applied. Every
  replica applies the same entries in the same order (§5.3), so every replica deletes
  the lease's keys at the same log position, with the same revisions, whatever its
  clock says; a follower with a fast or stopped clock changes nothing.
* **Only the leader proposes expiries, measured on its own monotonic clock.** It
  starts a lease's countdown (``ttl``) when its state machine has applied the lease's
  latest grant or keep-alive (``Lease.version``); it is not the leader any more →
  it forgets every countdown; a node that becomes leader starts every countdown
  afresh at the full TTL (as etcd's lessor does on promotion). A countdown therefore
  never starts before the client sent the grant / keep-alive it follows from, and
  leader changes only ever extend a lease.
* **A keep-alive wins over an expiry decided before it.** The expiry names the
  version it timed; applied after a keep-alive (a newer version) it is ignored
  (`raftx.kv.keyspace.Keyspace.lease_revoke`), so a lease refreshed in time is never
  dropped by a stale decision of an old or a slow leader. A keep-alive applied after
  the expiry answers `raftx.errors.LeaseNotFound`: the client learns the lease is gone.

Assumption (stated, as for any lease): clocks *rate* — not their value — are
comparable: if the client's clock runs at most a factor ``1 + d`` slower than the
leader's, a client that saw its keep-alive succeed may rely on the lease for
``ttl / (1 + d)`` after it *sent* that keep-alive. Clients keep alive every
``ttl / 3`` or so. The other direction is unbounded: a lease outlives its TTL while
there is no leader (nothing can be proposed), exactly like etcd.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TYPE_CHECKING

from raftx.errors import Fatal, RaftError
from raftx.kv.commands import LEASE_EXPIRE, encode_lease
from raftx.kv.state_machine import KVStateMachine
from raftx.runtime.tasks import first_of
from raftx.types import ServerState

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = ["LeaseKeeper"]

logger = logging.getLogger(__name__)

#: Longest wait between two looks at the leases (seconds) when nothing else wakes it.
MAX_IDLE = 1.0


class LeaseKeeper:
    """Runs on every node (`run`); acts only while the node leads (module docstring).

    ``clock``: a monotonic clock in seconds (the leader's own; tests may pass
    another one). `expiries_proposed` counts what it proposed.
    """

    def __init__(self, raft: Raft, sm: KVStateMachine, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.raft = raft
        self.sm = sm
        self.clock = clock
        self._deadlines: dict[int, tuple[int, float]] = {}  # lease id -> (version, local deadline)
        self._expiring: set[tuple[int, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.expiries_proposed = 0

    async def run(self) -> None:
        """Until the node stops (or the task is cancelled)."""
        # The role watch and the leases' own signal, not every applied batch: the
        # keeper must cost nothing per write (issue 15).
        rx = self.raft.server_metrics()
        try:
            while True:
                m = rx.borrow_and_update()
                if m.state is ServerState.SHUTDOWN:
                    return
                if m.state is not ServerState.LEADER:
                    self._deadlines.clear()  # a later term restarts every countdown
                    await rx.changed()
                    continue
                seen = self.sm.lease_version  # what this scan saw, read before anything runs
                delay = self._scan()
                await first_of([rx.changed(), self.sm.wait_leases_changed(seen), asyncio.sleep(delay)])
        except Fatal:
            return
        finally:
            for t in list(self._tasks):
                t.cancel()

    def _scan(self) -> float:
        """Start countdowns of new versions, propose expiries that are due; seconds to the next due."""
        now = self.clock()
        leases = self.sm.leases
        for lid in [lid for lid in self._deadlines if lid not in leases]:
            del self._deadlines[lid]
        next_due = MAX_IDLE
        for lid, lease in leases.items():
            tracked = self._deadlines.get(lid)
            if tracked is None or tracked[0] != lease.version:
                tracked = self._deadlines[lid] = (lease.version, now + lease.ttl_ms / 1000)
            version, deadline = tracked
            if now >= deadline:
                if (lid, version) not in self._expiring:
                    self._expire(lid, version)
            else:
                next_due = min(next_due, deadline - now)
        return max(next_due, 0.001)

    def _expire(self, lease_id: int, version: int) -> None:
        key = (lease_id, version)
        self._expiring.add(key)
        self.expiries_proposed += 1
        logger.info("lease %d (version %d) expired on the leader's clock; proposing its expiry", lease_id, version)

        async def propose() -> None:
            try:
                await self.raft.client_write(encode_lease(LEASE_EXPIRE, lease_id, version=version))
            except RaftError as exc:  # not the leader any more, stopped: the next leader decides
                logger.info("expiry of lease %d not committed: %s", lease_id, exc)
            finally:
                self._expiring.discard(key)

        task = asyncio.get_running_loop().create_task(propose())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
