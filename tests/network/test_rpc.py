"""RpcServer / RpcClient over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random

import pytest

from raftx import _core
from raftx.errors import BindError, NetworkError, RemoteError, Timeout, Unreachable
from raftx.network import Backoff, RpcServer

from netkit import CLUSTER, echo


class FakeClock:
    """A clock the test moves by hand, so backoff deadlines need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_round_trip(make_server, make_client) -> None:
    server = await make_server()
    client = make_client(server.port, node_id=7)
    async with asyncio.timeout(10):
        assert await client.call("echo", b"hello") == b"hello"
        assert await client.call("whoami") == b"7"
        assert await client.call("echo", b"") == b""
    assert client.connected and client.connects == 1
    assert server.stats.requests == 3


async def test_large_payload_round_trip(make_server, make_client) -> None:
    server = await make_server()
    client = make_client(server.port)
    payload = bytes(random.Random(3).randbytes(3 * 1024 * 1024 + 7))
    async with asyncio.timeout(30):
        assert await client.call("echo", memoryview(payload)) == payload
        # A batch of entries encoded once travels as the very bytes of the log.
        batch = _core.codec.encode_entries([(1, i, 1, b"x" * 100) for i in range(1, 500)])
        assert await client.call("echo", batch) == batch


async def test_ten_thousand_pipelined_calls_are_matched(make_server, make_client) -> None:
    async def tagged(sender_id: int, method: str, payload: memoryview) -> bytes:
        return method.encode() + b":" + bytes(payload)

    server = await make_server(tagged)
    client = make_client(server.port, max_in_flight=256)
    n = 10_000
    async with asyncio.timeout(60):
        results = await asyncio.gather(*(client.call(f"m{i % 7}", str(i).encode()) for i in range(n)))
    assert results == [f"m{i % 7}:{i}".encode() for i in range(n)]
    assert client.connects == 1 and server.stats.requests == n


async def test_ordered_server_handles_requests_in_arrival_order(make_server, make_client) -> None:
    seen: list[int] = []

    async def record(sender_id: int, method: str, payload: memoryview) -> bytes:
        i = int(bytes(payload))
        await asyncio.sleep(0.001 * (i % 3))  # a later request would overtake if run concurrently
        seen.append(i)
        return b""

    server = await make_server(record)  # ordered=True is the default
    client = make_client(server.port)
    async with asyncio.timeout(20):
        await asyncio.gather(*(client.call("append", str(i).encode()) for i in range(200)))
    assert seen == list(range(200))


async def test_unordered_server_runs_requests_concurrently(make_server, make_client, spawn) -> None:
    release = asyncio.Event()
    started = 0
    all_started = asyncio.Event()

    async def gated(sender_id: int, method: str, payload: memoryview) -> bytes:
        nonlocal started
        started += 1
        if started == 5:
            all_started.set()
        await release.wait()
        return bytes(payload)

    server = await make_server(gated, ordered=False)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        calls = [spawn(client.call("x", bytes([i]))) for i in range(5)]
        await all_started.wait()  # five handlers blocked at once: not serialized
        release.set()
        assert await asyncio.gather(*calls) == [bytes([i]) for i in range(5)]


async def test_ordered_server_pipelines_client_methods_up_to_its_bound(make_server, make_client, spawn) -> None:
    """On an ordered connection, client-method requests run concurrently (at most
    ``max_client_requests`` at once) while the other methods keep their order."""
    release = asyncio.Event()
    running = peak = 0
    two_running = asyncio.Event()
    order: list[int] = []

    async def handler(sender_id: int, method: str, payload: memoryview) -> bytes:
        nonlocal running, peak
        if method == "append":
            order.append(int(bytes(payload)))
            return b""
        running += 1
        peak = max(peak, running)
        if running == 2:
            two_running.set()
        await release.wait()
        running -= 1
        return bytes(payload)

    server = await make_server(handler, client_methods=lambda m: m == "kv", max_client_requests=2)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        calls = [spawn(client.call("kv", bytes([i]))) for i in range(5)]
        await two_running.wait()  # two handlers blocked at once: pipelined, not serialized
        appends = [spawn(client.call("append", str(i).encode())) for i in range(20)]
        while server.stats.requests < 25:  # every request has reached the server
            await asyncio.sleep(0.001)
        assert (running, peak) == (2, 2)  # the bound holds the rest back
        release.set()
        assert await asyncio.gather(*calls) == [bytes([i]) for i in range(5)]
        await asyncio.gather(*appends)
    assert peak == 2 and order == list(range(20))


