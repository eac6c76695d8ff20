"""A 3-node cluster over real TCP on 127.0.0.1 with durable stores in a temp dir.

Election, writes, ForwardToLeader, restart of every node from disk with its state
intact, a mutual-TLS cluster, and garbage sent to a node's RPC port.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from raftx import ServerState
from raftx.errors import ForwardToLeader, HandshakeRejected, RemoteError
from raftx.network import RpcClient, tls
from raftx.network.tls import make_test_pki
from tests.runtime.raftkit import WAIT, Cluster

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def tcp_cluster(tmp_path: Path):
    c = Cluster("tcp", durable=True, tmp=tmp_path)
    yield c
    await c.close()


async def test_tcp_cluster_replicates_and_survives_full_restart(tcp_cluster: Cluster) -> None:
    c = tcp_cluster
    leader = await c.initialize([1, 2, 3])
    resps = [await leader.client_write(b"v%d" % k) for k in range(50)]
    burst = await asyncio.gather(*(leader.client_write(b"b%d" % k) for k in range(200)))
    last = max(r.log_id.index for r in resps + list(burst))
    for r in c.nodes.values():
        await r.wait(WAIT).applied_index_at_least(last, "replicated")
    follower = next(r for r in c.nodes.values() if r is not leader)
    with pytest.raises(ForwardToLeader) as info:
        await follower.client_write(b"no")
    assert info.value.leader_node == c.addr(leader.id)
    before = {i: dict(c.sms[i].data) for i in c.nodes}
    terms = {i: c.nodes[i].metrics().borrow().current_term for i in c.nodes}

    for i in [1, 2, 3]:
        await c.stop(i)
    await c.start_many([1, 2, 3])
    for i, r in c.nodes.items():
        m = r.metrics().borrow()
        assert m.current_term >= terms[i]  # the vote survived (Figure 2, persistent state)
        assert m.last_log_index is not None and m.last_log_index >= last
    new_leader = await c.leader()
    resp = await new_leader.client_write(b"after-restart")
    for i, r in c.nodes.items():
        await r.wait(WAIT).applied_index_at_least(resp.log_id.index, "applied after restart")
        data = c.sms[i].data
        for index, payload in before[i].items():
            assert data[index] == payload
        assert data[resp.log_id.index] == b"after-restart"


async def test_restart_one_follower_catches_up(tcp_cluster: Cluster) -> None:
    c = tcp_cluster
    leader = await c.initialize([1, 2, 3])
    follower_id = next(i for i in c.nodes if i != leader.id)
    await leader.client_write(b"one")
    await c.stop(follower_id)
    resps = [await leader.client_write(b"x%d" % k) for k in range(20)]  # a majority still commits
    await c.start(follower_id)
    m = await c.nodes[follower_id].wait(WAIT).applied_index_at_least(resps[-1].log_id.index, "caught up")
    assert m.state == ServerState.FOLLOWER
    assert c.sms[follower_id].data[resps[-1].log_id.index] == b"x19"


async def test_mutual_tls_cluster(tmp_path: Path, pki) -> None:
    nodes = make_test_pki(tmp_path / "pki", [1, 2, 3])

    def server_ssl(i: int) -> ssl.SSLContext:
        return tls.server_context(*nodes.nodes[i], nodes.ca)

    def client_ssl(i: int) -> ssl.SSLContext:
        return tls.client_context(*nodes.nodes[i], nodes.ca)

    c = Cluster("tcp", durable=True, tmp=tmp_path, server_ssl=server_ssl, client_ssl=client_ssl)
    try:
        leader = await c.initialize([1, 2, 3])
        resp = await leader.client_write(b"secret")
        for r in c.nodes.values():
            await r.wait(WAIT).applied_index_at_least(resp.log_id.index, "replicated over TLS")
        # a peer without a trusted client certificate cannot talk to a node
        rogue = RpcClient("127.0.0.1", c.ports[leader.id], cluster_name=c.config.cluster_name, node_id=9,
                          target_id=leader.id, ssl=pki.client_context(rogue=True), server_hostname="localhost")
        with pytest.raises(Exception):
            await rogue.call("vote", b"", timeout=5)
        await rogue.close()
        # a member's certificate cannot say it is another member (issue 11)
        other = next(i for i in c.nodes if i != leader.id)
        third = next(i for i in c.nodes if i not in (leader.id, other))
        forged = RpcClient("127.0.0.1", c.ports[leader.id], cluster_name=c.config.cluster_name, node_id=third,
                           target_id=leader.id, ssl=client_ssl(other), server_hostname="localhost")
        with pytest.raises(HandshakeRejected, match=f"node {other}'s, but the hello says it is from {third}"):
            await forged.call("vote", b"", timeout=5)
        await forged.close()
        assert c.servers[leader.id].rpc.stats.identity_rejected == 1
        assert leader.metrics().borrow().state == ServerState.LEADER
    finally:
        await c.close()


async def test_garbage_to_the_rpc_port_leaves_the_node_serving(tcp_cluster: Cluster) -> None:
    c = tcp_cluster
    leader = await c.initialize([1, 2, 3])
    port = c.ports[leader.id]
    # 1. raw garbage before any hello: the connection is closed, nothing else happens
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\xff" * 64 + b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(WAIT):
        assert await reader.read() == b""
    writer.close()
    # 2. a valid hello, then malformed Raft payloads: answered with errors, connection kept
    client = RpcClient("127.0.0.1", port, cluster_name=c.config.cluster_name, node_id=7, target_id=leader.id)
    for method, payload in [("append", b"\x00"), ("vote", b"\x05\x00\x00\x00\xc1\xc1\xc1\xc1\xc1"),
                            ("append", b"\x02\x00\x00\x00\x94\xc0"), ("snapshot", b"x" * 100), ("nope", b"")]:
        with pytest.raises(RemoteError) as info:
            await client.call(method, payload, timeout=WAIT)
        assert info.value.remote_type == "ProtocolError"
    await client.close()
    assert c.servers[leader.id].rpc.stats.frames_rejected >= 1
    # the cluster still works and the leader is unchanged
    resp = await leader.client_write(b"still-serving")
    assert resp.data == b"still-serving"
    assert leader.metrics().borrow().state == ServerState.LEADER
