"""Bad input to an RpcServer: each case closes that connection, is counted, and the
server keeps serving everyone else (DESIGN §2 rule 8)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netkit import CLUSTER, echo

from raftx import _core
from raftx.network import RpcClient, RpcServer, wire


def hello(cluster: str = CLUSTER, sender: int = 1, target: int = 2, version: int = wire.PROTOCOL_VERSION) -> bytes:
    header = msgpack.packb({"v": version, "cluster": cluster, "from": sender, "to": target})
    return _core.codec.encode_frame(wire.HELLO, bytes([len(header)]) + header)


def request(request_id: int, method: str, payload: bytes = b"") -> bytes:
    header = msgpack.packb([request_id, method])
    return _core.codec.encode_frame(wire.REQUEST, bytes([len(header)]) + header + payload)


async def exchange(port: int, first: bytes, after_ack: bytes | None = None) -> bytes:
    """Send ``first`` (then, once the hello ack is in, ``after_ack``) on a raw connection,
    half-close it, and return everything received until the server closes its side."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        writer.write(first)
        if after_ack is not None:
            received += await reader.read(4096)  # the hello ack
            writer.write(after_ack)
        with contextlib.suppress(OSError):
            writer.write_eof()  # a truncated frame is noticed when the peer hangs up
        while chunk := await reader.read(65536):
            received += chunk
    finally:
        writer.close()
    return received


async def still_serves(port: int) -> None:
    async with RpcClient("127.0.0.1", port, cluster_name=CLUSTER, node_id=1, target_id=2) as client:
        assert await client.call("echo", b"alive") == b"alive"


@pytest.mark.parametrize(
    ("first", "after_ack", "counter"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None, "frames_rejected", id="http-garbage"),
        pytest.param(struct.pack("<IB", 0x7FFFFFFF, wire.HELLO), None, "frames_rejected",
                     id="oversized-length-before-hello"),
        pytest.param(hello() + request(1, "echo"), None, "frames_rejected", id="request-before-hello-ack"),
        pytest.param(request(1, "echo"), None, "frames_rejected", id="request-instead-of-hello"),
        pytest.param(_core.codec.encode_frame(wire.HELLO, b"\x05\xc1\xc1\xc1\xc1\xc1"), None,
                     "frames_rejected", id="undecodable-hello"),
        pytest.param(_core.codec.encode_frame(wire.HELLO, b"\x01\x90"), None, "frames_rejected",
                     id="hello-not-a-map"),
        pytest.param(hello(cluster="other"), None, "connections_rejected", id="wrong-cluster"),
        pytest.param(hello(target=3), None, "connections_rejected", id="wrong-target"),
        pytest.param(hello(sender=99), None, "connections_rejected", id="unknown-sender"),
        pytest.param(hello(version=999), None, "connections_rejected", id="unsupported-version"),
        pytest.param(hello()[:7], None, "frames_rejected", id="truncated-hello"),
        pytest.param(hello(), struct.pack("<IB", 65 * 1024 * 1024, wire.REQUEST), "frames_rejected",
                     id="oversized-length-after-hello"),
        pytest.param(hello(), request(1, "echo", b"abc")[:-2], "frames_rejected",
                     id="truncated-request"),
        pytest.param(hello(), _core.codec.encode_frame(77, b"\x00"), "frames_rejected",
                     id="unknown-frame-type"),
        pytest.param(hello(), _core.codec.encode_frame(wire.REQUEST, b"\xff"), "frames_rejected",
                     id="header-longer-than-body"),
        pytest.param(hello(), request(1, "m" * 65), "frames_rejected", id="method-too-long"),
        pytest.param(hello(), _core.codec.encode_frame(wire.REQUEST, b"\x03\x92\x01\x02"),
                     "frames_rejected", id="method-not-a-string"),
    ],
)
async def test_bad_input_closes_only_that_connection(make_server, first: bytes, after_ack: bytes | None,
                                                     counter: str) -> None:
    server = await make_server(allowed_senders={1})
    async with asyncio.timeout(10):
        # A healthy peer is connected throughout and keeps working.
        async with RpcClient("127.0.0.1", server.port, cluster_name=CLUSTER, node_id=1, target_id=2) as good:
            assert await good.call("echo", b"before") == b"before"
            received = await exchange(server.port, first, after_ack)
            if counter == "connections_rejected":
                assert received[4] == wire.HELLO_REJECT  # a reason is sent before closing
            assert getattr(server.stats, counter) == 1
            assert server.stats.requests == 1  # nothing from the bad peer reached the handler
            assert await good.call("echo", b"after") == b"after"
        await still_serves(server.port)


