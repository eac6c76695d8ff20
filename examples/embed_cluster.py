"""Embed a 3-node raftx cluster in an asyncio service: one process, loopback TCP, durable logs."""
import asyncio
import contextlib
import tempfile

import raftx
from raftx.network import RaftServer, TcpNetworkFactory
from raftx.storage import MemStateMachine, SegmentedLogStore


async def main() -> list[bytes]:
    async with contextlib.AsyncExitStack() as stack:  # unwinds: nodes stop, then servers, logs, files
        d = stack.enter_context(tempfile.TemporaryDirectory())
        nodes: dict[int, tuple[raftx.Raft, raftx.BasicNode]] = {}
        rafts: list[raftx.Raft] = []
        for i in (1, 2, 3):
            store = await SegmentedLogStore.open(f"{d}/node{i}", node_id=i)
            stack.push_async_callback(store.close)
            rafts.append(raft := await raftx.Raft.new(i, raftx.Config(), TcpNetworkFactory(), store, MemStateMachine()))
            server = await stack.enter_async_context(RaftServer(raft, "127.0.0.1", 0))  # any free port
            nodes[i] = (raft, raftx.BasicNode(server.addr))
        for raft in rafts:
            stack.push_async_callback(raft.shutdown)
        await rafts[0].initialize({i: node for i, (_, node) in nodes.items()})
        leader = nodes[await rafts[0].wait(10).leader()][0]
        return [(await leader.client_write(b"hello %d" % k)).data for k in range(3)]


if __name__ == "__main__":
    print(asyncio.run(main()))  # with uvloop installed: uvloop.run(main())
