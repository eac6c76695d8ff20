"""In-process key-value nodes over real TCP on 127.0.0.1 (port 0) for the kv tests.

Each node is a `raftx.Raft` with a `KVStateMachine`, served by a `KVNodeServer`
(Raft RPCs and ``kv.*`` on one port). Every wait is bounded by ``WAIT`` seconds.
"""

from __future__ import annotations

from typing import Any

from raftx import Config
from raftx.kv import KVClient, KVStateMachine
from raftx.kv.service import KVNodeServer
from raftx.network.raft_rpc import TcpNetworkFactory
from raftx.raft import Raft
from raftx.storage import MemLogStore
from raftx.types import BasicNode, ServerState
from tests.runtime.raftkit import agreed_leader

WAIT = 20.0
CLUSTER = "kv-test"


def fast_config() -> Config:
    return Config(cluster_name=CLUSTER, heartbeat_interval=20, election_timeout_min=150,
                  election_timeout_max=300).validate()


class KVCluster:
    """N in-process nodes; ``stop(i)`` / ``start(i)`` keep node i's stores (a restart)."""

    def __init__(self, n: int = 3) -> None:
        self.n = n
        self.config = fast_config()
        self.rafts: dict[int, Raft] = {}
        self.sms: dict[int, KVStateMachine] = {}
        self.stores: dict[int, MemLogStore] = {}
        self.servers: dict[int, KVNodeServer] = {}
        self.addrs: dict[int, str] = {}

    async def start(self, i: int, port: int = 0) -> None:
        if i not in self.stores:
            self.stores[i] = MemLogStore()
            self.sms[i] = KVStateMachine()
        raft = await Raft.new(i, self.config, TcpNetworkFactory(), self.stores[i], self.sms[i])
        server = KVNodeServer(raft, self.sms[i], "127.0.0.1", port, write_timeout=5.0, read_timeout=2.0)
        await server.start()
        self.rafts[i], self.servers[i], self.addrs[i] = raft, server, server.addr

    async def stop(self, i: int) -> None:
        await self.servers.pop(i).close()
        await self.rafts.pop(i).shutdown()

    async def __aenter__(self) -> KVCluster:
        for i in range(1, self.n + 1):
            await self.start(i)
        await self.rafts[1].initialize({i: BasicNode(a) for i, a in self.addrs.items()})
        await self.rafts[1].wait(WAIT).state(ServerState.LEADER, "node 1 leads")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for i in list(self.rafts):
            await self.stop(i)

    def client(self, **kw: Any) -> KVClient:
        kw.setdefault("cluster_name", CLUSTER)
        kw.setdefault("timeout", WAIT)
        return KVClient([f"{i}={a}" for i, a in self.addrs.items()], **kw)

    async def leader(self) -> int:
        """The id of the leader all running nodes agree on (bounded wait)."""
        return await agreed_leader(self.rafts, WAIT)