async def test_hello_timeout_closes_silent_peer(make_server) -> None:
    server = await make_server(hello_timeout=0.05)
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await reader.read() == b""  # closed by the server without a word from us
        writer.close()
        assert server.stats.hello_timeouts == 1
        assert server.stats.connections_active == 0
        await still_serves(server.port)


async def test_too_many_connections_rejected(make_server) -> None:
    server = await make_server(max_connections=1)
    async with asyncio.timeout(10):
        async with RpcClient("127.0.0.1", server.port, cluster_name=CLUSTER, node_id=1, target_id=2) as first:
            assert await first.call("echo", b"1") == b"1"
            received = await exchange(server.port, hello())
            assert received[4] == wire.HELLO_REJECT
            assert server.stats.connections_rejected == 1
            assert await first.call("echo", b"2") == b"2"


# -- fuzz: random bytes never crash the server ------------------------------------------


class ThreadedServer:
    """An RpcServer on its own loop in a thread, so hypothesis can drive it from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, ctx: self.errors.append(ctx))
        self.server = RpcServer(echo, cluster_name=CLUSTER, node_id=2, hello_timeout=5.0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[ThreadedServer]:
    ts = ThreadedServer()
    yield ts
    ts.close()


def blocking_exchange(port: int, first: bytes, after_ack: bytes | None) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(first)
        if after_ack is not None:
            sock.recv(4096)
            try:
                sock.sendall(after_ack)
            except OSError:
                pass  # the server may already have closed on us
        sock.shutdown(socket.SHUT_WR)
        while True:
            try:
                if not sock.recv(65536):
                    return
            except ConnectionResetError:
                return


frame_bodies = st.binary(max_size=300)
garbage = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda t, b: _core.codec.encode_frame(t, b), st.integers(0, 255), frame_bodies),
    st.builds(lambda b: struct.pack("<IB", len(b) + 1, wire.HELLO) + bytes([len(b)]) + b, frame_bodies),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=garbage)
def test_fuzz_random_bytes_before_hello(threaded_server: ThreadedServer, first: bytes) -> None:
    blocking_exchange(threaded_server.server.port, first, None)
    assert threaded_server.errors == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda t, b: _core.codec.encode_frame(t, b), st.integers(0, 255), frame_bodies),
    st.builds(lambda b: _core.codec.encode_frame(wire.REQUEST, b), frame_bodies),
    st.builds(lambda h, p: _core.codec.encode_frame(wire.REQUEST, bytes([len(h)]) + h + p),
              st.binary(max_size=40), st.binary(max_size=40)),
))
def test_fuzz_random_frames_after_hello(threaded_server: ThreadedServer, after: bytes) -> None:
    blocking_exchange(threaded_server.server.port, hello(), after)
    assert threaded_server.errors == []


def test_fuzzed_server_still_serves(threaded_server: ThreadedServer) -> None:
    """Runs after the fuzz tests in this module: the same server still answers."""
    asyncio.run_coroutine_threadsafe(
        asyncio.wait_for(still_serves(threaded_server.server.port), 10), threaded_server.loop).result(15)
    assert threaded_server.errors == []
    stats = threaded_server.server.stats
    assert stats.connections_accepted > stats.connections_active
