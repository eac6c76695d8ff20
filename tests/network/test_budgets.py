"""RpcServer's resource budgets (issue 11): strangers' connections, idle clients,
partial frames and bad requests are bounded, and a member always gets in.

Node 1 is the member (``is_member``), node 2 the server; other senders and
any-target hellos are clients. Every wait is on state, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from netkit import CLUSTER
from test_robustness import hello, request

from raftx import _core
from raftx.errors import HandshakeRejected, RemoteError
from raftx.network import RpcClient, wire


def member(node_id: int) -> bool:
    return node_id == 1


def any_target_hello(sender: int = 77) -> bytes:
    import msgpack

    header = msgpack.packb({"v": wire.PROTOCOL_VERSION, "cluster": CLUSTER, "from": sender, "to": None})
    return _core.codec.encode_frame(wire.HELLO, bytes([len(header)]) + header)


async def open_raw(port: int, first: bytes = b"", *, acked: bool = True) -> tuple[asyncio.StreamReader,
                                                                                  asyncio.StreamWriter]:
    """A raw connection that sent ``first`` (and, if ``acked``, got its hello ack)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first:
        writer.write(first)
        await writer.drain()
        if acked:
            head = await reader.readexactly(5)
            await reader.readexactly(struct.unpack("<I", head[:4])[0] - 1)
            assert head[4] == wire.HELLO_ACK
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_member_is_admitted_when_client_connections_are_full(make_server, make_client) -> None:
    server = await make_server(is_member=member, max_connections=3, client_methods=lambda m: m == "echo",
                                accept_any_target=True)
    async with asyncio.timeout(10):
        idle = [await open_raw(server.port, any_target_hello()) for _ in range(3)]
        with pytest.raises(HandshakeRejected, match="too many client connections"):
            await make_client(server.port, node_id=5).call("echo", b"x")
        assert await make_client(server.port, node_id=1).call("echo", b"member") == b"member"
    assert server.stats.connections_rejected == 1
    for _, w in idle:
        w.close()


async def test_pending_connections_cannot_keep_a_member_out(make_server, make_client) -> None:
    server = await make_server(is_member=member, max_pending_connections=4, hello_timeout=30)
    async with asyncio.timeout(10):
        silent = [await open_raw(server.port) for _ in range(8)]  # never say hello
        await wait_until(lambda: server.stats.pending_evicted >= 4, "oldest pending evicted")
        assert await make_client(server.port, node_id=1).call("echo", b"in") == b"in"
        await closed_by_server(silent[0][0])  # the oldest silent sockets were closed
    for _, w in silent:
        w.close()


async def test_a_member_keeps_at_most_its_newest_connections(make_server, make_client) -> None:
    server = await make_server(is_member=member, max_connections_per_member=2)
    async with asyncio.timeout(10):
        first = await open_raw(server.port, hello(sender=1))
        second = await open_raw(server.port, hello(sender=1))
        third = make_client(server.port, node_id=1)
        assert await third.call("echo", b"new") == b"new"
        await closed_by_server(first[0])  # e.g. a restarted node's half-open connection
    assert server.stats.member_connections_replaced == 1
    for _, w in (first, second):
        w.close()


async def test_idle_client_connection_times_out_but_a_member_does_not(make_server, make_client) -> None:
    server = await make_server(is_member=member, client_idle_timeout=0.2, client_methods=lambda m: m == "echo",
                                accept_any_target=True)
    async with asyncio.timeout(10):
        peer = make_client(server.port, node_id=1)
        assert await peer.call("echo", b"a") == b"a"
        reader, writer = await open_raw(server.port, any_target_hello())
        await closed_by_server(reader)  # idle client: closed by the server
        assert server.stats.idle_timeouts == 1
        assert await peer.call("echo", b"b") == b"b"  # the member's (older, idle) connection is still up
        assert peer.connects == 1
    writer.close()


async def test_busy_client_is_not_idle(make_server, make_client) -> None:
    gate = asyncio.Event()

    async def slow(sender: int, method: str, payload: memoryview) -> bytes:
        await gate.wait()
        return b"done"

    server = await make_server(handler=slow, client_idle_timeout=0.05, client_methods=lambda m: True,
                                accept_any_target=True)
    client = make_client(server.port, target_id=None)
    async with asyncio.timeout(10):
        call = asyncio.ensure_future(client.call("wait"))
        await wait_until(lambda: server.stats.requests == 1, "request in")
        # a request in flight for several idle timeouts: the connection stays
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.3
        await wait_until(lambda: loop.time() >= until, "time passes")
        gate.set()
        assert await call == b"done"
    assert server.stats.idle_timeouts == 0


async def test_partial_frames_share_one_receive_budget_and_the_member_gets_through(make_server,
                                                                                   make_client) -> None:
    budget = 1 << 20
    server = await make_server(is_member=member, max_frame_bytes=8 << 20, max_receive_buffer_bytes=budget)
    half_frame = struct.pack("<IB", 4 << 20, wire.REQUEST) + bytes(400_000)  # 4 MiB announced, 400 kB sent
    async with asyncio.timeout(20):
        strangers = [await open_raw(server.port, hello(sender=50 + k)) for k in range(6)]
        for _, w in strangers:
            w.write(half_frame)
            await w.drain()
        await wait_until(lambda: server.stats.buffer_evictions >= 4, "strangers evicted")
        assert server.stats.buffered_bytes <= budget
        # the member's 3 MiB request goes through, whatever strangers hold
        big = bytes(3 << 20)
        assert await make_client(server.port, node_id=1, max_frame_bytes=8 << 20).call("echo", big) == big
        assert server.stats.buffered_bytes <= budget
    for _, w in strangers:
        w.close()
    await wait_until(lambda: server.stats.connections_active == 1, "strangers gone")


async def test_error_budget_closes_a_connection_that_keeps_sending_bad_requests(make_server,
                                                                                make_client) -> None:
    server = await make_server(max_request_errors=3)
    async with asyncio.timeout(10):
        reader, writer = await open_raw(server.port, hello(sender=9))
        writer.write(b"".join(request(k, "no-such-method") for k in range(10)))  # echo raises ValueError
        await closed_by_server(reader)
        assert server.stats.error_budget_closes == 1
        good = make_client(server.port, node_id=1)
        assert await good.call("echo", b"ok") == b"ok"
        for _ in range(3):  # up to the budget is fine
            with pytest.raises(RemoteError):
                await good.call("no-such-method")
        assert await good.call("echo", b"still") == b"still"
    writer.close()


@pytest.mark.parametrize("ordered", [True, False])
async def test_receive_accounting_returns_to_zero(make_server, make_client, ordered: bool) -> None:
    server = await make_server(ordered=ordered, client_methods=lambda m: m == "echo", accept_any_target=True)
    async with asyncio.timeout(10):
        named, anyone = make_client(server.port), make_client(server.port, target_id=None)
        sizes = [0, 1, 100, 20_000, 300_000] * 6
        got = await asyncio.gather(*(c.call("echo", bytes(n)) for n in sizes for c in (named, anyone)))
        assert [len(g) for g in got] == [n for n in sizes for _ in (named, anyone)]
        assert server.stats.buffered_bytes == 0  # every request was answered
        reader, writer = await open_raw(server.port, hello(sender=9))
        writer.write(struct.pack("<IB", 100_000, wire.REQUEST) + bytes(50_000))  # half a frame, then hang up
        await writer.drain()
        await wait_until(lambda: server.stats.buffered_bytes > 0, "partial frame held")
        writer.close()
        await wait_until(lambda: server.stats.buffered_bytes == 0, "released with its connection")
