"""The wire format, the backoff policy and the in-flight window, without sockets."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftx import _core
from raftx.errors import ConfigError, ProtocolError
from raftx.network import Backoff, InflightWindow, wire


@given(frame_type=st.integers(0, 255), request_id=st.integers(0, 2**63), method=st.text(max_size=64),
       payload=st.one_of(st.binary(max_size=100), st.integers(0, 70_000).map(lambda n: bytes([7]) * n)))
def test_message_is_one_codec_frame_and_round_trips(frame_type: int, request_id: int, method: str,
                                                     payload: bytes) -> None:
    buffers = wire.encode_message(frame_type, [request_id, method], memoryview(payload))
    data = b"".join(bytes(b) for b in buffers)
    frames = _core.codec.FrameDecoder(1 << 20).feed(data)
    assert len(frames) == 1 and frames[0][0] == frame_type
    header, view = wire.decode_message(frames[0][1])
    assert header == [request_id, method] and view == payload
    # Byte-identical to what the codec frames: the large-payload path agrees with it.
    body = frames[0][1]
    assert data == _core.codec.encode_frame(frame_type, body)


def test_large_payload_is_not_copied_on_send() -> None:
    payload = bytearray(1 << 20)
    buffers = wire.encode_message(wire.REQUEST, [1, "append"], payload)
    assert buffers[-1] is payload


@pytest.mark.parametrize("body", [b"", b"\x09abc", b"\x02\xc1\xc1", b"\x01"])
def test_malformed_body_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        wire.decode_message(body)


@pytest.mark.parametrize("header", [[1, 2], {"v": 1}, {"v": 1, "cluster": "c", "from": -1, "to": 2},
                                    {"v": "1", "cluster": "c", "from": 1, "to": 2},
                                    {"v": 1, "cluster": "c", "from": True, "to": 2}])
def test_malformed_hello_is_a_protocol_error(header: object) -> None:
    with pytest.raises(ProtocolError):
        wire.parse_hello(header)


def test_hello_round_trip() -> None:
    data = b"".join(wire.encode_hello("prod", 3, 5))
    [(frame_type, body)] = _core.codec.FrameDecoder(wire.PRE_HELLO_MAX_FRAME).feed(data)
    assert frame_type == wire.HELLO
    assert wire.parse_hello(wire.decode_message(body)[0]) == (wire.PROTOCOL_VERSION, "prod", 3, 5)


@pytest.mark.parametrize("value", [100, wire.PRE_HELLO_MAX_FRAME - 1, 2**32, "big"])
def test_bad_frame_limit_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError):
        wire.check_max_frame_bytes(value)  # type: ignore[arg-type]


def test_backoff_doubles_to_the_cap_within_jitter_and_resets() -> None:
    b = Backoff(0.05, 1.0, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(10)]
    caps = [min(1.0, 0.05 * 2**i) for i in range(10)]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps))
    again = Backoff(0.05, 1.0, rng=random.Random(7))
    assert [next(iter(again)) for _ in range(10)] == delays  # same seed, same delays
    b.reset()
    assert b.attempt == 0 and 0.025 <= b.next_delay() <= 0.05


def test_backoff_without_jitter_is_exact() -> None:
    b = Backoff(0.2, 1.0, jitter=0.0)
    assert [b.next_delay() for _ in range(5)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])  # openraft's policy


@pytest.mark.parametrize("kw", [{"initial": 0}, {"maximum": 0.01}, {"factor": 0.5}, {"jitter": 2}])
def test_backoff_rejects_bad_arguments(kw: dict) -> None:
    with pytest.raises(ConfigError):
        Backoff(**kw)


async def test_window_blocks_when_full_and_serves_in_order() -> None:
    w = InflightWindow(max_count=2, max_bytes=100)
    order: list[str] = []
    async with asyncio.timeout(5):
        await w.acquire(10)
        await w.acquire(10)

        async def wait(name: str, n: int) -> None:
            await w.acquire(n)
            order.append(name)

        a = asyncio.ensure_future(wait("a", 10))
        b = asyncio.ensure_future(wait("b", 10))
        await asyncio.sleep(0)
        assert w.waiting == 2 and not a.done()
        w.release(10)
        await a
        assert order == ["a"] and w.count == 2 and not b.done()
        w.release(10)
        await b
        assert order == ["a", "b"]


async def test_window_bytes_limit_and_oversized_request() -> None:
    w = InflightWindow(max_count=10, max_bytes=100)
    async with asyncio.timeout(5):
        await w.acquire(60)
        big = asyncio.ensure_future(w.acquire(500))  # larger than the whole window
        small = asyncio.ensure_future(w.acquire(10))  # fits, but must not overtake (FIFO)
        await asyncio.sleep(0)
        assert not big.done() and not small.done()
        w.release(60)
        await big  # admitted alone once the window is empty
        assert w.nbytes == 500 and not small.done()
        w.release(500)
        await small
        assert w.count == 1 and w.nbytes == 10


async def test_window_cancelled_waiter_gives_way() -> None:
    w = InflightWindow(max_count=1, max_bytes=100)
    async with asyncio.timeout(5):
        await w.acquire(1)
        first = asyncio.ensure_future(w.acquire(1))
        second = asyncio.ensure_future(w.acquire(1))
        await asyncio.sleep(0)
        first.cancel()
        w.release(1)
        await second
        assert first.cancelled() and w.count == 1


@pytest.mark.parametrize("name", ["c" * (wire.MAX_CLUSTER_NAME_BYTES + 1), "é" * 65, 42])
def test_cluster_name_too_long_for_the_hello_is_a_config_error(name: object) -> None:
    from raftx.network import RpcClient, RpcServer

    with pytest.raises(ConfigError):
        RpcClient("127.0.0.1", 1, cluster_name=name, node_id=1, target_id=2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        RpcServer(lambda *a: None, cluster_name=name, node_id=2)  # type: ignore[arg-type]


def test_longest_cluster_name_and_ids_fit_the_hello() -> None:
    data = b"".join(wire.encode_hello("é" * (wire.MAX_CLUSTER_NAME_BYTES // 2), 2**64 - 1, 2**64 - 1))
    [(_, body)] = _core.codec.FrameDecoder(wire.PRE_HELLO_MAX_FRAME).feed(data)
    assert wire.parse_hello(wire.decode_message(body)[0])[2:] == (2**64 - 1, 2**64 - 1)


@pytest.mark.parametrize("node_id", [-1, 2**64, "1", True, None])
def test_bad_node_id_is_a_config_error(node_id: object) -> None:
    from raftx.network import RpcClient, RpcServer

    with pytest.raises(ConfigError):
        RpcClient("127.0.0.1", 1, cluster_name="c", node_id=node_id, target_id=2)  # type: ignore[arg-type]
    if node_id is not None:  # target_id=None is the any-target hello (plain HOST:PORT clients)
        with pytest.raises(ConfigError):
            RpcClient("127.0.0.1", 1, cluster_name="c", node_id=1, target_id=node_id)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        RpcServer(lambda *a: None, cluster_name="c", node_id=node_id)  # type: ignore[arg-type]


def test_any_target_hello_round_trip_and_missing_target_is_malformed() -> None:
    data = b"".join(wire.encode_hello("prod", 3, None))
    [(_, body)] = _core.codec.FrameDecoder(wire.PRE_HELLO_MAX_FRAME).feed(data)
    assert wire.parse_hello(wire.decode_message(body)[0]) == (wire.PROTOCOL_VERSION, "prod", 3, None)
    with pytest.raises(ProtocolError):
        wire.parse_hello({"v": 1, "cluster": "c", "from": 1})  # "to" absent is not "any target"
