"""Three raftx key-value node *processes* on loopback: kill -9 the leader under load.

The survivors elect a new leader and keep committing (§5.2); the killed node is
restarted from its data directory and catches up (§5.3); every write acknowledged
before the kill is still readable (Leader Completeness, §5.4). Every wait is bounded.
"""

from __future__ import annotations

import asyncio

import pytest

from raftx.errors import Timeout
from raftx.kv import KVClient
from raftx.launcher import LocalCluster

pytestmark = [pytest.mark.durable, pytest.mark.timeout(180)]  # ~5 s: runs in CI (issue #5)

WAIT = 30.0


class Load:
    """``workers`` tasks each writing its own keys one after another; records what was acknowledged."""

    def __init__(self, kv, workers: int = 8) -> None:
        self.kv = kv
        self.acked: dict[str, bytes] = {}
        self.unknown = 0
        self._changed = asyncio.Condition()
        self._stop = False
        self._tasks = [asyncio.ensure_future(self._worker(w)) for w in range(workers)]

    async def _worker(self, w: int) -> None:
        i = 0
        while not self._stop:
            key, value = f"load-{w}-{i}", f"{w}:{i}".encode() * 10
            try:
                await self.kv.put(key, value)
            except Timeout:
                self.unknown += 1  # outcome unknown: not counted as acknowledged
            else:
                self.acked[key] = value
                async with self._changed:
                    self._changed.notify_all()
            i += 1

    async def wait_for(self, n: int) -> None:
        """Until at least ``n`` writes were acknowledged (bounded by WAIT)."""
        async with asyncio.timeout(WAIT):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.acked) >= n)

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)


async def test_kill_leader_under_load_then_restart_and_catch_up() -> None:
    async with LocalCluster(3) as cluster, cluster.client(timeout=WAIT, attempt_timeout=2.0) as kv:
        old = await cluster.wait_for_leader(WAIT)
        for i in range(50):
            await kv.put(f"pre-{i}", str(i))
        load = Load(kv)
        await load.wait_for(200)
        cluster.kill(old)
        acked_before_kill = dict(load.acked)
        new = await cluster.wait_for_leader(WAIT, exclude=[old])
        assert new != old
        await load.wait_for(len(acked_before_kill) + 200)  # the survivors keep committing
        await load.stop()

        cluster.restart(old)
        async with asyncio.timeout(WAIT):  # the restarted node catches up with the leader
            while True:
                st = await cluster.statuses()
                if old in st and new in st and st[old]["last_applied"] is not None \
                        and st[old]["last_applied"] >= st[new]["committed"]:
                    break
                await asyncio.sleep(0.1)
        assert st[old]["leader"] == new and st[old]["keys"] == st[new]["keys"]

        for i in range(50):
            assert await kv.get(f"pre-{i}") == str(i).encode()
        keys = sorted(acked_before_kill)
        got = await asyncio.gather(*(kv.get(k) for k in keys))
        assert got == [acked_before_kill[k] for k in keys]
        got_after = await asyncio.gather(*(kv.get(k) for k in sorted(load.acked)))
        assert got_after == [load.acked[k] for k in sorted(load.acked)]
        # the restarted node serves the same state (a stale read straight from it)
        async with KVClient([f"{old}={cluster.addrs[old]}"], cluster_name=cluster.cluster_name,
                            timeout=WAIT) as only_old:
            assert await only_old.get(keys[0], linearizable=False) == acked_before_kill[keys[0]]
    assert all(code == 0 for code in cluster.stop().values())


async def test_sigterm_stops_nodes_cleanly() -> None:
    async with LocalCluster(3) as cluster, cluster.client(timeout=WAIT) as kv:
        await kv.put("k", b"v")
        codes = await asyncio.to_thread(cluster.stop)
        assert codes == {1: 0, 2: 0, 3: 0}
