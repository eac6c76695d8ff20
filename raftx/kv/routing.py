"""Which node a `raftx.kv.KVClient` asks, and its connections (the client's routing half).

The client knows nodes by id (negative ids stand for plain ``HOST:PORT`` addresses
whose id is not known yet: their any-target connections learn it from the node's
hello ack, `Routing._learn`), believes in one leader (learnt from answers and
redirects, forgotten on a failure), and keeps one `raftx.network.RpcClient` per
node; a connection it drops is closed in the background.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from typing import Any

from raftx.errors import Unreachable
from raftx.network.backoff import Backoff
from raftx.network.client import RpcClient
from raftx.network.raft_rpc import parse_addr

__all__ = ["Routing"]

logger = logging.getLogger(__name__)


class Routing:
    """The nodes, the believed leader and the connections of a `raftx.kv.KVClient`
    (a base class: the client sets these attributes up in its constructor)."""

    #: Node id -> address. Negative keys stand for plain addresses whose node id is
    #: not known yet (any-target connections; see `_learn`).
    nodes: dict[int, str]
    leader: int | None
    cluster_name: str
    client_id: int
    attempt_timeout: float
    max_in_flight: int
    ssl: _ssl.SSLContext | None
    _conns: dict[int, RpcClient]
    _retired: list[RpcClient]
    _rotation: int
    _tasks: set[asyncio.Task[None]]

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background (cancelled by the client's ``close``)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pick(self) -> int:
        if self.leader is not None and self.leader in self.nodes:
            return self.leader
        ids = sorted(self.nodes)
        self._rotation += 1
        return ids[self._rotation % len(ids)]

    def _failed(self, node_id: int) -> None:
        if self.leader == node_id:
            self.leader = None

    def _redirect(self, from_node: int, leader_id: Any, leader_addr: Any) -> None:
        if isinstance(leader_id, int) and leader_id >= 0:
            if isinstance(leader_addr, str) and leader_addr and self.nodes.get(leader_id) != leader_addr:
                try:
                    parse_addr(leader_addr)
                except Unreachable:
                    logger.warning("node %s redirected to an invalid address %r", from_node, leader_addr)
                else:
                    self.nodes[leader_id] = leader_addr
                    self._drop(leader_id)
                    for k in [k for k, a in self.nodes.items() if k < 0 and a == leader_addr]:
                        del self.nodes[k]  # a plain address that turned out to be this node
                        self._drop(k)
            if leader_id in self.nodes:
                self.leader = leader_id
                return
        self.leader = None

    def _drop(self, node_id: int) -> None:
        old = self._conns.pop(node_id, None)
        if old is not None:
            self._retired.append(old)
            self._spawn(old.close())

    def _learn(self, key: int) -> int:
        """After a successful call to ``key``: if it was a plain address (negative key),
        file it under the node id its server named in the hello ack; returns the id."""
        if key >= 0:
            return key
        conn = self._conns.get(key)
        node_id = conn.remote_id if conn is not None else None
        if conn is None or node_id is None:
            return key
        addr = self.nodes.pop(key)
        del self._conns[key]
        self.nodes.setdefault(node_id, addr)
        if node_id not in self._conns and self.nodes[node_id] == addr:
            self._conns[node_id] = conn  # keeps its any-target hello: kv.* is all it calls
        else:
            self._retired.append(conn)
            self._spawn(conn.close())
        return node_id

    def _conn(self, node_id: int) -> RpcClient:
        c = self._conns.get(node_id)
        if c is None:
            c = self._conns[node_id] = self._new_conn(node_id)
        return c

    def _new_conn(self, node_id: int) -> RpcClient:
        host, port = parse_addr(self.nodes[node_id])
        target = node_id if node_id >= 0 else None  # None: any-target hello (plain HOST:PORT)
        return RpcClient(host, port, cluster_name=self.cluster_name, node_id=self.client_id, target_id=target,
                         ssl=self.ssl, max_in_flight=self.max_in_flight, connect_timeout=self.attempt_timeout,
                         hello_timeout=self.attempt_timeout, backoff=Backoff(0.05, 1.0))
