"""The etcd-grade key-value surface end to end over in-process nodes (real TCP on
127.0.0.1): revisions, ranges, transactions, leases (expiry through the log), watches
across a leader change, compaction, and the `Lock` / `Election` recipes."""

from __future__ import annotations

import asyncio

import pytest

from raftx.errors import BadCommand, Compacted, ElectionNotLeader, LeaseNotFound
from raftx.kv import Compare, Op
from raftx.kv.concurrency import Election, Lock
from tests.kv.kvkit import WAIT, KVCluster


async def test_revisions_range_and_prefix() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        r1 = await kv.put("a/1", b"x")
        r2 = await kv.put("a/2", b"y")
        r3 = await kv.put("b", b"z")
        assert r1 < r2 < r3
        assert await kv.get_with_revision("a/1") == (b"x", r1)
        assert await kv.get_with_revision("nope") is None
        assert await kv.prefix("a/") == [(b"a/1", b"x", r1), (b"a/2", b"y", r2)]
        assert await kv.range("a/2", None) == [(b"a/2", b"y", r2), (b"b", b"z", r3)]
        assert await kv.range("a", "b", limit=1, keys_only=True) == [(b"a/1", None, r1)]
        assert await kv.prefix("a/", linearizable=False) is not None
        r4 = await kv.delete("a/1")
        assert r4 == r3 + 1
        assert await kv.delete("a/1") == 0  # absent: no revision, falsy as before
        assert [k for k, _, _ in await kv.prefix("")] == [b"a/2", b"b"]
        assert await kv.put("a/2", b"y2") == r4 + 1


async def test_txn_compares_and_branches() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        rev = await kv.put("cfg", b"v1")
        ok, resp = await kv.txn(compare=[Compare.value("cfg") == b"v1", Compare.mod_revision("cfg") == rev],
                                success=[Op.put("cfg", b"v2"), Op.get("cfg"), Op.delete("gone")],
                                failure=[Op.get("cfg")])
        assert ok and resp == [rev + 1, (b"v2", rev + 1), 0]
        ok, resp = await kv.txn(compare=[Compare.value("cfg") == b"v1"], success=[Op.put("cfg", b"v3")],
                                failure=[Op.get("cfg")])
        assert not ok and resp == [(b"v2", rev + 1)]
        # create-if-absent: a missing key's mod revision is 0; a value compare on it is false
        ok, _ = await kv.txn(compare=[Compare.mod_revision("new") == 0], success=[Op.put("new", b"1")])
        assert ok and await kv.get("new") == b"1"
        ok, _ = await kv.txn(compare=[Compare.value("missing") != b"x"], success=[Op.put("m", b"1")])
        assert not ok and await kv.get("m") is None
        ok, _ = await kv.txn(compare=[Compare.mod_revision("cfg") > rev, Compare.value("cfg") >= b"v2"],
                             success=[Op.delete("cfg")])
        assert ok and await kv.get("cfg") is None
        with pytest.raises(LeaseNotFound):  # nothing applied when a put names a dead lease
            await kv.txn(success=[Op.put("x", b"1"), Op.put("y", b"1", lease=12345)])
        assert await kv.get("x") is None
        with pytest.raises(BadCommand):
            await kv.txn(success=[Op.put("x", b"1")] * 200)
        with pytest.raises(BadCommand):
            _ = Compare.mod_revision("x") == "1"