class Starter:
    """A handler with a pipelined ``start`` for "append" (as `RaftRpcHandler` has):
    it records each started request and its ``reply``; other methods are awaited."""

    def __init__(self, refuse: bytes | None = None) -> None:
        self.started: list[tuple[bytes, object]] = []
        self.awaited: list[bytes] = []
        self.refuse = refuse

    async def __call__(self, sender_id: int, method: str, payload: memoryview) -> bytes:
        self.awaited.append(bytes(payload))
        return b"awaited:" + bytes(payload)

    def start(self, sender_id: int, method: str, payload: memoryview, reply) -> bool:
        if method != "append":
            return False
        if bytes(payload) == self.refuse:
            raise ValueError("refused before it reached the node")
        self.started.append((bytes(payload), reply))
        return True


async def wait_for(predicate, what: str) -> None:
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0.001)


async def test_ordered_server_starts_the_next_append_before_the_first_is_answered(make_server, make_client,
                                                                                  spawn) -> None:
    """A handler's ``start`` pipelines an ordered connection: every request is started
    in arrival order without waiting for the answers, which go out as replied."""
    h = Starter()
    server = await make_server(h)
    client = make_client(server.port)
    calls = [spawn(client.call("append", str(i).encode())) for i in range(10)]
    await wait_for(lambda: len(h.started) == 10, "ten started")
    assert [p for p, _ in h.started] == [str(i).encode() for i in range(10)]
    assert not any(c.done() for c in calls)
    for p, reply in reversed(h.started):  # answers need not come in order: matched by id
        reply(b"ok:" + p, None)
    async with asyncio.timeout(10):
        assert await asyncio.gather(*calls) == [b"ok:%d" % i for i in range(10)]
    assert h.awaited == []


async def test_started_requests_are_bounded_and_keep_their_turn_with_awaited_ones(make_server, make_client,
                                                                                   spawn) -> None:
    h = Starter()
    server = await make_server(h, max_started_requests=2)
    client = make_client(server.port)
    calls = [spawn(client.call("append", b"%d" % i)) for i in range(4)]
    other = spawn(client.call("other", b"x"))
    await wait_for(lambda: server.stats.requests == 5 and len(h.started) == 2, "two started, the rest queued")
    assert len(h.started) == 2 and h.awaited == []  # the bound holds the rest back, in order
    h.started[0][1](b"a", None)
    await wait_for(lambda: len(h.started) == 3, "a slot freed: the next one started")
    for _, reply in h.started[1:]:
        reply(b"b", None)
    await wait_for(lambda: len(h.started) == 4 and h.awaited == [b"x"], "all taken in arrival order")
    h.started[3][1](None, KeyError("no"))
    async with asyncio.timeout(10):
        assert await asyncio.gather(*calls[:3]) == [b"a", b"b", b"b"]
        assert await other == b"awaited:x"
        with pytest.raises(RemoteError) as info:
            await calls[3]
    assert info.value.remote_type == "KeyError"


async def test_a_start_that_raises_is_an_error_answer_and_the_connection_goes_on(make_server, make_client) -> None:
    h = Starter(refuse=b"bad")
    server = await make_server(h)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        with pytest.raises(RemoteError) as info:
            await client.call("append", b"bad")
        assert info.value.remote_type == "ValueError"
        good = asyncio.ensure_future(client.call("append", b"good"))
        await wait_for(lambda: len(h.started) == 1, "the next one started")
        h.started[0][1](b"fine", None)
        assert await good == b"fine"
    assert server.stats.handler_errors == 1 and client.connects == 1


