"""Concurrent `raftx.kv.KVClient` load whose every operation goes into a `History`.

``workers`` tasks share ``clients`` clients (each client batches what its workers
issue at once). A worker loops: a ``put`` of a value no one wrote before, or a
linearizable ``get``, on one of ``keys`` keys (a ``lease_ratio`` share of the gets
are lease reads, ``KVClient.get(key, lease=True)``: `raftx.ReadPolicy.LEASE_READ`
on the leader; the history records them as any linearizable get and the checker
holds them to the same model); ``fillers`` more workers put
``fill_bytes``-byte values under keys of their own, each key once, so the state (and
every snapshot a lagging node receives) keeps growing. Outcomes for the checker (the `KV`
model): a put that returned is complete; a put that raised (timeout, connection
lost, leader changes past its deadline) has an *unknown* outcome (it may take
effect at any time after its call, or never); a get that raised is dropped (a read
changes nothing). Times are `time.monotonic` seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from raftx.errors import RaftError
from raftx.testing.linearizability import History

__all__ = ["Workload", "WorkloadCounts"]


@dataclass
class WorkloadCounts:
    """What the workload did so far."""

    puts_ok: int = 0
    puts_unknown: int = 0
    gets_ok: int = 0
    gets_failed: int = 0
    #: Of ``gets_ok``, the lease reads.
    lease_gets_ok: int = 0

    @property
    def ok(self) -> int:
        return self.puts_ok + self.gets_ok


class Workload:
    """See the module docstring; `start` it, `stop` it, then read `history`."""

    def __init__(self, cluster: Any, *, clients: int = 4, workers: int = 8, keys: int = 40,
                 fillers: int = 2, fill_bytes: int = 2048, op_timeout: float = 6.0,
                 rng: random.Random | None = None, lease_ratio: float = 0.5) -> None:
        self.cluster = cluster
        self.history = History()
        self.counts = WorkloadCounts()
        self._n_clients = clients
        self._n_workers = workers
        self._n_fillers = fillers
        self._fill_bytes = fill_bytes
        self._keys = [f"k{k:03d}" for k in range(keys)]
        self._op_timeout = op_timeout
        self._lease_ratio = lease_ratio
        self._rng = rng or random.Random()
        self._stack = AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        clients = [await self._stack.enter_async_context(
            self.cluster.client(timeout=self._op_timeout, attempt_timeout=min(2.0, self._op_timeout)))
            for _ in range(self._n_clients)]
        for w in range(self._n_workers):
            seed = self._rng.randrange(1 << 30)
            self._tasks.append(asyncio.ensure_future(self._worker(w, clients[w % len(clients)], random.Random(seed))))
        for f in range(self._n_fillers):
            self._tasks.append(asyncio.ensure_future(self._filler(self._n_workers + f, clients[f % len(clients)])))

    async def _worker(self, w: int, kv: Any, rng: random.Random) -> None:
        h, counts, n = self.history, self.counts, 0
        while not self._stopping:
            key = rng.choice(self._keys)
            if rng.random() < 0.5:
                n += 1
                value = f"w{w}-{n}"
                op = h.invoke(w, ("put", key, value), time.monotonic())
                try:
                    await kv.put(key, value.encode())
                except RaftError:
                    counts.puts_unknown += 1  # may still take effect: left open
                else:
                    h.complete(op, None, time.monotonic())
                    counts.puts_ok += 1
            else:
                lease = rng.random() < self._lease_ratio
                op = h.invoke(w, ("get", key), time.monotonic())  # the same model for both kinds
                try:
                    got = await kv.get(key, lease=lease)
                except RaftError:
                    h.fail(op)
                    counts.gets_failed += 1
                else:
                    h.complete(op, "" if got is None else got.decode(), time.monotonic())
                    counts.gets_ok += 1
                    counts.lease_gets_ok += lease

    async def _filler(self, w: int, kv: Any) -> None:
        h, counts, n = self.history, self.counts, 0
        pad = "." * self._fill_bytes
        while not self._stopping:
            n += 1
            key, value = f"fill-{w}-{n}", f"{n}{pad}"
            op = h.invoke(w, ("put", key, value), time.monotonic())
            try:
                await kv.put(key, value.encode())
            except RaftError:
                counts.puts_unknown += 1
            else:
                h.complete(op, None, time.monotonic())
                counts.puts_ok += 1

    async def stop(self) -> None:
        """Let every worker finish its current operation, then close the clients."""
        self._stopping = True
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self._stack.aclose()