async def test_lease_revoke_keep_alive_and_expiry_through_the_log() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        lease = await kv.lease_grant(30)
        await kv.put("svc/a", b"1", lease=lease)
        await kv.put("svc/b", b"2", lease=lease)
        assert await kv.lease_keep_alive(lease) == 30.0
        rev = await kv.lease_revoke(lease)
        assert await kv.prefix("svc/") == []
        with pytest.raises(LeaseNotFound):
            await kv.lease_keep_alive(lease)
        with pytest.raises(LeaseNotFound):
            await kv.put("svc/c", b"3", lease=lease)
        # Expiry: decided by the leader's clock, carried by the log, applied by every node.
        short = await kv.lease_grant(0.3)
        async with kv.watch("tmp/", start_revision=rev + 1) as w:
            await kv.put("tmp/k", b"v", lease=short)
            await kv.put("tmp/keep", b"v")  # not attached: stays
            await kv.put("tmp/keep", b"w", lease=await kv.lease_grant(600))
            await kv.put("tmp/keep", b"x")  # a plain put detaches it again
            seen = []
            async with asyncio.timeout(WAIT):
                async for ev in w:
                    seen.append((ev.type, ev.key))
                    if ev.type == "delete":
                        break
        assert seen[-1] == ("delete", b"tmp/k")
        with pytest.raises(LeaseNotFound):
            await kv.lease_keep_alive(short)
        leader = await cl.leader()
        assert cl.servers[leader].lease_keeper.expiries_proposed >= 1
        applied = cl.rafts[leader].metrics().borrow().last_applied
        for raft in cl.rafts.values():  # the same state on every replica, once applied
            await raft.wait(WAIT).applied_index_at_least(applied.index if applied else None, "applied")
        states = {(sm.get(b"tmp/k"), sm.get(b"tmp/keep"), sm.revision) for sm in cl.sms.values()}
        assert len(states) == 1 and next(iter(states))[:2] == (None, b"x")


async def test_watch_survives_a_leader_change_without_gaps_or_duplicates() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        start = await kv.put("w/0", b"0")
        w = kv.watch("w/", start_revision=start)
        got: list[int] = []
        revs = [start]
        async with asyncio.timeout(WAIT * 2):
            for i in range(1, 6):
                revs.append(await kv.put(f"w/{i}", str(i)))
            await kv.put("other", b"not watched")
            async for ev in w:
                got.append(ev.mod_revision)
                if len(got) == 6:
                    break
            old = await cl.leader()
            await cl.stop(old)  # the watch's node, and the leader
            new = await cl.leader()
            assert new != old
            for i in range(6, 11):
                revs.append(await kv.put(f"w/{i}", str(i)))
            revs.append(await kv.delete("w/3"))
            async for ev in w:
                got.append(ev.mod_revision)
                if len(got) == len(revs):
                    break
        await w.close()
        assert got == revs


async def test_watch_from_a_compacted_revision_raises() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        for i in range(10):
            await kv.put("c", str(i))
        for sm in cl.sms.values():
            sm.history_keep = 3
        leader = await cl.leader()
        await (await cl.sms[leader].get_snapshot_builder()).build_snapshot()
        assert cl.sms[leader].compact_revision == 7
        kv.leader = leader
        with pytest.raises(Compacted) as exc:
            async for _ in kv.watch("c", start_revision=2):
                break
        assert exc.value.compact_revision == 7
        async with kv.watch("c", start_revision=8) as w:
            ev = await w.__anext__()
        assert (ev.type, ev.value, ev.mod_revision) == ("put", b"7", 8)


async def test_lock_excludes_and_hands_over_in_order() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        order: list[str] = []
        first = Lock(kv, "locks/job", ttl=10)
        await first.acquire()
        second = Lock(kv, "locks/job", ttl=10)
        waiter = asyncio.create_task(second.acquire())
        # the second contender's key is there, but it is not the oldest: it waits
        async with asyncio.timeout(WAIT):
            while len(await kv.prefix("locks/job/")) < 2:
                await asyncio.sleep(0.02)
        assert not waiter.done()
        order.append("first")
        await first.release()
        async with asyncio.timeout(WAIT):
            await waiter
        order.append("second")
        assert [k for k, _, _ in await kv.prefix("locks/job/")] == [second.key]
        await second.release()
        assert await kv.prefix("locks/job/") == [] and order == ["first", "second"]