@pytest.mark.parametrize("limit", ["count", "bytes"])
async def test_in_flight_window_is_respected(make_server, make_client, limit: str, spawn) -> None:
    release = asyncio.Event()
    current = peak = 0
    finished = 0
    started_before_first_finish = 0
    window_full = asyncio.Event()

    async def gated(sender_id: int, method: str, payload: memoryview) -> bytes:
        nonlocal current, peak, finished, started_before_first_finish
        current += 1
        peak = max(peak, current)
        if finished == 0:
            started_before_first_finish += 1
        if current == 4:
            window_full.set()
        await release.wait()
        current -= 1
        finished += 1
        return bytes(payload)

    server = await make_server(gated, ordered=False)
    if limit == "count":
        client = make_client(server.port, max_in_flight=4)
    else:
        client = make_client(server.port, max_in_flight=1000, max_in_flight_bytes=4 * 1000)
    async with asyncio.timeout(10):
        calls = [spawn(client.call("x", bytes([i]) * 1000)) for i in range(12)]
        await window_full.wait()
        assert client.window.count == 4 and client.window.waiting == 8
        release.set()
        results = await asyncio.gather(*calls)
    assert results == [bytes([i]) * 1000 for i in range(12)]
    assert started_before_first_finish == 4
    assert peak == 4
    assert client.window.count == 0 and client.window.nbytes == 0


async def test_handler_exception_is_a_remote_error(make_server, make_client) -> None:
    server = await make_server()
    client = make_client(server.port)
    async with asyncio.timeout(10):
        with pytest.raises(RemoteError) as info:
            await client.call("fail", b"no such key")
        assert info.value.remote_type == "KeyError"
        assert "no such key" in str(info.value)
        assert await client.call("echo", b"still fine") == b"still fine"
    assert server.stats.handler_errors == 1


async def test_handler_returning_non_bytes_is_a_remote_error(make_server, make_client) -> None:
    async def bad(sender_id: int, method: str, payload: memoryview) -> object:
        return 42

    server = await make_server(bad)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        with pytest.raises(RemoteError, match="TypeError"):
            await client.call("x")


async def test_call_timeout(make_server, make_client) -> None:
    never = asyncio.Event()

    async def stuck(sender_id: int, method: str, payload: memoryview) -> bytes:
        if method == "stuck":
            await never.wait()
        return b"ok"

    server = await make_server(stuck, ordered=False)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        with pytest.raises(Timeout):
            await client.call("stuck", timeout=0.05)
        assert client.window.count == 0
        assert await client.call("quick", timeout=5) == b"ok"


async def test_call_nowait_sends_only_on_a_ready_connection_with_window_room(make_server, make_client) -> None:
    never = asyncio.Event()

    async def handler(sender_id: int, method: str, payload: memoryview) -> bytes:
        if method == "stuck":
            await never.wait()
        if method == "fail":
            raise KeyError(bytes(payload))
        return bytes(payload)

    server = await make_server(handler, ordered=False)
    client = make_client(server.port, max_in_flight=1)
    async with asyncio.timeout(10):
        assert client.call_nowait("echo", b"x") is None  # not connected yet: nothing sent
        assert server.stats.requests == 0
        assert await client.call("echo", b"connect") == b"connect"
        fut = client.call_nowait("echo", b"now")
        assert fut is not None and await fut == b"now"
        stuck = client.call_nowait("stuck", b"")
        assert stuck is not None and client.window.count == 1
        assert client.call_nowait("echo", b"full") is None  # the window is full
        stuck.cancel()  # the caller gives up: its window room comes back
        await asyncio.sleep(0)
        assert client.window.count == 0
        fut = client.call_nowait("fail", b"boom")
        assert fut is not None
        with pytest.raises(RemoteError):
            await fut
        assert await client.call("echo", b"still fine") == b"still fine"


async def test_connection_refused_is_unreachable(make_server, make_client) -> None:
    server = await make_server()
    port = server.port
    await server.close()
    client = make_client(port)
    async with asyncio.timeout(10):
        with pytest.raises(Unreachable, match="cannot connect"):
            await client.call("echo", b"x")


