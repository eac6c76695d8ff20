"""raftx's network layer: the protocols the runtime sends Raft RPCs through, a
pipelined TCP transport (`RpcServer` / `RpcClient`, optional mutual TLS), and an
in-process router with fault controls for tests (`MemRouter`). DESIGN §4.

A generic request/response RPC, one connection per peer::

    async def handler(sender_id: int, method: str, payload: memoryview) -> bytes:
        return bytes(payload)

    async with RpcServer(handler, "127.0.0.1", 0, cluster_name="c1", node_id=2) as server:
        async with RpcClient("127.0.0.1", server.port, cluster_name="c1",
                             node_id=1, target_id=2) as client:
            assert await client.call("echo", b"hi", timeout=1.0) == b"hi"

The same surface in process, with faults: ``router = MemRouter(random.Random(seed))``,
``router.register(2, handler)``, ``await router.client(1, 2).call("echo", b"hi")``,
``router.partition({1}, {2})``, ``router.set_link(1, 2, drop=0.1, delay=(0.001, 0.01))``.

Mutual TLS: pass ``ssl=`` contexts from `raftx.network.tls` (``server_context`` /
``client_context``); a certificate naming ``raftx-node-<id>`` binds a peer to its
node id, and `RpcServer` keeps per-node budgets on connections and receive buffers
(see `raftx.network.server` and SECURITY.md).

The library never installs an event loop policy; to use uvloop, run your program
with ``uvloop.run(main())`` (everything also works on the stdlib loop).
"""

from __future__ import annotations

from raftx.network.backoff import Backoff
from raftx.network.client import RpcClient
from raftx.network.memory import LinkFaults, MemClient, MemRouter, RouterStats
from raftx.network.protocols import RaftNetwork, RaftNetworkFactory, RPCOption
from raftx.network.server import PeerInfo, RpcServer, ServerStats
from raftx.network.window import InflightWindow
from raftx.network.raft_rpc import MemNetworkFactory, RaftServer, TcpNetworkFactory

__all__ = [
    "Backoff",
    "InflightWindow",
    "LinkFaults",
    "MemClient",
    "MemNetworkFactory",
    "MemRouter",
    "PeerInfo",
    "RPCOption",
    "RaftNetwork",
    "RaftNetworkFactory",
    "RaftServer",
    "RouterStats",
    "RpcClient",
    "RpcServer",
    "ServerStats",
    "TcpNetworkFactory",
]
