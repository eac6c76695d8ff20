"""The TCP RPC server: accepts peers, checks their hello, and runs a handler per request.

One `RpcServer` listens for one node. Each connection must open with a ``HELLO``
(see `raftx.network.wire`) naming this cluster, this node as target, a supported
protocol version and an acceptable sender; anything else closes the connection with
a logged reason and a counter in `RpcServer.stats`, and the server keeps serving
other connections (DESIGN §2 rule 8).

Peer and client connections: a Raft peer always names the node it expects
(``"to": id``). A key-value client that knows only ``host:port`` may send the *any
target* hello (``"to": nil``); the server accepts it only when constructed with
``accept_any_target=True`` and ``client_methods`` (a predicate on method names, e.g.
``KVService.handles``; `raftx.kv.service.KVNodeServer` gives both), names
itself in the ack (``{"node": id}``), and on that connection answers every other
method (all Raft RPCs) with a `ProtocolError` without calling the handler. So Raft
RPCs are only ever served to connections that named this node id. Until the hello is accepted a frame may be at
most `wire.PRE_HELLO_MAX_FRAME` bytes, so an unauthenticated peer cannot make the
server allocate more than that; afterwards ``max_frame_bytes`` applies.

The code: this module holds `RpcServer` (per-server state and budgets),
`raftx.network.server_conn` one connection, `raftx.network.identity` the
`PeerConnection` / `PeerInfo` / `ServerStats` types (re-exported here).

Identity: once the hello is accepted the connection's `PeerConnection` (the hello's
sender id, the peer's address and certificate, a ``closed`` future) is what the
handler is called for: its ``sender_id`` is the handler's first argument and the
whole object is `current_connection` while the handler runs (Raft RPCs are
authorized by it, `raftx.network.raft_rpc`).

Ordering: by default (``ordered=True``) the requests of one connection are handled
one at a time, in the order they arrived, and answered in that order. Raft needs
this for AppendEntries from one leader (§5.3: a follower must see a leader's entries
in log order). A handler with a ``start(sender_id, method, payload, reply)`` method
(`raftx.network.raft_rpc.RaftRpcHandler`: AppendEntries) pipelines those: the
request is started in its turn, which hands it to the node, and the next one is
taken without waiting for its answer; ``reply`` sends the answer when it comes (so
a follower's fsync covers the AppendEntries that arrived meanwhile). At most
``max_started_requests`` per connection are started and unanswered; the next
waits for an answer. Requests for ``client_methods`` are independent of each other and of
the Raft stream, so an ordered connection still pipelines them: each runs in its own
task, started in arrival order (at once when nothing is queued before it), at most
``max_client_requests`` at a time per connection. With ``ordered=False`` every request runs in its own task. Responses go
out as they complete (the client matches them by request id either way).

Identity (TLS): on a TLS server (``ssl``, with ``bind_node_certs``) the peer's
certificate says who it is (`raftx.network.tls`): a certificate naming
``raftx-node-<id>`` may only send hellos ``"from": <id>`` (another id is refused:
a member cannot speak for another node), and a certificate naming no node is a
client's: its connection is served ``client_methods`` only, whatever its hello says.
Each accepted connection gets a `PeerConnection`; handlers read the one of the
request they serve with ``current_connection.get()`` (e.g. the key-value service's
admin check).

Budgets (issue 11), all per server, each closing or refusing with a log line and a
`ServerStats` counter:

* *members* (peers): a named hello whose sender passes ``is_member(sender_id)`` (a
  `raftx.network.raft_rpc.RaftServer` passes "in the current membership or the
  current leader") or, on TLS, whose certificate names that sender (so a pristine
  node lets its future leader in). Members are always admitted and exempt from the
  client limits below, at most ``max_connections_per_member`` each (a new
  one closes that member's oldest: a restarted node's half-open connection);
* ``max_pending_connections`` (256): connections that have not finished their hello
  (each may hold `wire.PRE_HELLO_MAX_FRAME` bytes for ``hello_timeout``); one more
  closes the oldest pending one, so a flood of silent sockets cannot keep a member
  out;
* ``max_connections`` (1024): accepted connections that are not members' (clients,
  strangers); over it a hello is refused;
* ``client_idle_timeout`` (60 s): a non-member connection that received nothing and
  has no request in flight for that long is closed (its client reconnects on its
  next call);
* ``max_receive_buffer_bytes`` (256 MiB): all connections' received bytes not yet
  answered (partial frames plus requests queued or being handled); when a receive
  puts the total over it, the non-member connections holding the most are closed
  until it fits (members' bytes count but are never cut: a leader's AppendEntries
  must get through);
* ``max_request_errors`` (100): requests on one connection answered with a
  bad-request error (`ProtocolError`, `NotAuthorized`, `BadCommand`, other
  ``ValueError`` / ``TypeError``); one more closes it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any

from raftx.errors import BindError
from raftx.network import wire
from raftx.network.identity import Handler, PeerConnection, PeerInfo, ServerStats, current_connection
from raftx.network.server_conn import ServerConnection

__all__ = ["RpcServer", "ServerStats", "PeerInfo", "PeerConnection", "Handler", "current_connection"]

logger = logging.getLogger(__name__)


class RpcServer:
    """Serves one node's RPCs over TCP (optionally mutual TLS). See the module docstring.

    ``handler(sender_id, method, payload)`` is awaited for each request and returns
    the response bytes (``current_connection.get()`` tells it who is asking). ``allowed_senders``
    (node ids) and ``validate_peer`` (a callable taking a `PeerInfo`) restrict who may
    connect; with ``ssl`` and ``bind_node_certs`` (the default) a certificate naming
    ``raftx-node-<id>`` may only say it is from ``<id>`` and one naming no node gets
    client methods only. ``client_methods`` (a predicate on method names) are the
    methods a client connection may call, up to ``max_client_requests`` at once per
    connection; ``max_started_requests``: see Ordering in the module docstring;
    ``accept_any_target`` (needs ``client_methods``) lets clients connect
    with the *any target* hello (refused by default).
    ``is_member`` (a predicate on node ids) and the budgets ``max_pending_connections``,
    ``max_connections`` (non-member connections), ``max_connections_per_member``,
    ``client_idle_timeout`` (seconds, 0: never), ``max_receive_buffer_bytes`` and
    ``max_request_errors`` are described in the module docstring.
    Use ``async with RpcServer(...) as server`` or `start` / `close`.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        cluster_name: str,
        node_id: int,
        ssl: _ssl.SSLContext | None = None,
        max_frame_bytes: int = 64 * 1024 * 1024,
        ordered: bool = True,
        allowed_senders: Collection[int] | None = None,
        validate_peer: Callable[[PeerInfo], bool] | None = None,
        hello_timeout: float = 5.0,
        ssl_handshake_timeout: float = 5.0,
        max_connections: int = 1024,
        max_queued_requests: int = 1024,
        keepalive: bool = True,
        client_methods: Callable[[str], bool] | None = None,
        accept_any_target: bool = False,
        max_client_requests: int = 64,
        max_started_requests: int = 64,
        bind_node_certs: bool = True,
        is_member: Callable[[int], bool] | None = None,
        max_pending_connections: int = 256,
        max_connections_per_member: int = 4,
        client_idle_timeout: float = 60.0,
        max_receive_buffer_bytes: int = 256 * 1024 * 1024,
        max_request_errors: int = 100,
    ) -> None:
        wire.check_max_frame_bytes(max_frame_bytes)
        wire.check_cluster_name(cluster_name)
        wire.check_node_id("node_id", node_id)
        for name, value in (("max_client_requests", max_client_requests),
                            ("max_started_requests", max_started_requests),
                            ("max_pending_connections", max_pending_connections),
                            ("max_connections_per_member", max_connections_per_member)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, not {value}")
        if max_connections < 0 or max_request_errors < 0 or client_idle_timeout < 0:
            raise ValueError("max_connections, max_request_errors and client_idle_timeout must be >= 0")
        if accept_any_target and client_methods is None:
            raise ValueError("accept_any_target needs client_methods (all such a connection may call)")
        if max_receive_buffer_bytes < wire.PRE_HELLO_MAX_FRAME:
            raise ValueError(f"max_receive_buffer_bytes must be >= {wire.PRE_HELLO_MAX_FRAME}")
        self.handler = handler
        #: The handler's pipelined start (module docstring, Ordering), if it has one.
        self.start_request: Callable[..., bool] | None = getattr(handler, "start", None)
        self.host = host
        self._requested_port = port
        self.cluster_name = cluster_name
        self.node_id = node_id
        self.ssl = ssl
        self.max_frame_bytes = max_frame_bytes
        self.ordered = ordered
        self.allowed_senders = frozenset(allowed_senders) if allowed_senders is not None else None
        self.validate_peer = validate_peer
        self.hello_timeout = hello_timeout
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.max_connections = max_connections
        self.max_queued_requests = max(2, max_queued_requests)
        self.keepalive = keepalive
        self.client_methods = client_methods
        self.accept_any_target = accept_any_target
        self.max_client_requests = max_client_requests
        self.max_started_requests = max_started_requests
        self.bind_node_certs = bind_node_certs
        self.is_member = is_member
        self.max_pending_connections = max_pending_connections
        self.max_connections_per_member = max_connections_per_member
        self.client_idle_timeout = client_idle_timeout
        self.max_receive_buffer_bytes = max_receive_buffer_bytes
        self.max_request_errors = max_request_errors
        self.stats = ServerStats()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[ServerConnection] = set()
        self._pending: OrderedDict[ServerConnection, None] = OrderedDict()
        self._clients: set[ServerConnection] = set()
        self._members: dict[int, list[ServerConnection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._port: int | None = None

    # -- connection bookkeeping (budgets) ---------------------------------------------

    def _admit(self, conn: ServerConnection) -> None:
        """``conn``'s hello was accepted: it is a member's or a client's from now on."""
        self._pending.pop(conn, None)
        if not conn.member:
            self._clients.add(conn)
            return
        assert conn.sender_id is not None
        mine = self._members.setdefault(conn.sender_id, [])
        mine.append(conn)
        while len(mine) > self.max_connections_per_member:
            oldest = mine[0]
            self.stats.member_connections_replaced += 1
            logger.info("node %s has more than max_connections_per_member=%d connections; closing its oldest "
                        "(from %s)", conn.sender_id, self.max_connections_per_member, oldest.peername)
            oldest._close()  # removes it from ``mine``

    def _forget(self, conn: ServerConnection) -> None:
        self._connections.discard(conn)
        self._pending.pop(conn, None)
        self._clients.discard(conn)
        if conn.member and conn.sender_id is not None:
            mine = self._members.get(conn.sender_id)
            if mine is not None and conn in mine:
                mine.remove(conn)
                if not mine:
                    del self._members[conn.sender_id]

    def _enforce_buffer_budget(self) -> None:
        """Over ``max_receive_buffer_bytes``: close the non-member connections holding the
        most until the total fits (members' bytes are never cut)."""
        stats = self.stats
        victims = sorted((c for c in self._connections if not c.member and not c._closing and c.held_bytes),
                         key=lambda c: c.held_bytes, reverse=True)
        for conn in victims:
            if stats.buffered_bytes <= self.max_receive_buffer_bytes:
                break
            stats.buffer_evictions += 1
            logger.warning("receive buffers over max_receive_buffer_bytes=%d; closing the connection from %s "
                           "(sender %s) holding %d bytes", self.max_receive_buffer_bytes, conn.peername,
                           conn.sender_id, conn.held_bytes)
            conn._close()

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("RpcServer.port is known only after start()")
        return self._port

    async def start(self) -> None:
        """Bind and start accepting. Raises `raftx.errors.BindError` if binding fails."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
            kwargs["ssl_handshake_timeout"] = self.ssl_handshake_timeout
        try:
            self._server = await loop.create_server(
                lambda: ServerConnection(self), self.host, self._requested_port, **kwargs
            )
        except OSError as exc:
            raise BindError(f"cannot listen on {self.host}:{self._requested_port}: {exc}") from exc
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("node %s serving RPCs on %s:%d (cluster %r, tls=%s)",
                    self.node_id, self.host, self._port, self.cluster_name, self.ssl is not None)

    async def close(self) -> None:
        """Stop listening, drop every connection and cancel running handlers. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections)
        for conn in connections:
            conn.abort()
        # Handlers of connections that closed earlier may still be finishing their cancellation.
        waits = [conn.closed for conn in connections] + list(self._tasks)
        if waits:
            await asyncio.wait(waits, timeout=5.0)
        await server.wait_closed()
        logger.info("node %s stopped serving on port %s", self.node_id, self._port)

    async def __aenter__(self) -> RpcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
