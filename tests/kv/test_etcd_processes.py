"""The etcd-grade surface over three real ``raftx serve`` processes on loopback:
a watch that survives kill -9 of its node (the leader) without gaps or duplicates,
a lease whose holder keeps it through a leader change and whose expiry the new
leader drives through the log, transactions, and a node restarted from its
snapshot files (format 2) with the same revisions as the others."""

from __future__ import annotations

import asyncio

import pytest

from raftx.errors import LeaseNotFound
from raftx.kv import Compare, Op
from raftx.launcher import LocalCluster

pytestmark = [pytest.mark.durable, pytest.mark.timeout(180)]

WAIT = 30.0


async def test_watch_lease_txn_across_kill_and_restart() -> None:
    async with LocalCluster(3, node_args=["--snapshot-every", "20"]) as cluster, \
            cluster.client(timeout=WAIT, attempt_timeout=2.0) as kv:
        old = await cluster.wait_for_leader(WAIT)
        first = await kv.put("w/0", b"0")
        watch = kv.watch("w/", start_revision=first)
        revs = [first]
        got: list[int] = []
        lease = await kv.lease_grant(1.5)
        await kv.put("svc/me", b"up", lease=lease)
        async with asyncio.timeout(WAIT * 2):
            for i in range(1, 30):  # past --snapshot-every: snapshots are built
                revs.append(await kv.put(f"w/{i}", str(i)))
            async for ev in watch:
                got.append(ev.mod_revision)
                if len(got) == 10:
                    break
            await kv.lease_keep_alive(lease)
            cluster.kill(old)  # the leader, and the node the watch polls
            new = await cluster.wait_for_leader(WAIT, exclude=[old])
            await kv.lease_keep_alive(lease)  # kept alive across the leader change
            ok, _ = await kv.txn(compare=[Compare.value("svc/me") == b"up"], success=[Op.put("w/txn", b"t")])
            assert ok
            revs.append((await kv.get_with_revision("w/txn"))[1])
            for i in range(30, 40):
                revs.append(await kv.put(f"w/{i}", str(i)))
            async for ev in watch:
                got.append(ev.mod_revision)
                if len(got) == len(revs):
                    break
            assert got == revs
            # stop keeping it alive: the new leader's clock expires it, through the log
            async for ev in kv.watch("svc/", start_revision=first):
                if ev.type == "delete":
                    break
            with pytest.raises(LeaseNotFound):
                await kv.lease_keep_alive(lease)
        await watch.close()

        cluster.restart(old)  # loads its newest snapshot file, then catches up
        async with asyncio.timeout(WAIT):
            while True:
                st = await cluster.statuses()
                if old in st and new in st and st[old]["revision"] == st[new]["revision"] \
                        and st[old]["last_applied"] == st[new]["last_applied"]:
                    break
                await asyncio.sleep(0.1)
        assert st[old]["compact_revision"] <= st[old]["revision"]
        rows = await kv.prefix("w/", linearizable=False)
        assert len(rows) == 41
