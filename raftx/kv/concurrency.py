"""`Lock` and `Election`: etcd's ``concurrency`` recipes on `KVClient` leases,
transactions and watches.

Both put a key ``NAME/<lease id>`` attached to a lease of their own (kept alive in
the background every ``ttl / 3``) and order the contenders by the keys' revisions
(each key is written once, so its mod revision is its creation revision): the
contender with the lowest revision holds the lock / leads. A waiter watches the
prefix from just after its own key's revision and looks again after every delete,
so a holder that releases, or dies and whose lease expires (`raftx.kv.leases`),
lets the next one in, in arrival order.

::

    async with Lock(kv, "locks/job", ttl=10):
        ...                                   # one holder at a time

    e = Election(kv, "elect/svc", ttl=10)
    await e.campaign(b"node-a")               # returns once leading
    await e.leader()                          # b"node-a"
    await e.proclaim(b"node-a, v2")           # a new value, no re-election
    async for value in e.observe(): ...       # the leader's value, then every change
    await e.resign()

If the lease is lost (no keep-alive got through within the TTL) `lost` is set:
the holder must assume it no longer holds the lock.

`Election.proclaim` (etcd's ``Proclaim``) cannot rewrite the contender's key: its
mod revision is what orders the contenders (the KV keeps no creation revision), and
a newer one would let a waiter believe it is the oldest. The proclaimed value goes
to a companion key ``NAME/<lease id>/value`` on the same lease (gone with the
candidacy), put in a transaction that first checks that the contender key is still
there unchanged; `Election.leader` and `Election.observe` read both in one prefix
read and prefer the companion's value. Contenders are the ``NAME/<16 hex digits>``
keys only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from raftx.errors import ElectionNotLeader, KVError, LeaseNotFound
from raftx.kv import commands as C
from raftx.kv.client import KVClient
from raftx.kv.txn import Compare, Op

__all__ = ["Election", "Lock"]

logger = logging.getLogger(__name__)


#: The companion key of a contender key that holds its proclaimed value.
_VALUE_SUFFIX = b"/value"


class _Contender:
    """A key under ``prefix`` attached to a kept-alive lease; waits to be the oldest."""

    #: Bytes a key may need after the name: "/" + 16 hex digits (+ the value suffix).
    _room = 17 + len(_VALUE_SUFFIX)

    def __init__(self, client: KVClient, name: str | bytes, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self.client = client
        self.prefix = C.to_bytes(name, "name", C.MAX_KEY_BYTES - self._room) + b"/"
        self.ttl = ttl
        self.lease: int | None = None
        self.key: bytes | None = None
        self.revision = 0
        #: Set when the lease could not be kept alive (the key is gone or going).
        self.lost = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    async def _enter(self, value: bytes) -> None:
        """Put our key (once) and wait until it is the oldest under the prefix."""
        c = self.client
        self.lease = await c.lease_grant(self.ttl)
        self.lost.clear()
        self._keeper = asyncio.get_running_loop().create_task(self._keep_alive(self.lease))
        key = self.key = self.prefix + b"%016x" % self.lease
        ok, resp = await c.txn(compare=[Compare.mod_revision(key) == 0],
                               success=[Op.put(key, value, lease=self.lease)], failure=[Op.get(key)])
        self.revision = resp[0] if ok else resp[0][1]
        try:
            await self._wait_oldest()
        except BaseException:
            await self._leave()
            raise

    def _contenders(self, rows: list[tuple[bytes, bytes | None, int]]) -> list[tuple[bytes, bytes | None, int]]:
        """The contender keys (``prefix`` + 16 hex digits) of a prefix read."""
        n = len(self.prefix) + 16
        return [r for r in rows if len(r[0]) == n]

    async def _wait_oldest(self) -> None:
        c = self.client
        async with c.watch(self.prefix, start_revision=self.revision + 1) as w:
            while True:
                rows = self._contenders(await c.prefix(self.prefix, keys_only=True))
                older = [r for r in rows if r[2] < self.revision]
                if not any(k == self.key for k, _, _ in rows):
                    raise KVError(f"{self.key!r} vanished while waiting (its lease {self.lease} ended)")
                if not older:
                    return
                async for ev in w:  # look again after the next delete under the prefix
                    if ev.type == "delete":
                        break

    async def _keep_alive(self, lease: int) -> None:
        try:
            while True:
                await asyncio.sleep(self.ttl / 3)
                await self.client.lease_keep_alive(lease)
        except LeaseNotFound:
            logger.warning("lease %d of %r is gone", lease, self.prefix)
            self.lost.set()
        except KVError as exc:
            logger.warning("keep-alive of lease %d failed: %s", lease, exc)
            self.lost.set()

    async def _leave(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        lease, self.lease = self.lease, None
        if lease is not None:
            with contextlib.suppress(LeaseNotFound):
                await self.client.lease_revoke(lease)  # deletes our key with it
        self.key = None


class Lock(_Contender):
    """A distributed mutex (etcd's ``concurrency.Mutex``); see the module docstring.
    ``async with Lock(kv, name, ttl=10)`` or `acquire` / `release`."""

    _room = 17

    async def acquire(self) -> None:
        """Wait until this holds the lock."""
        if self.key is not None:
            raise KVError("this Lock is already held (or being acquired)")
        await self._enter(b"")

    async def release(self) -> None:
        """Release the lock (revoke its lease). Idempotent."""
        await self._leave()

    async def __aenter__(self) -> Lock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()


class Election(_Contender):
    """Leader election (etcd's ``concurrency.Election``); see the module docstring."""

    def __init__(self, client: KVClient, name: str | bytes, ttl: float) -> None:
        super().__init__(client, name, ttl)
        #: True from the return of `campaign` until `resign` (etcd: a leader session).
        self.leading = False

    async def campaign(self, value: str | bytes) -> None:
        """Stand with ``value``; returns once this contender leads."""
        if self.key is not None:
            raise KVError("already campaigning")
        await self._enter(C.to_bytes(value, "value", C.MAX_VALUE_BYTES))
        self.leading = True

    async def proclaim(self, value: str | bytes) -> None:
        """Change the leader's value to ``value`` without a new election (etcd's
        ``Proclaim``): observers see it, the order of the contenders stays.

        Raises `raftx.errors.ElectionNotLeader` if this contender does not lead: it never
        campaigned, is still waiting, resigned, or its key is gone (its lease ended);
        `raftx.errors.BadCommand` for a value that is not bytes/str or too long.
        """
        v = C.to_bytes(value, "value", C.MAX_VALUE_BYTES)
        key, lease = self.key, self.lease
        if not self.leading or key is None or lease is None:
            raise ElectionNotLeader(f"not the leader of election {self.prefix[:-1]!r}: campaign first")
        # Only while our key is the one we put (not expired, not re-put): etcd compares
        # the leader key's creation revision; ours is written once, so its mod revision.
        ok, _ = await self.client.txn(compare=[Compare.mod_revision(key) == self.revision],
                                      success=[Op.put(key + _VALUE_SUFFIX, v, lease=lease)])
        if not ok:
            self.leading = False
            raise ElectionNotLeader(f"no longer the leader of election {self.prefix[:-1]!r}: "
                                    f"its key is gone (lease {lease} ended)")

    async def resign(self) -> None:
        """Stop leading or campaigning. Idempotent."""
        self.leading = False
        await self._leave()

    async def leader(self) -> bytes | None:
        """The current leader's value (None: nobody leads): its proclaimed value if it
        proclaimed one, else the value it campaigned with (one prefix read)."""
        rows = await self.client.prefix(self.prefix)
        contenders = self._contenders(rows)
        if not contenders:
            return None
        oldest: Any = min(contenders, key=lambda r: r[2])
        proclaimed: list[Any] = [r[1] for r in rows if r[0] == oldest[0] + _VALUE_SUFFIX]
        value: bytes = proclaimed[0] if proclaimed else oldest[1]  # (not keys_only: never None)
        return value

    async def observe(self) -> AsyncIterator[bytes | None]:
        """The leader's value now, then each time it changes (None: nobody leads), as
        etcd's ``Election.Observe``; runs until the caller stops iterating."""
        async with self.client.watch(self.prefix) as w:
            await w.start()  # every change after this point is delivered
            last = await self.leader()  # so nothing between this read and the watch is missed
            yield last
            async for _ev in w:
                current = await self.leader()
                if current != last:
                    last = current
                    yield current
