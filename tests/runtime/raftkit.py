"""A cluster of in-process raftx nodes for the runtime and integration tests.

`Cluster` starts nodes over a `MemRouter` (``transport="mem"``) or real TCP on
127.0.0.1 with port 0 (``transport="tcp"``), with memory stores or durable ones
in a temp dir (``durable=True``: `SegmentedLogStore` + a `MemStateMachine` whose
snapshots are files). Every wait is bounded (``WAIT`` seconds).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raftx import Config
from raftx.network import MemRouter
from raftx.network.raft_rpc import MemNetworkFactory, RaftServer, TcpNetworkFactory, serve_on_router
from raftx.raft import Raft
from raftx.runtime.tasks import first_of
from raftx.storage import MemLogStore, MemStateMachine, SegmentedLogStore
from raftx.types import BasicNode, ServerState

try:
    import uvloop
except ImportError:  # an optional extra: the stdlib loop is always tested
    uvloop = None

#: Upper bound of every wait in these tests (seconds); generous for a loaded 2-core box.
WAIT = 10.0


def fast_config(**kw: Any) -> Config:
    """Short timeouts so elections and failovers take tens of milliseconds."""
    base: dict[str, Any] = dict(heartbeat_interval=25, election_timeout_min=250, election_timeout_max=500,
                                cluster_name="test-cluster")
    base.update(kw)
    return Config(**base).validate()


class Cluster:
    """In-process nodes sharing one transport (see the module docstring)."""

    def __init__(self, transport: str = "mem", *, durable: bool = False, tmp: Path | None = None,
                 config: Config | None = None, server_ssl: _ssl.SSLContext | None = None,
                 client_ssl: _ssl.SSLContext | None = None, io: Any = None) -> None:
        assert transport in ("mem", "tcp")
        assert not durable or tmp is not None
        self.transport = transport
        self.durable = durable
        self.tmp = tmp
        self.config = config or fast_config()
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.io = io  # FileIO for node stores (fault injection), keyed by node id
        self.router = MemRouter()
        self.nodes: dict[int, Raft] = {}
        self.stores: dict[int, Any] = {}
        self.sms: dict[int, MemStateMachine] = {}
        self.servers: dict[int, RaftServer] = {}
        self.ports: dict[int, int] = {}

    def addr(self, i: int) -> BasicNode:
        if self.transport == "mem":
            return BasicNode(f"mem:{i}")
        return BasicNode(f"127.0.0.1:{self.ports[i]}")

    async def _stores(self, i: int) -> tuple[Any, MemStateMachine]:
        if not self.durable:
            return MemLogStore(), MemStateMachine()
        assert self.tmp is not None
        d = self.tmp / f"node{i}"
        opts: dict[str, Any] = {"cluster_name": self.config.cluster_name, "node_id": i}
        if self.io is not None and i in self.io:
            opts["io"] = self.io[i]
        store = await SegmentedLogStore.open(d / "log", **opts)
        sm = await MemStateMachine.open(d / "snap")
        return store, sm

    async def start(self, i: int) -> Raft:
        """Start (or restart) node ``i`` from its stores."""
        store, sm = await self._stores(i)
        if self.transport == "mem":
            net: Any = MemNetworkFactory(self.router)
        else:
            net = TcpNetworkFactory(ssl=self.client_ssl, server_hostname="localhost" if self.client_ssl else None)
        raft = await Raft.new(i, self.config, net, store, sm)
        self.nodes[i], self.stores[i], self.sms[i] = raft, store, sm
        if self.transport == "mem":
            serve_on_router(self.router, raft)
        else:
            server = RaftServer(raft, "127.0.0.1", self.ports.get(i, 0), ssl=self.server_ssl)
            await server.start()
            self.servers[i] = server
            self.ports[i] = server.port
        return raft

    async def stop(self, i: int) -> None:
        """Stop node ``i`` (its stores are closed; `start` brings it back from them)."""
        raft = self.nodes.pop(i)
        if self.transport == "mem":
            self.router.unregister(i)
        else:
            await self.servers.pop(i).close()
        await raft.shutdown()
        store = self.stores.pop(i)
        if self.durable:
            await store.close()
        self.sms.pop(i, None)

    async def start_many(self, ids: list[int]) -> None:
        for i in ids:
            await self.start(i)

    async def initialize(self, ids: list[int]) -> Raft:
        """Start ``ids``, initialize the cluster from the first, wait for a leader."""
        await self.start_many([i for i in ids if i not in self.nodes])
        await self.nodes[ids[0]].initialize({i: self.addr(i) for i in ids})
        return await self.leader()

    async def leader(self, among: list[int] | None = None, timeout: float = WAIT) -> Raft:
        """The node every live node in ``among`` agrees is leader (waits on metrics changes)."""
        ids = among if among is not None else list(self.nodes)
        return self.nodes[await agreed_leader({i: self.nodes[i] for i in ids}, timeout)]

    async def close(self) -> None:
        for i in list(self.nodes):
            await self.stop(i)
        await self.router.close()


async def agreed_leader(nodes: Mapping[int, Raft], timeout: float = WAIT) -> int:
    """The id of the node that leads and that every one of ``nodes`` names as leader
    (waits on metrics changes; `TimeoutError` after ``timeout`` seconds)."""
    ids = list(nodes)
    rxs = [nodes[i].metrics() for i in ids]
    async with asyncio.timeout(timeout):
        while True:
            ms = [rx.borrow_and_update() for rx in rxs]
            for i, m in zip(ids, ms):
                if m.state == ServerState.LEADER and all(x.current_leader == i for x in ms):
                    return i
            await first_of(rx.changed() for rx in rxs)


def loop_factories(item: Any, files: tuple[str, ...] | None = None) -> dict[str, Any]:
    """For ``pytest_asyncio_loop_factories``: run the tests in ``files`` (None: every test
    that sees the hook) on the stdlib loop and, when installed, on uvloop (the loop is
    the application's choice)."""
    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None and (files is None or item.path.name in files):
        factories["uvloop"] = uvloop.new_event_loop
    return factories
