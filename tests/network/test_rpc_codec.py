"""The Raft RPC codec and transport split (issue 17 item 4): one table of methods, and
an AppendEntries batch that crosses a hop without being copied.

Before the split each batch was copied twice per hop: joined with its header into one
payload on the sender, and ``bytes(body)`` on the receiver.
"""

from __future__ import annotations

from typing import Any

import pytest

from raftx import _core
from raftx.errors import ProtocolError
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, TransferLeaderRequest, VoteRequest
from raftx.network import RaftNetworkFactory, TcpNetworkFactory, wire
from raftx.network.raft_rpc import MemNetworkFactory, RpcRaftNetwork
from raftx.network.memory import MemRouter
from raftx.network.rpc_codec import METHODS, decode_request, encode_request, encode_request_parts, encode_response
from raftx.records import EncodedBatch
from raftx.types import Entry, LogId, Vote

BIG = 64 * 1024  # above wire's join threshold


def _request(size: int = BIG) -> AppendEntriesRequest:
    batch = EncodedBatch.from_entries([Entry(LogId(3, 10 + i), bytes([i]) * size) for i in range(4)])
    return AppendEntriesRequest(Vote(3, 1, True), LogId(3, 9), batch, LogId(3, 9))


def test_the_sender_writes_the_batch_buffer_itself() -> None:
    req = _request()
    parts = encode_request_parts("append", req)
    assert any(p is req.entries.data for p in parts)
    buffers = wire.encode_message(wire.REQUEST, [7, "append"], parts)
    assert any(b is req.entries.data for b in buffers), "the batch was copied into the message"
    body = bytes([len(wire._packb([7, "append"]))]) + wire._packb([7, "append"]) + encode_request("append", req)
    assert b"".join(buffers) == _core.codec.encode_frame(wire.REQUEST, body)


def test_small_payload_pieces_are_joined_into_one_frame() -> None:
    req = _request(size=10)
    buffers = wire.encode_message(wire.REQUEST, [7, "append"], encode_request_parts("append", req))
    assert len(buffers) == 1
    assert wire.payload_size([b"ab", memoryview(b"cde")]) == 5 == wire.payload_size(b"abcde")


def test_the_receiver_keeps_the_batch_as_a_view_of_the_frame() -> None:
    req = _request()
    frame = b"\x00" * 9 + encode_request("append", req)  # as a frame body holds it: after a prefix
    got = decode_request("append", memoryview(frame)[9:])
    assert isinstance(got.entries, EncodedBatch) and got.entries == req.entries
    data = got.entries.data
    assert isinstance(data, memoryview) and data.obj is frame, "the received batch was copied"
    b = got.entries
    assert _core.codec.record_payloads(data, b.offsets, b.lengths) == [e.payload for e in req.entries]  # in place


def test_a_batch_in_a_mutable_buffer_is_copied_before_it_is_trusted() -> None:
    """Validated records must not change afterwards: a view of a bytearray is copied."""
    buf = bytearray(encode_request("append", _request(size=8)))
    got = decode_request("append", memoryview(buf))
    assert type(got.entries.data) is bytes
    buf[-1] ^= 0xFF
    b = got.entries
    assert _core.codec.record_payloads(b.data, b.offsets, b.lengths)[-1] == bytes([3]) * 8


class _Recorder:
    """An RPC caller that records what it is handed and answers an AppendEntries."""

    def __init__(self, lists: bool) -> None:
        self.writes_buffer_lists = lists
        self.payloads: list[Any] = []

    async def call(self, method: str, payload: Any = b"", timeout: float | None = None) -> bytes:
        self.payloads.append(payload)
        return encode_response("append", AppendEntriesResponse(Vote(3, 1, True), True, LogId(3, 13), 0, 0))


@pytest.mark.parametrize("lists", [True, False])
async def test_rpc_network_hands_a_list_caller_the_batch_uncopied(lists: bool) -> None:
    req = _request()
    caller = _Recorder(lists)
    resp = await RpcRaftNetwork(caller).append_entries(req)
    assert resp.success and resp.matching == LogId(3, 13)
    (payload,) = caller.payloads
    if lists:
        assert any(p is req.entries.data for p in payload)
    else:  # a caller that takes one buffer (MemRouter, the simulation, a test's) gets bytes
        assert type(payload) is bytes and payload == encode_request("append", req)


def test_one_table_covers_every_method() -> None:
    assert set(METHODS) == {"append", "vote", "snapshot", "transfer", "forward"}
    for req, name in ((VoteRequest(Vote(2, 1), LogId(1, 3), True), "vote"),
                      (TransferLeaderRequest(Vote(2, 1, True), 3, LogId(1, 3)), "transfer")):
        assert decode_request(name, encode_request(name, req)) == req
    with pytest.raises(ProtocolError):
        decode_request("nope", b"")
    with pytest.raises(ValueError):
        encode_request("nope", None)


def test_bind_local_is_part_of_the_factory_protocol() -> None:
    assert "bind_local" in RaftNetworkFactory.__dict__
    assert isinstance(TcpNetworkFactory(), RaftNetworkFactory)
    assert isinstance(MemNetworkFactory(MemRouter()), RaftNetworkFactory)

    class NoBind:
        async def new_client(self, target: int, node: Any) -> Any: ...

    assert not isinstance(NoBind(), RaftNetworkFactory)
