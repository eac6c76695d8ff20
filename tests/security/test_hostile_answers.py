"""A hostile *server* (e.g. something else listening on a member's address): its answers
are range-checked like requests, so an unusable term cannot reach the leader, which
adopts any higher term it sees (§5.1) and would then be unable to campaign."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest

from raftx.errors import ProtocolError
from raftx.messages import AppendEntriesRequest, VoteRequest
from raftx.network import RpcClient, RpcServer
from raftx.network.raft_rpc import RpcRaftNetwork
from raftx.types import Vote

HUGE = [2**63 - 1, 5, True]


def answer(header: Any) -> bytes:
    h = msgpack.packb(header)
    return struct.pack("<I", len(h)) + h


ANSWERS = {"append": answer([HUGE, False, None, -1, -1]), "vote": answer([HUGE, False, None, False]),
           "snapshot": answer([HUGE])}


async def hostile(sender: int, method: str, payload: memoryview) -> bytes:
    return ANSWERS[method]


@pytest.mark.parametrize("method", ["append", "vote"])
async def test_an_answer_with_an_unusable_term_is_refused(method: str) -> None:
    async with RpcServer(hostile, "127.0.0.1", 0, cluster_name="c", node_id=2) as server:
        async with RpcClient("127.0.0.1", server.port, cluster_name="c", node_id=1, target_id=2) as client:
            net = RpcRaftNetwork(client)
            with pytest.raises(ProtocolError, match="largest accepted term"):
                if method == "append":
                    await net.append_entries(AppendEntriesRequest(Vote(1, 1, True)))
                else:
                    await net.vote(VoteRequest(Vote(2, 1)))
