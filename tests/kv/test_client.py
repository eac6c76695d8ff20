"""KVClient against a real 3-node cluster of in-process nodes over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio

import msgpack
import pytest

from raftx.errors import BadCommand, ConfigError, KVError, RemoteError, Timeout
from raftx.kv import KVClient
from raftx.kv import commands as C
from raftx.kv import protocol as P
from raftx.launcher import free_ports
from raftx.network.client import RpcClient
from raftx.network.raft_rpc import parse_addr

from kvkit import CLUSTER, WAIT, KVCluster

pytestmark = pytest.mark.timeout(120)


async def test_put_get_delete_cas() -> None:
    async with KVCluster() as cl, cl.client() as kv:
        await kv.put("a", b"1")
        assert await kv.get("a") == b"1"
        assert await kv.get(b"missing") is None
        assert await kv.cas("a", b"0", b"2") is False
        assert await kv.cas("a", b"1", b"2") is True
        assert await kv.get("a") == b"2"
        assert await kv.cas("new", None, "x") is True
        assert await kv.cas("new", None, "y") is False
        assert await kv.delete("a")  # the revision of the delete: truthy when the key existed
        assert await kv.delete("a") == 0
        assert await kv.get("a") is None
        # every replica applied the same state (§5.3 log matching → same state machine)
        leader = await cl.leader()
        applied = cl.rafts[leader].metrics().borrow().last_applied
        for i, r in cl.rafts.items():
            await r.wait(WAIT).applied_index_at_least(applied.index, f"node {i} applied")
            assert dict(cl.sms[i].data) == {b"new": b"x"}


async def test_follows_redirect_from_a_follower() -> None:
    async with KVCluster() as cl:
        leader = await cl.leader()
        follower = next(i for i in cl.rafts if i != leader)
        async with KVClient([f"{follower}={cl.addrs[follower]}"], cluster_name=CLUSTER, timeout=WAIT) as kv:
            await kv.put("k", b"v")
            assert kv.leader == leader
            assert kv.nodes[leader] == cl.addrs[leader]  # learned from the redirect
            assert await kv.get("k") == b"v"


async def test_concurrent_operations_are_batched() -> None:
    async with KVCluster() as cl, cl.client(max_in_flight=2) as kv:
        await kv.put("warm", b"up")
        before = kv.requests
        await asyncio.gather(*(kv.put(f"k{i}", bytes([i % 256]) * 100) for i in range(500)))
        assert kv.requests - before < 500
        values = await asyncio.gather(*(kv.get(f"k{i}") for i in range(500)))
        assert values == [bytes([i % 256]) * 100 for i in range(500)]


async def test_a_burst_is_spread_over_the_free_request_slots() -> None:
    """500 puts queued at once with 4 free slots leave as 4 pipelined requests of 125,
    not one request of 500 that the next ones wait behind."""
    async with KVCluster() as cl, cl.client(max_in_flight=4) as kv:
        await kv.put("warm", b"up")
        sizes: list[int] = []
        start = kv._start

        def recording(kind: str, ops: list) -> None:
            sizes.append(len(ops))
            start(kind, ops)

        kv._start = recording  # type: ignore[method-assign]
        await asyncio.gather(*(kv.put(f"k{i}", b"v") for i in range(500)))
        assert sizes == [125, 125, 125, 125]
        assert await kv.get("k499") == b"v"


async def test_close_fails_the_writes_it_interrupts() -> None:
    """Writes in flight (a quorum lost, so neither answered nor timed out) fail with
    KVError("client closed") when the client closes; none is left waiting forever."""
    async with KVCluster() as cl:
        kv = cl.client(attempt_timeout=0.2)
        await kv.put("warm", b"up")
        leader = await cl.leader()
        for i in [i for i in list(cl.servers) if i != leader]:
            await cl.stop(i)
        writes = [asyncio.ensure_future(kv.put(f"k{i}", b"v")) for i in range(10)]
        while kv.requests < 3:  # the first attempt and retries are out
            await asyncio.sleep(0.01)
        async with asyncio.timeout(10):
            await kv.close()
            results = await asyncio.gather(*writes, return_exceptions=True)
        assert all(isinstance(r, KVError) and "client closed" in str(r) for r in results), results


async def test_writes_survive_leader_failover() -> None:
    async with KVCluster() as cl, cl.client(attempt_timeout=1.0) as kv:
        for i in range(20):
            await kv.put(f"before{i}", str(i))
        old = await cl.leader()
        # writes keep flowing while the leader goes away
        writer = asyncio.ensure_future(asyncio.gather(*(kv.put(f"during{i}", str(i)) for i in range(50))))
        await cl.stop(old)
        await writer
        new = await cl.leader()
        assert new != old
        for i in range(20):
            assert await kv.get(f"before{i}") == str(i).encode()
        for i in range(50):
            assert await kv.get(f"during{i}") == str(i).encode()


async def test_retried_write_applies_once_end_to_end() -> None:
    async with KVCluster() as cl:
        leader = await cl.leader()
        host, port = parse_addr(cl.addrs[leader])
        async with RpcClient(host, port, cluster_name=CLUSTER, node_id=2**62 + 5, target_id=leader) as rpc:
            incr = C.encode_cas("ctr", None, b"1", client_id=777, serial=1, acked=1)
            first = P.decode_reply(await rpc.call(P.WRITE, P.encode_write([incr]), WAIT))
            # someone else changes the key; then our "lost" write is retried (same serial)
            other = C.encode_put("ctr", b"9", client_id=778, serial=1, acked=1)
            await rpc.call(P.WRITE, P.encode_write([other]), WAIT)
            again = P.decode_reply(await rpc.call(P.WRITE, P.encode_write([incr]), WAIT))
            assert first == again == [P.REPLY_RESULTS, [[C.OK, 1]]]  # the revision of the one write
            read = P.decode_reply(await rpc.call(P.READ, P.encode_read(True, [b"ctr"]), WAIT))
            assert read == [P.REPLY_RESULTS, [[C.OK, b"9"]]]


@pytest.mark.parametrize("method,payload", [
    (P.WRITE, b"\xc1garbage"),
    (P.WRITE, msgpack.packb([])),
    (P.WRITE, msgpack.packb([b"\x93\x01\x02"])),
    (P.WRITE, msgpack.packb(["not bytes"])),
    (P.READ, msgpack.packb([True])),
    (P.READ, msgpack.packb([True, ["str key"]])),
    ("kv.nope", b""),
])
async def test_malformed_requests_are_refused_and_change_nothing(method: str, payload: bytes) -> None:
    async with KVCluster() as cl, cl.client() as kv:
        await kv.put("keep", b"1")
        leader = await cl.leader()
        before = cl.rafts[leader].metrics().borrow().last_log_index
        host, port = parse_addr(cl.addrs[leader])
        async with RpcClient(host, port, cluster_name=CLUSTER, node_id=2**62 + 6, target_id=leader) as rpc:
            with pytest.raises(RemoteError):
                await rpc.call(method, payload, WAIT)
        assert cl.rafts[leader].metrics().borrow().last_log_index == before  # nothing proposed
        assert await kv.get("keep") == b"1"


async def test_client_side_validation() -> None:
    with pytest.raises(ConfigError):
        KVClient(["127.0.0.1"])  # no port
    with pytest.raises(ConfigError):
        KVClient([])
    with pytest.raises(ConfigError):
        KVClient(["x=127.0.0.1:7001"])
    with pytest.raises(ConfigError):
        KVClient("1=127.0.0.1:7001")
    async with KVClient({1: "127.0.0.1:1"}) as kv:
        with pytest.raises(BadCommand):
            await kv.put(5, b"v")  # type: ignore[arg-type]
        with pytest.raises(BadCommand):
            await kv.put("k", 1.5)  # type: ignore[arg-type]


async def test_timeout_when_no_node_answers() -> None:
    (port,) = free_ports(1)
    async with KVClient([f"1=127.0.0.1:{port}"], timeout=0.5, attempt_timeout=0.2) as kv:
        with pytest.raises(Timeout, match="may have been applied"):
            await kv.put("k", b"v")
        with pytest.raises(Timeout):
            await kv.get("k")
        with pytest.raises(Timeout):
            await kv.status()


async def test_timeout_without_quorum() -> None:
    async with KVCluster() as cl, cl.client(timeout=2.0, attempt_timeout=0.5) as kv:
        await kv.put("k", b"v")
        leader = await cl.leader()
        for i in [i for i in cl.rafts if i != leader]:
            await cl.stop(i)
        with pytest.raises(Timeout):
            await kv.put("k", b"w")
        with pytest.raises(Timeout):
            await kv.get("k")  # a linearizable read needs a quorum too (thesis §6.4)
        assert await kv.get("k", linearizable=False) == b"v"


async def test_status_and_stale_read_on_a_follower() -> None:
    async with KVCluster() as cl, cl.client() as kv:
        await kv.put("s", b"1")
        leader = await cl.leader()
        st = await kv.status(leader)
        assert st["id"] == leader and st["state"] == "Leader" and st["leader"] == leader
        assert st["members"] == [1, 2, 3] and st["keys"] == 1 and st["running"] is True
        assert set(st) == set(P.STATUS_FIELDS)
        follower = next(i for i in cl.rafts if i != leader)
        await cl.rafts[follower].wait(WAIT).applied_index_at_least(st["last_applied"], "follower applied")
        async with KVClient([f"{follower}={cl.addrs[follower]}"], cluster_name=CLUSTER, timeout=WAIT) as fk:
            assert await fk.get("s", linearizable=False) == b"1"
            assert (await fk.status(follower))["leader_addr"] == cl.addrs[leader]


async def test_plain_host_port_addresses_learn_the_node_ids() -> None:
    async with KVCluster() as cl:
        leader = await cl.leader()
        async with KVClient(list(cl.addrs.values()), cluster_name=CLUSTER, timeout=WAIT) as kv:
            assert all(k < 0 for k in kv.nodes)  # no id known before the first answer
            await kv.put("plain", b"1")
            assert await kv.get("plain") == b"1"
            assert kv.leader == leader
            assert kv.nodes[leader] == cl.addrs[leader]
            assert set(kv.nodes.values()) == set(cl.addrs.values())  # each address once


async def test_plain_follower_address_follows_the_redirect_and_status_names_the_node() -> None:
    async with KVCluster() as cl:
        leader = await cl.leader()
        follower = next(i for i in cl.rafts if i != leader)
        async with KVClient([cl.addrs[follower]], cluster_name=CLUSTER, timeout=WAIT) as kv:
            assert (await kv.status())["id"] == follower
            assert kv.nodes == {follower: cl.addrs[follower]}
            await kv.put("k", b"v")
            assert kv.leader == leader and kv.nodes[leader] == cl.addrs[leader]


async def test_plain_client_connection_cannot_call_raft_rpcs() -> None:
    async with KVCluster() as cl:
        host, port = parse_addr(cl.addrs[1])
        async with RpcClient(host, port, cluster_name=CLUSTER, node_id=99, target_id=None) as rpc:
            assert P.decode_status(await rpc.call(P.STATUS, b"", timeout=WAIT))["id"] == 1
            assert rpc.remote_id == 1
            with pytest.raises(RemoteError, match="client methods only"):
                await rpc.call("vote", b"", timeout=WAIT)