async def test_reconnect_backoff_is_capped_exponential_with_jitter(make_server, make_client) -> None:
    server = await make_server()
    port = server.port
    await server.close()
    clock = FakeClock()
    client = make_client(port, backoff=Backoff(0.05, 1.0, rng=random.Random(42)), clock=clock)
    expected = Backoff(0.05, 1.0, rng=random.Random(42))
    async with asyncio.timeout(20):
        for attempt in range(8):
            with pytest.raises(Unreachable, match="cannot connect"):
                await client.call("echo", b"x")
            delay = client.retry_at - clock.now
            assert delay == pytest.approx(expected.next_delay())
            cap = min(1.0, 0.05 * 2**attempt)
            assert cap / 2 <= delay <= cap
            # While the backoff runs no connection is attempted.
            clock.now += delay / 2
            with pytest.raises(Unreachable, match="backoff active"):
                await client.call("echo", b"x")
            clock.now = client.retry_at
        server2 = await make_server(port=port)
        assert await client.call("echo", b"back") == b"back"
    assert client.retry_at == float("-inf") and client.backoff.attempt == 0
    assert server2.stats.connections_accepted == 1


async def test_server_restart_fails_pending_calls_then_client_reconnects(make_server, make_client, spawn) -> None:
    started = asyncio.Event()

    async def slow(sender_id: int, method: str, payload: memoryview) -> bytes:
        if method == "block":
            started.set()
            await asyncio.Event().wait()
        return bytes(payload)

    server = await make_server(slow, ordered=False)
    port = server.port
    clock = FakeClock()
    client = make_client(port, clock=clock)
    async with asyncio.timeout(20):
        assert await client.call("echo", b"1") == b"1"
        pending = [spawn(client.call("block")) for _ in range(3)]
        await started.wait()
        await server.close()
        for fut in pending:
            with pytest.raises(NetworkError, match="lost"):
                await fut
        # The connection is gone: the next call reconnects at once and finds nobody.
        with pytest.raises(Unreachable, match="cannot connect"):
            await client.call("echo", b"2")
        with pytest.raises(Unreachable, match="backoff active"):
            await client.call("echo", b"2")
        await make_server(slow, port=port, ordered=False)
        clock.now = client.retry_at
        assert await client.call("echo", b"3") == b"3"
    assert client.connects == 2


async def test_close_fails_pending_calls_and_later_calls(make_server, make_client, spawn) -> None:
    started = asyncio.Event()

    async def block(sender_id: int, method: str, payload: memoryview) -> bytes:
        started.set()
        await asyncio.Event().wait()
        return b""

    server = await make_server(block)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        pending = spawn(client.call("x"))
        await started.wait()
        await client.close()
        with pytest.raises(NetworkError, match="closed"):
            await pending
        with pytest.raises(NetworkError, match="closed"):
            await client.call("x")
        await client.close()  # idempotent
        await server.close()
    # Every handler task of the server was cancelled and awaited.
    assert server.stats.connections_active == 0


async def test_bind_error_when_address_in_use(make_server) -> None:
    server = await make_server()
    other = RpcServer(echo, "127.0.0.1", server.port, cluster_name=CLUSTER, node_id=3)
    with pytest.raises(BindError, match=str(server.port)):
        await other.start()


async def test_async_with_server_and_client(make_client) -> None:
    async with asyncio.timeout(10):
        async with RpcServer(echo, cluster_name=CLUSTER, node_id=2) as server:
            client = make_client(server.port)
            async with client:
                assert await client.call("echo", b"ctx") == b"ctx"
            with pytest.raises(NetworkError):
                await client.call("echo", b"ctx")


async def test_wrong_cluster_or_target_is_handshake_rejected(make_server, make_client) -> None:
    from raftx.errors import HandshakeRejected

    server = await make_server(node_id=2, allowed_senders={1})
    async with asyncio.timeout(10):
        with pytest.raises(HandshakeRejected, match="wrong cluster"):
            await make_client(server.port, cluster_name="other").call("echo")
        with pytest.raises(HandshakeRejected, match="wrong target node 3"):
            await make_client(server.port, target_id=3).call("echo")
        with pytest.raises(HandshakeRejected, match="sender node 9 is not allowed"):
            await make_client(server.port, node_id=9).call("echo")
        assert await make_client(server.port, node_id=1).call("echo", b"ok") == b"ok"
    assert server.stats.connections_rejected == 3


