"""One AppendEntries hop of the Raft RPC layer (`raftx.network.raft_rpc`), in process and over TCP.

    python -m pytest benchmarks/bench_rpc.py --benchmark-only
    RAFTX_NO_EXTENSIONS=1 python -m pytest benchmarks/bench_rpc.py --benchmark-only   # the pure twins

What is measured (the `_core` twin in use is whichever the process selected, so run
it twice to compare compiled with pure):

* ``codec_hop``: a leader's 256-entry batch of 256-byte payloads through the code a
  hop runs, without a socket: the request encoded as the transport sends it, framed
  (`raftx.network.wire.encode_message`), the frame split by `_core.codec.FrameDecoder`,
  then `raftx.network.raft_rpc.decode_request` (which CRC-checks every record);
* ``codec_hop_1mib``: the same with 16 records of 64 KiB (the copies dominate);
* ``tcp_append``: 64 such 256-entry AppendEntries in flight through `RpcRaftNetwork`
  to an `RpcServer` whose handler decodes each request and answers it (loopback).

Written against the public surface that exists before and after the codec/transport
split, so the same file measures both (issue 17 item 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from raftx import _core
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse
from raftx.network import RpcClient, RpcServer, wire
from raftx.network import raft_rpc
from raftx.types import Entry, LogId, Vote

try:
    from raftx.records import EncodedBatch
except ImportError:  # before issue 17: the batch lived in the storage layer
    from raftx.storage.batch import EncodedBatch  # type: ignore[no-redef]


def _request(n: int, size: int) -> AppendEntriesRequest:
    batch = EncodedBatch.from_entries([Entry(LogId(3, 10 + i), bytes([i % 256]) * size) for i in range(n)])
    return AppendEntriesRequest(Vote(3, 1, True), LogId(3, 9), batch, LogId(3, 9))


def _send_buffers(req: AppendEntriesRequest) -> list[Any]:
    """The buffers the client hands to ``transport.writelines`` for ``req``."""
    parts = getattr(raft_rpc, "encode_request_parts", None)
    payload = parts("append", req) if parts is not None else raft_rpc.encode_request("append", req)
    return wire.encode_message(wire.REQUEST, [1, "append"], payload)


def _hop(req: AppendEntriesRequest) -> Any:
    decoder = _core.codec.FrameDecoder(1 << 30)
    frames: list[tuple[int, bytes]] = []
    for buf in _send_buffers(req):  # what the socket delivers, one write at a time
        frames += decoder.feed(buf)
    (_, body), = frames
    _, payload = wire.decode_message(body)
    got = raft_rpc.decode_request("append", payload)
    assert len(got.entries) == len(req.entries)
    return got


def test_codec_hop(benchmark: Any) -> None:
    benchmark(_hop, _request(256, 256))


def test_codec_hop_1mib(benchmark: Any) -> None:
    benchmark(_hop, _request(16, 64 * 1024))


_RESPONSE = AppendEntriesResponse(Vote(3, 1, True), True, LogId(3, 265), 0, 0)


def _encode_response(resp: AppendEntriesResponse) -> Any:
    enc = getattr(raft_rpc, "encode_response", None)
    return enc("append", resp) if enc is not None else raft_rpc._encode_append_response(resp)  # type: ignore[attr-defined]


@pytest.fixture
def tcp_network() -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()
    answer = _encode_response(_RESPONSE)

    async def handler(sender: int, method: str, payload: memoryview) -> Any:
        raft_rpc.decode_request(method, payload)
        return answer

    async def start() -> tuple[RpcServer, Any]:
        server = RpcServer(handler, "127.0.0.1", 0, cluster_name="bench", node_id=2, max_frame_bytes=64 << 20)
        await server.start()
        client = RpcClient("127.0.0.1", server.port, cluster_name="bench", node_id=1, target_id=2,
                           max_in_flight=128, max_frame_bytes=64 << 20)
        return server, raft_rpc.RpcRaftNetwork(client)

    server, network = loop.run_until_complete(start())
    try:
        yield loop, network
    finally:
        loop.run_until_complete(network.close())
        loop.run_until_complete(server.close())
        loop.close()


def test_tcp_append(benchmark: Any, tcp_network: tuple[asyncio.AbstractEventLoop, Any]) -> None:
    loop, network = tcp_network
    req = _request(256, 256)

    async def burst() -> None:
        await asyncio.gather(*(network.append_entries(req) for _ in range(64)))

    benchmark.pedantic(lambda: loop.run_until_complete(burst()), rounds=20, warmup_rounds=2)
