"""The TCP RPC server: accepts peers, checks their hello, and runs a handler per request.

One `RpcServer` listens for one node. Each connection must open with a ``HELLO``
(see `raftx.network.wire`) naming this cluster, this node as target, a supported
protocol version and an acceptable sender; anything else closes the connection with
a logged reason and a counter in `RpcServer.stats`, and the server keeps serving
other connections (DESIGN §2 rule 8).

Peer and client connections: a Raft peer always names the node it expects
(``"to": id``). A key-value client that knows only ``host:port`` may send the *any
target* hello (``"to": nil``); the server accepts it only when constructed with
``client_methods`` (a predicate on method names, e.g. ``KVService.handles``), names
itself in the ack (``{"node": id}``), and on that connection answers every other
method (all Raft RPCs) with a `ProtocolError` without calling the handler. So Raft
RPCs are only ever served to connections that named this node id. Until the hello is accepted a frame may be at
most `wire.PRE_HELLO_MAX_FRAME` bytes, so an unauthenticated peer cannot make the
server allocate more than that; afterwards ``max_frame_bytes`` applies.

Identity: once the hello is accepted the connection's `PeerConnection` (the hello's
sender id, the peer's address and certificate, a ``closed`` future) is what the
handler is called for: its ``sender_id`` is the handler's first argument and the
whole object is `current_connection` while the handler runs (Raft RPCs are
authorized by it, `raftx.network.raft_rpc`).

Ordering: by default (``ordered=True``) the requests of one connection are handled
one at a time, in the order they arrived, and answered in that order. Raft needs
this for AppendEntries from one leader (§5.3: a follower must see a leader's entries
in log order). Requests for ``client_methods`` are independent of each other and of
the Raft stream, so an ordered connection still pipelines them: each runs in its own
task as it comes off the queue, at most ``max_client_requests`` at a time per
connection. With ``ordered=False`` every request runs in its own task. Responses go
out as they complete (the client matches them by request id either way).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from raftx import _core
from raftx.errors import BindError, ProtocolError
from raftx.network import wire
from raftx.network.tcp import FlowControl, configure_socket

__all__ = ["RpcServer", "ServerStats", "PeerInfo", "PeerConnection", "Handler", "current_connection"]

logger = logging.getLogger(__name__)

#: ``async def handler(sender_id, method, payload) -> bytes``. ``payload`` is a read-only
#: `memoryview` over the received frame (no copy); ``bytes(payload)`` if you keep it
#: beyond the call is not needed (the view keeps the frame alive) but gives a `bytes`.
#: An exception raised by the handler is sent back and raised by the caller as
#: `raftx.errors.RemoteError`.
Handler = Callable[[int, str, memoryview], Awaitable[Any]]

_MAX_ERROR_MESSAGE = 4096


@dataclass
class PeerInfo:
    """What is known about a connecting peer when its hello is checked."""

    sender_id: int
    peername: Any
    #: The peer's TLS certificate (``SSLSocket.getpeercert()`` form) or None without TLS.
    peercert: dict[str, Any] | None


@dataclass(frozen=True)
class PeerConnection:
    """The identity of an accepted connection, as a handler may trust it.

    ``sender_id`` is the hello's ``"from"`` after every check of `RpcServer` (cluster,
    target, ``allowed_senders``, ``validate_peer``): it is the ``sender_id`` argument
    of the handler and the identity `raftx.network.raft_rpc.RaftRpcHandler` authorizes
    Raft RPCs by. Without TLS it is only a claim; bind it to a certificate in
    ``validate_peer`` (``peer.peercert``) to make it a proof. ``closed`` resolves when
    the connection is gone (a handler ties per-connection state to it).
    """

    sender_id: int
    peer: PeerInfo
    closed: asyncio.Future[None]


#: The `PeerConnection` of the request whose handler is running (None outside one).
current_connection: ContextVar[PeerConnection | None] = ContextVar("raftx_current_connection", default=None)


@dataclass
class ServerStats:
    """Counters of one `RpcServer` (monotonic except ``connections_active``)."""

    connections_accepted: int = 0
    connections_active: int = 0
    #: Hello refused: wrong cluster/target/version, sender not allowed, not a hello,
    #: or over ``max_connections``.
    connections_rejected: int = 0
    #: Peers that sent no complete hello within ``hello_timeout``.
    hello_timeouts: int = 0
    #: Bad frames after which the connection was closed: oversized length, unknown type,
    #: undecodable header, bytes sent before the hello was acknowledged, truncated at EOF.
    frames_rejected: int = 0
    requests: int = 0
    handler_errors: int = 0


class _ServerConnection(asyncio.Protocol, FlowControl):
    """One accepted connection: hello check, then request dispatch."""

    def __init__(self, server: RpcServer) -> None:
        FlowControl.__init__(self)
        self._server = server
        self._decoder = _core.codec.FrameDecoder(wire.PRE_HELLO_MAX_FRAME)
        self._hello_timer: asyncio.TimerHandle | None = None
        self.sender_id: int | None = None
        #: Set once the hello is accepted (`current_connection` while a handler runs).
        self.identity: PeerConnection | None = None
        #: The hello named no target (a client): only ``client_methods`` are served.
        self.any_target = False
        self.peername: Any = None
        self._closing = False
        self._queue: deque[tuple[int, str, memoryview]] = deque()
        self._queue_waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_slots = asyncio.Semaphore(server.max_client_requests)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop transports are not subclasses
        server = self._server
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        server._connections.add(self)
        stats = server.stats
        stats.connections_accepted += 1
        stats.connections_active += 1
        if stats.connections_active > server.max_connections:
            self._reject(f"too many connections (max_connections={server.max_connections})")
            return
        configure_socket(transport, server.keepalive)
        self._hello_timer = asyncio.get_running_loop().call_later(server.hello_timeout, self._on_hello_timeout)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._bad_frame(str(exc))
            return
        if self.sender_id is None and frames:
            if len(frames) > 1 or self._decoder.buffered:
                # §5.2 of the ecosystem notes: nothing may follow the hello before HelloAck.
                self._bad_frame("bytes after the hello before the hello was acknowledged")
                return
            self._on_hello(*frames[0])
            return
        for frame_type, body in frames:
            if self._closing:
                return
            self._on_frame(frame_type, body)

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        if self._decoder.buffered and not self._closing:
            server.stats.frames_rejected += 1
            logger.warning("peer %s (node %s): connection closed in the middle of a frame (%d bytes)",
                           self.peername, self.sender_id, self._decoder.buffered)
        self._closing = True
        self._flow_lost()
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        for task in self._tasks:
            task.cancel()
        self._wake_queue()
        server.stats.connections_active -= 1
        server._connections.discard(self)
        logger.debug("peer %s (node %s) disconnected: %s", self.peername, self.sender_id, exc)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- hello ------------------------------------------------------------------------

    def _on_hello_timeout(self) -> None:
        if self.sender_id is None and not self._closing:
            self._server.stats.hello_timeouts += 1
            logger.warning("peer %s sent no hello within %.3gs; closing", self.peername, self._server.hello_timeout)
            self._close()

    def _on_hello(self, frame_type: int, body: bytes) -> None:
        server = self._server
        if frame_type != wire.HELLO:
            self._bad_frame(f"first frame has type {frame_type}, expected a hello")
            return
        try:
            header, _ = wire.decode_message(body)
            version, cluster, sender, target = wire.parse_hello(header)
        except ProtocolError as exc:
            self._bad_frame(str(exc))
            return
        reason = None
        if version not in wire.SUPPORTED_VERSIONS:
            reason = f"unsupported protocol version {version} (supported: {sorted(wire.SUPPORTED_VERSIONS)})"
        elif cluster != server.cluster_name:
            reason = f"wrong cluster {cluster!r} (this is {server.cluster_name!r})"
        elif target is None and server.client_methods is None:
            reason = f"a target node id is required (this is node {server.node_id})"
        elif target is not None and target != server.node_id:
            reason = f"wrong target node {target} (this is node {server.node_id})"
        elif server.allowed_senders is not None and sender not in server.allowed_senders:
            reason = f"sender node {sender} is not allowed"
        elif server.validate_peer is not None:
            assert self.transport is not None
            info = PeerInfo(sender, self.peername, self.transport.get_extra_info("peercert"))
            try:
                ok = server.validate_peer(info)
            except Exception as exc:
                logger.exception("validate_peer raised for node %s", sender)
                ok, reason = False, f"peer validation failed: {type(exc).__name__}"
            if not ok and reason is None:
                reason = f"sender node {sender} refused by validate_peer"
        if reason is not None:
            self._reject(reason, sender=sender)
            return
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        self.sender_id = sender
        assert self.transport is not None
        self.identity = PeerConnection(
            sender, PeerInfo(sender, self.peername, self.transport.get_extra_info("peercert")), self.closed)
        self.any_target = target is None
        self._decoder = _core.codec.FrameDecoder(server.max_frame_bytes)
        self._write(wire.encode_message(wire.HELLO_ACK, {"v": wire.PROTOCOL_VERSION, "node": server.node_id}))
        if server.ordered:
            self._spawn(self._run_ordered())
        logger.debug("peer %s is node %s (cluster %r)", self.peername, sender, cluster)

    def _reject(self, reason: str, sender: int | None = None) -> None:
        self._server.stats.connections_rejected += 1
        logger.warning("rejecting connection from %s (node %s): %s", self.peername, sender, reason)
        self._write(wire.encode_message(wire.HELLO_REJECT, {"reason": reason[:200]}))
        self._close()

    # -- requests ---------------------------------------------------------------------

    def _on_frame(self, frame_type: int, body: bytes) -> None:
        if frame_type != wire.REQUEST:
            self._bad_frame(f"unexpected frame type {frame_type}")
            return
        try:
            header, payload = wire.decode_message(body)
        except ProtocolError as exc:
            self._bad_frame(str(exc))
            return
        if not (isinstance(header, list) and len(header) == 2 and isinstance(header[0], int)
                and isinstance(header[1], str) and len(header[1]) <= wire.MAX_METHOD_LENGTH):
            self._bad_frame(f"malformed request header {header!r:.100}")
            return
        server = self._server
        server.stats.requests += 1
        request_id, method = header
        if server.ordered:
            self._queue.append((request_id, method, payload))
            self._wake_queue()
            if len(self._queue) >= server.max_queued_requests and not self._read_paused:
                assert self.transport is not None
                self._read_paused = True
                self.transport.pause_reading()
        else:
            self._spawn(self._handle(request_id, method, payload))

    def _wake_queue(self) -> None:
        waiter = self._queue_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run_ordered(self) -> None:
        """Handle this connection's requests one at a time, in arrival order."""
        queue = self._queue
        loop = asyncio.get_running_loop()
        while not self._closing:
            if not queue:
                self._queue_waiter = loop.create_future()
                await self._queue_waiter
                self._queue_waiter = None
                continue
            request_id, method, payload = queue.popleft()
            if self._read_paused and len(queue) < self._server.max_queued_requests // 2:
                assert self.transport is not None
                self._read_paused = False
                self.transport.resume_reading()
            client_methods = self._server.client_methods
            if client_methods is not None and client_methods(method):
                await self._client_slots.acquire()  # bounded: a slot frees as a handler ends
                self._spawn(self._handle_client(request_id, method, payload))
            else:
                await self._handle(request_id, method, payload)

    async def _handle_client(self, request_id: int, method: str, payload: memoryview) -> None:
        try:
            await self._handle(request_id, method, payload)
        finally:
            self._client_slots.release()

    async def _handle(self, request_id: int, method: str, payload: memoryview) -> None:
        server = self._server
        assert self.sender_id is not None
        try:
            if self.any_target and not (server.client_methods is not None and server.client_methods(method)):
                raise ProtocolError(f"method {method!r:.70} needs a hello naming node {server.node_id} "
                                    "(any-target connections may call client methods only)")
            token = current_connection.set(self.identity)
            try:
                result = await server.handler(self.sender_id, method, payload)
            finally:
                current_connection.reset(token)
            if not isinstance(result, (bytes, bytearray, memoryview)):
                raise TypeError(f"handler for {method!r} returned {type(result).__name__}, not bytes")
            message = wire.encode_message(wire.RESPONSE, [request_id], result)
        except Exception as exc:
            server.stats.handler_errors += 1
            logger.debug("handler for %r from node %s raised %r", method, self.sender_id, exc)
            text = str(exc)[:_MAX_ERROR_MESSAGE].encode("utf-8", "replace")
            message = wire.encode_message(wire.ERROR, [request_id, type(exc).__name__[:64]], text)
        if self._closing:
            return
        self.send(message)
        await self.drain()

    # -- plumbing ---------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        self._server._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._server._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("connection task for node %s failed", self.sender_id, exc_info=task.exception())
            self._close()

    def _write(self, buffers: list[Any]) -> None:
        """Write now, not coalesced: the handshake frames precede a possible close."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(buffers)

    def _bad_frame(self, reason: str) -> None:
        self._server.stats.frames_rejected += 1
        logger.warning("closing connection from %s (node %s): %s", self.peername, self.sender_id, reason)
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (server shutdown)."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()


class RpcServer:
    """Serves one node's RPCs over TCP (optionally mutual TLS). See the module docstring.

    ``handler(sender_id, method, payload)`` is awaited for each request and returns
    the response bytes. ``allowed_senders`` (node ids) and ``validate_peer`` (a callable
    taking a `PeerInfo`, e.g. to bind a TLS certificate to a node id) restrict who may
    connect. ``client_methods`` (a predicate on method names; None: refuse) lets clients
    connect with the *any target* hello and call those methods only, and runs up to
    ``max_client_requests`` of them at once per connection (module docstring).
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
        max_client_requests: int = 64,
    ) -> None:
        wire.check_max_frame_bytes(max_frame_bytes)
        wire.check_cluster_name(cluster_name)
        wire.check_node_id("node_id", node_id)
        self.handler = handler
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
        if max_client_requests < 1:
            raise ValueError(f"max_client_requests must be >= 1, not {max_client_requests}")
        self.max_client_requests = max_client_requests
        self.stats = ServerStats()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._port: int | None = None

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
                lambda: _ServerConnection(self), self.host, self._requested_port, **kwargs
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