async def test_close_leaves_no_task_behind(make_server, make_client, spawn) -> None:
    started = asyncio.Event()

    async def block(sender_id: int, method: str, payload: memoryview) -> bytes:
        if method == "block":
            started.set()
            await asyncio.Event().wait()
        return b""

    server = await make_server(block, ordered=False)
    client = make_client(server.port)
    async with asyncio.timeout(10):
        await client.call("x")
        pending = spawn(client.call("block"))
        await started.wait()
        await client.close()
        await server.close()
        with pytest.raises(NetworkError):
            await pending
        assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_sockets_have_nodelay_and_keepalive(make_server, make_client) -> None:
    import socket

    server = await make_server()
    client = make_client(server.port)
    async with asyncio.timeout(10):
        await client.call("echo", b"x")
    sock = client._conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0


async def test_ordered_server_stops_reading_when_its_queue_is_full(make_server, make_client, spawn) -> None:
    gate = asyncio.Event()

    async def gated(sender_id: int, method: str, payload: memoryview) -> bytes:
        await gate.wait()
        return bytes(payload[:4])

    server = await make_server(gated, max_queued_requests=2)
    client = make_client(server.port)
    payloads = [bytes([i]) * (512 * 1024) for i in range(8)]
    async with asyncio.timeout(20):
        calls = [spawn(client.call("append", p)) for p in payloads]
        while not server._connections:
            await asyncio.sleep(0)
        [conn] = server._connections
        while conn.transport.is_reading():  # a wait on state: yields to the loop, no timer
            await asyncio.sleep(0)
        # Two queued (plus perhaps one already in the handler): the rest wait in socket buffers.
        assert 2 <= server.stats.requests <= 3
        gate.set()
        assert await asyncio.gather(*calls) == [p[:4] for p in payloads]
    assert server.stats.requests == 8 and conn.transport.is_reading()


# -- the any-target hello (plain HOST:PORT clients) ------------------------------------------


async def test_any_target_hello_is_refused_without_client_methods(make_server, make_client) -> None:
    from raftx.errors import HandshakeRejected

    server = await make_server(node_id=2)
    async with asyncio.timeout(10):
        with pytest.raises(HandshakeRejected, match="target node id is required"):
            await make_client(server.port, target_id=None).call("echo", b"x")
    assert server.stats.connections_rejected == 1


async def test_any_target_hello_is_an_option_not_implied_by_client_methods(make_server, make_client) -> None:
    """Serving client methods (e.g. to TLS client certificates) does not by itself admit
    the any-target hello: `raftx.kv.service.KVNodeServer` asks for it (accept_any_target)."""
    from raftx.errors import HandshakeRejected

    server = await make_server(node_id=2, client_methods=lambda m: m == "echo")
    async with asyncio.timeout(10):
        with pytest.raises(HandshakeRejected, match="target node id is required"):
            await make_client(server.port, target_id=None).call("echo", b"x")
        assert await make_client(server.port, target_id=2).call("echo", b"x") == b"x"
    assert server.stats.connections_rejected == 1
    with pytest.raises(ValueError, match="accept_any_target needs client_methods"):
        RpcServer(echo, cluster_name="c", node_id=1, accept_any_target=True)


async def test_any_target_client_learns_the_node_id_and_calls_client_methods_only(make_server, make_client) -> None:
    calls: list[str] = []

    async def handler(sender: int, method: str, payload: memoryview) -> bytes:
        calls.append(method)
        return await echo(sender, method, payload)

    server = await make_server(handler=handler, node_id=7, client_methods=lambda m: m == "echo",
                                accept_any_target=True)
    client = make_client(server.port, target_id=None)
    assert client.remote_id is None
    async with asyncio.timeout(10):
        assert await client.call("echo", b"hi") == b"hi"
        assert client.remote_id == 7
        with pytest.raises(RemoteError, match="client methods only") as info:
            await client.call("whoami")
        assert info.value.remote_type == "ProtocolError"
        # A connection that names the node may call every method.
        assert await make_client(server.port, node_id=1, target_id=7).call("whoami") == b"1"
    assert calls == ["echo", "whoami"]  # the refused call never reached the handler


async def test_named_target_is_still_checked_when_client_methods_are_served(make_server, make_client) -> None:
    from raftx.errors import HandshakeRejected

    server = await make_server(node_id=7, client_methods=lambda m: True)
    async with asyncio.timeout(10):
        with pytest.raises(HandshakeRejected, match="wrong target node 2"):
            await make_client(server.port, target_id=2).call("echo")
