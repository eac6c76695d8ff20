"""A node whose client connection slots are full still admits its members (issue 11).

Before the fix ``max_connections`` counted every connection at accept time, so
strangers' idle connections (a hello naming a non-member sender, which never time
out) filled it and the node refused its own leader's and candidates' connections:
here, after the leader stops, the two survivors could never elect a new one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import pytest

from raftx import _core
from raftx.network import wire
from tests.runtime.raftkit import WAIT, Cluster

pytestmark = pytest.mark.timeout(90)

SLOTS = 4


def stranger_hello(cluster_name: str, target: int) -> bytes:
    header = msgpack.packb({"v": wire.PROTOCOL_VERSION, "cluster": cluster_name, "from": 999, "to": target})
    return _core.codec.encode_frame(wire.HELLO, bytes([len(header)]) + header)


async def fill(port: int, cluster_name: str, target: int) -> list[asyncio.StreamWriter]:
    """Open idle stranger connections until the node refuses one; return the held ones."""
    held = []
    for _ in range(SLOTS + 2):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(stranger_hello(cluster_name, target))
        head = await reader.readexactly(5)
        await reader.readexactly(int.from_bytes(head[:4], "little") - 1)
        if head[4] != wire.HELLO_ACK:
            writer.close()
            return held
        held.append(writer)
    raise AssertionError("the node accepted more stranger connections than max_connections")


async def test_strangers_filling_the_connection_slots_cannot_lock_out_members(tmp_path: Path) -> None:
    c = Cluster("tcp", durable=True, tmp=tmp_path)
    held: list[asyncio.StreamWriter] = []
    try:
        leader = await c.initialize([1, 2, 3])
        survivors = [i for i in c.nodes if i != leader.id]
        for i in survivors:
            rpc = c.servers[i].rpc
            rpc.max_connections = SLOTS
            held += await fill(c.ports[i], c.config.cluster_name, i)
            # One slot fewer from now on: the old leader's connection, gone below, frees
            # none for the next member (the flood already holds every slot).
            rpc.max_connections = SLOTS - 1
        await c.stop(leader.id)
        new = await c.leader(among=survivors, timeout=WAIT)  # a candidate's connection must get in
        resp = await new.client_write(b"after the flood")
        for i in survivors:
            await c.nodes[i].wait(WAIT).applied_index_at_least(resp.log_id.index, "replicated")
    finally:
        for w in held:
            w.close()
        await c.close()


async def test_strangers_partial_frames_stay_within_one_receive_budget(tmp_path: Path) -> None:
    """Before the fix each connection could hold a partial frame of up to max_frame_bytes
    with no total: eight strangers here made a follower hold 8 MiB against a 2 MiB budget."""
    c = Cluster("tcp", durable=True, tmp=tmp_path)
    held: list[asyncio.StreamWriter] = []
    try:
        leader = await c.initialize([1, 2, 3])
        target = next(i for i in c.nodes if i != leader.id)
        rpc = c.servers[target].rpc
        budget = 2 << 20
        rpc.max_receive_buffer_bytes = budget
        sent = 1 << 20
        partial = int(sent + 1000).to_bytes(4, "little") + bytes([wire.REQUEST]) + bytes(sent - 5)
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", c.ports[target])
            writer.write(stranger_hello(c.config.cluster_name, target))
            head = await reader.readexactly(5)
            await reader.readexactly(int.from_bytes(head[:4], "little") - 1)
            writer.write(partial)
            await writer.drain()
            held.append(writer)
        socknames = {w.get_extra_info("sockname") for w in held}

        def strangers() -> list:  # the server's side of the strangers' connections still open
            return [conn for conn in rpc._connections if conn.peername in socknames and not conn._closing]

        async with asyncio.timeout(WAIT):  # until the node read every byte sent (or closed the sender)
            while any(conn._decoder.buffered < sent for conn in strangers()):
                await asyncio.sleep(0.01)
        assert sum(conn._decoder.buffered for conn in strangers()) <= budget
        resp = await leader.client_write(b"the leader still gets through")
        await c.nodes[target].wait(WAIT).applied_index_at_least(resp.log_id.index, "replicated")
    finally:
        for w in held:
            w.close()
        await c.close()
