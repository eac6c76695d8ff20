"""Mutual TLS: certificates from a throwaway CA generated at test time."""

from __future__ import annotations

import asyncio

import pytest

from raftx.errors import Unreachable
from raftx.network import PeerInfo


async def test_mutual_tls_round_trip(make_server, make_client, pki) -> None:
    seen: list[PeerInfo] = []

    def validate(peer: PeerInfo) -> bool:
        seen.append(peer)
        return True

    server = await make_server(ssl=pki.server_context(), validate_peer=validate)
    client = make_client(server.port, ssl=pki.client_context())
    async with asyncio.timeout(10):
        assert await client.call("echo", b"secret" * 10_000) == b"secret" * 10_000
    assert len(seen) == 1 and seen[0].sender_id == 1
    assert seen[0].peercert is not None
    assert dict(x[0] for x in seen[0].peercert["subject"])["commonName"] == "node-client"


async def test_client_certificate_from_another_ca_is_rejected(make_server, make_client, pki) -> None:
    server = await make_server(ssl=pki.server_context())
    rogue = make_client(server.port, ssl=pki.client_context(rogue=True))
    async with asyncio.timeout(10):
        # TLS 1.3: the client's handshake "succeeds" and the refusal shows up as EOF
        # before the hello ack, reported as a rejected handshake (a kind of Unreachable).
        with pytest.raises(Unreachable):
            await rogue.call("echo", b"x")
        assert server.stats.requests == 0
        good = make_client(server.port, ssl=pki.client_context())
        assert await good.call("echo", b"y") == b"y"


async def test_plain_client_cannot_talk_to_tls_server(make_server, make_client, pki) -> None:
    server = await make_server(ssl=pki.server_context())
    plain = make_client(server.port, hello_timeout=5)
    async with asyncio.timeout(10):
        with pytest.raises(Unreachable):
            await plain.call("echo", b"x")
    assert server.stats.requests == 0


async def test_certificate_binds_the_hello_sender_to_its_node_id(make_server, make_client, pki) -> None:
    seen: list[int] = []

    def validate(peer: PeerInfo) -> bool:
        seen.append(peer.sender_id)
        return True

    # The client certificate names raftx-node-1: it may not say it is node 3.
    server = await make_server(ssl=pki.server_context(), validate_peer=validate, allowed_senders={1, 3})
    async with asyncio.timeout(10):
        with pytest.raises(Unreachable, match="certificate is node 1's, but the hello says it is from 3"):
            await make_client(server.port, node_id=3, ssl=pki.client_context()).call("echo")
        assert await make_client(server.port, node_id=1, ssl=pki.client_context()).call("echo", b"ok") == b"ok"
    assert server.stats.connections_rejected == 1 and server.stats.identity_rejected == 1
    assert seen == [1]  # the forged hello was refused before validate_peer


async def test_client_refuses_a_server_certificate_of_another_node(make_server, make_client, pki) -> None:
    server = await make_server(ssl=pki.server_context())  # the server certificate names raftx-node-2
    async with asyncio.timeout(10):
        with pytest.raises(Unreachable, match=r"certificate of node\(s\) \[2\], not of node 3"):
            await make_client(server.port, target_id=3, ssl=pki.client_context()).call("echo")
        assert await make_client(server.port, target_id=2, ssl=pki.client_context()).call("echo", b"2") == b"2"
    assert server.stats.requests == 1


async def test_node_certificate_is_admitted_when_client_slots_are_full(make_server, make_client, tmp_path) -> None:
    from raftx.network import tls

    pki = tls.make_test_pki(tmp_path, [1, 2])
    ca = pki.ca
    # no membership known (a pristine node): the node certificate alone admits node 1
    server = await make_server(ssl=tls.server_context(*pki.nodes[2], ca), max_connections=1,
                               client_methods=lambda m: m == "echo")
    async with asyncio.timeout(10):
        client = make_client(server.port, node_id=5, ssl=tls.client_context(*pki.client, ca))
        assert await client.call("echo", b"client") == b"client"
        with pytest.raises(Unreachable, match="too many client connections"):
            await make_client(server.port, node_id=6, ssl=tls.client_context(*pki.admin, ca)).call("echo")
        peer = make_client(server.port, node_id=1, ssl=tls.client_context(*pki.nodes[1], ca))
        assert await peer.call("echo", b"peer") == b"peer"