async def test_a_dead_lock_holder_is_replaced_when_its_lease_expires() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        holder = Lock(kv, "locks/x", ttl=0.5)
        await holder.acquire()
        assert holder._keeper is not None
        holder._keeper.cancel()  # the holder dies: no more keep-alives
        nxt = Lock(kv, "locks/x", ttl=10)
        async with asyncio.timeout(WAIT):
            await nxt.acquire()
        assert await kv.prefix("locks/x/", keys_only=True) == [(nxt.key, None, nxt.revision)]
        await nxt.release()


async def test_election_campaign_leader_resign() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        a, b = Election(kv, "elect/svc", ttl=10), Election(kv, "elect/svc", ttl=10)
        assert await a.leader() is None
        await a.campaign("node-a")
        assert await a.leader() == b"node-a"
        task = asyncio.create_task(b.campaign("node-b"))
        async with asyncio.timeout(WAIT):
            while len(await kv.prefix("elect/svc/")) < 2:
                await asyncio.sleep(0.02)
        assert not task.done() and await b.leader() == b"node-a"
        await a.resign()
        async with asyncio.timeout(WAIT):
            await task
        assert await a.leader() == b"node-b"
        seen: list[bytes | None] = []
        async with asyncio.timeout(WAIT):
            async for value in a.observe():
                seen.append(value)
                if len(seen) == 1:
                    await b.resign()
                if len(seen) == 3:
                    break
                if len(seen) == 2:
                    await a.campaign("node-a2")
        assert seen == [b"node-b", None, b"node-a2"]
        await a.resign()


async def test_election_proclaim_changes_the_leaders_value_without_reelection() -> None:
    """etcd's Proclaim: the leader's new value reaches `leader` and `observe`; a waiting
    contender stays waiting (the order of the contenders does not change); only the
    leader may proclaim (`ElectionNotLeader`)."""
    async with KVCluster(3) as cl, cl.client() as kv:
        a, b = Election(kv, "elect/p", ttl=10), Election(kv, "elect/p", ttl=10)
        with pytest.raises(ElectionNotLeader):
            await a.proclaim("too early")  # never campaigned
        await a.campaign("a1")
        waiter = asyncio.create_task(b.campaign("b1"))
        async with asyncio.timeout(WAIT):
            while len(await kv.prefix("elect/p/")) < 2:
                await asyncio.sleep(0.02)
        with pytest.raises(ElectionNotLeader):
            await b.proclaim("b2")  # campaigning, not leading
        seen: list[bytes | None] = []
        async with asyncio.timeout(WAIT):
            async for value in a.observe():
                seen.append(value)
                if len(seen) == 1:
                    await a.proclaim("a2")
                elif len(seen) == 2:
                    await a.proclaim(b"a3")
                else:
                    break
        assert seen == [b"a1", b"a2", b"a3"]
        assert await b.leader() == b"a3" and not waiter.done()  # b still waits behind a
        with pytest.raises(BadCommand):
            await a.proclaim(123)  # type: ignore[arg-type]
        await a.resign()
        with pytest.raises(ElectionNotLeader):
            await a.proclaim("a4")  # resigned
        async with asyncio.timeout(WAIT):
            await waiter
        assert await a.leader() == b"b1"  # a's proclaimed value went with its lease
        assert b.lease is not None
        await kv.lease_revoke(b.lease)  # b's candidacy ends behind its back
        with pytest.raises(ElectionNotLeader):
            await b.proclaim("b3")
        assert await b.leader() is None and not b.leading
        await b.resign()


async def test_watch_from_now_sees_only_later_changes_under_its_prefix() -> None:
    async with KVCluster(3) as cl, cl.client() as kv:
        await kv.put("p/old", b"1")
        async with kv.watch("p/") as w:
            start = await w.start()  # fixes "now": the node's revision + 1
            assert start == (await kv.get_with_revision("p/old"))[1] + 1
            first = asyncio.ensure_future(w.__anext__())
            rev = await kv.put("q/other", b"x")
            rev2 = await kv.put("p/new", b"2")
            rev3 = await kv.delete("p/old")
            async with asyncio.timeout(WAIT):
                ev = await first
                ev2 = await w.__anext__()
        assert rev < rev2 < rev3
        assert (ev.type, ev.key, ev.value, ev.mod_revision) == ("put", b"p/new", b"2", rev2)
        assert (ev2.type, ev2.key, ev2.value, ev2.mod_revision) == ("delete", b"p/old", None, rev3)


@pytest.mark.parametrize("method, payload", [
    ("kv.range", [True, "not bytes", None, 0, False]),
    ("kv.range", [True, b"a", None, -1, False]),
    ("kv.range", [True, b"a"]),
    ("kv.watch", [b"p", 0, 10**9, 10]),      # wait beyond MAX_WATCH_WAIT_MS
    ("kv.watch", [b"p", 0, 10, 0]),          # no events allowed
    ("kv.watch", "nonsense"),
])
async def test_malformed_range_and_watch_requests_are_refused(method: str, payload: object) -> None:
    import msgpack

    from raftx.errors import RemoteError
    from raftx.network.client import RpcClient
    from raftx.network.raft_rpc import parse_addr
    from tests.kv.kvkit import CLUSTER

    async with KVCluster(3) as cl, cl.client() as kv:
        rev = await kv.put("a", b"1")
        leader = await cl.leader()
        host, port = parse_addr(cl.addrs[leader])
        async with RpcClient(host, port, cluster_name=CLUSTER, node_id=2**62 + 9, target_id=leader) as rpc:
            with pytest.raises(RemoteError) as exc:
                await rpc.call(method, msgpack.packb(payload, use_bin_type=True), WAIT)
            assert getattr(exc.value, "remote_type", "") == "BadCommand"
        assert await kv.get_with_revision("a") == (b"1", rev)  # the node still serves


async def test_longest_key_get_with_revision_and_bad_lease_ttls() -> None:
    from raftx.kv import commands as C

    async with KVCluster(3) as cl, cl.client() as kv:
        key = b"k" * C.MAX_KEY_BYTES
        rev = await kv.put(key, b"v")
        assert await kv.get_with_revision(key) == (b"v", rev)
        for ttl in (0, -1, float("nan"), float("inf"), True, "10"):
            with pytest.raises(BadCommand):
                await kv.lease_grant(ttl)  # type: ignore[arg-type]


async def test_a_new_leader_restarts_every_lease_countdown_on_its_own_clock() -> None:
    """The leader's clock alone decides (`raftx.kv.leases`): the old leader's elapsed time
    is not inherited, the new leader gives each lease its full TTL from its own start."""
    async with KVCluster(3) as cl, cl.client() as kv:
        now = {"t": 1000.0}
        for server in cl.servers.values():
            server.lease_keeper.clock = lambda: now["t"]
        lease = await kv.lease_grant(5)
        rev = await kv.put("eph", b"1", lease=lease)
        old = await cl.leader()
        cl.servers[old].lease_keeper._scan()  # its countdown starts at t=1000
        now["t"] += 4.5
        await cl.stop(old)
        new = await cl.leader()
        keeper = cl.servers[new].lease_keeper
        async with asyncio.timeout(WAIT):  # the new leader has applied the grant and the put
            while lease not in cl.sms[new].leases or cl.sms[new].revision < rev:
                await cl.sms[new].wait_applied()
        keeper._scan()
        now["t"] += 4.9  # 9.4 s since the grant on the old clock, 4.9 s on the new leader's
        keeper._scan()
        assert keeper.expiries_proposed == 0 and await kv.get("eph") == b"1"
        now["t"] += 0.2
        keeper._scan()
        assert keeper.expiries_proposed == 1
        async with kv.watch("eph", start_revision=rev + 1) as w:
            async with asyncio.timeout(WAIT):
                ev = await w.__anext__()
        assert (ev.type, ev.key) == ("delete", b"eph")
