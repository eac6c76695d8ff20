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
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from raftx import _core
from raftx.errors import BindError, NotAuthorized, ProtocolError
from raftx.network import tls, wire
from raftx.network.tcp import FlowControl, configure_socket
from raftx.stats import SERVER_TRAFFIC

__all__ = ["RpcServer", "ServerStats", "PeerInfo", "PeerConnection", "Handler", "current_connection"]

logger = logging.getLogger(__name__)

#: ``async def handler(sender_id, method, payload) -> bytes``. ``payload`` is a read-only
#: `memoryview` over the received frame (no copy); ``bytes(payload)`` if you keep it
#: beyond the call is not needed (the view keeps the frame alive) but gives a `bytes`.
#: An exception raised by the handler is sent back and raised by the caller as
#: `raftx.errors.RemoteError`.
Handler = Callable[[int, str, memoryview], Awaitable[Any]]

_MAX_ERROR_MESSAGE = 4096
# Handler errors that mean "the request was bad" (they count against max_request_errors).
_BAD_REQUEST = (ProtocolError, NotAuthorized, ValueError, TypeError)


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
    target, TLS certificate binding, ``allowed_senders``, ``validate_peer``): it is the
    ``sender_id`` argument of the handler. Without TLS it is only a claim; with TLS
    (``bind_node_certs``) a node's certificate proves it. ``closed`` resolves when the
    connection is gone (a handler ties per-connection state to it).
    """

    sender_id: int
    peer: PeerInfo
    closed: asyncio.Future[None]
    #: The connection speaks for node ``sender_id``: a hello naming this node and, on
    #: TLS, a certificate naming ``raftx-node-<sender_id>``. Only such connections are
    #: served non-client methods (Raft RPCs).
    node: bool = True
    #: Admitted as a peer, exempt from the client budgets: ``is_member(sender_id)`` held
    #: at the hello, or (TLS) the certificate names ``raftx-node-<sender_id>``.
    member: bool = False
    #: The peer's TLS certificate names `raftx.network.tls.ADMIN_NAME`.
    admin: bool = False
    #: The connection is TLS (``peer.peercert`` is a verified certificate).
    tls: bool = False


#: The `PeerConnection` of the request whose handler is running (None outside one,
#: e.g. in-process `MemRouter` calls).
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
    #: Hellos refused because a TLS certificate did not match the hello's sender.
    identity_rejected: int = 0
    #: Pending (pre-hello) connections closed to make room (``max_pending_connections``).
    pending_evicted: int = 0
    #: A member's oldest connection closed for a new one (``max_connections_per_member``).
    member_connections_replaced: int = 0
    #: Non-member connections closed after ``client_idle_timeout``.
    idle_timeouts: int = 0
    #: Non-member connections closed to keep within ``max_receive_buffer_bytes``.
    buffer_evictions: int = 0
    #: Connections closed after more than ``max_request_errors`` bad requests.
    error_budget_closes: int = 0
    #: Received bytes held right now (partial frames + unanswered requests), all connections.
    buffered_bytes: int = 0


class _ServerConnection(asyncio.Protocol, FlowControl):
    """One accepted connection: hello check, then request dispatch."""

    traffic = SERVER_TRAFFIC

    def __init__(self, server: RpcServer) -> None:
        FlowControl.__init__(self)
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._decoder = _core.codec.FrameDecoder(wire.PRE_HELLO_MAX_FRAME)
        self._hello_timer: asyncio.TimerHandle | None = None
        self.sender_id: int | None = None
        #: The hello named no target (a client).
        self.any_target = False
        #: Only ``client_methods`` are served: an any-target hello, or (TLS) a
        #: certificate that names no node.
        self.client_only = False
        #: Set once the hello is accepted.
        self.identity: PeerConnection | None = None
        self.member = False
        self.peername: Any = None
        self._closing = False
        self._queue: deque[tuple[int, str, memoryview, int]] = deque()
        self._queue_waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_slots = asyncio.Semaphore(server.max_client_requests)
        self.closed: asyncio.Future[None] = self._loop.create_future()
        # Receive-buffer accounting (RpcServer.max_receive_buffer_bytes): bytes of the
        # partial frame in the decoder, and of received requests not yet answered.
        self._buffered = 0
        self._request_bytes = 0
        self._accounted = True
        self._in_flight = 0
        self._errors = 0
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def held_bytes(self) -> int:
        """Received bytes this connection holds (counted in the server's budget)."""
        return self._buffered + self._request_bytes

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
        pending = server._pending
        pending[self] = None
        if len(pending) > server.max_pending_connections:
            # Close the oldest silent socket rather than refuse this one: a member's
            # connection sends its hello at once and so outlives a flood of idle ones.
            oldest = next(iter(pending))
            stats.pending_evicted += 1
            logger.warning("more than max_pending_connections=%d connections without a hello; closing the "
                           "oldest, from %s", server.max_pending_connections, oldest.peername)
            oldest._close()
        configure_socket(transport, server.keepalive)
        self._hello_timer = self._loop.call_later(server.hello_timeout, self._on_hello_timeout)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        traffic = self.traffic
        traffic.bytes_received += len(data)
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._bad_frame(str(exc))
            return
        traffic.frames_received += len(frames)
        server = self._server
        if not self.member:
            self._last_activity = self._loop.time()
        self._account(frames)
        if server.stats.buffered_bytes > server.max_receive_buffer_bytes:
            server._enforce_buffer_budget()
            if self._closing:
                return
        if self.sender_id is None and frames:
            if len(frames) > 1 or self._decoder.buffered:
                # §5.2 of the ecosystem notes: nothing may follow the hello before HelloAck.
                self._bad_frame("bytes after the hello before the hello was acknowledged")
                return
            self._release(len(frames[0][1]))
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
        self._cancel_timers()
        self._drop_accounting()
        for task in self._tasks:
            task.cancel()
        self._wake_queue()
        server.stats.connections_active -= 1
        server._forget(self)
        logger.debug("peer %s (node %s) disconnected: %s", self.peername, self.sender_id, exc)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- receive-buffer accounting ----------------------------------------------------

    def _account(self, frames: list[tuple[int, bytes]]) -> None:
        """Count what the last feed left in the decoder and the frames it completed."""
        if not self._accounted:
            return
        buffered = self._decoder.buffered
        added = sum(len(body) for _, body in frames)
        self._server.stats.buffered_bytes += buffered - self._buffered + added
        self._buffered = buffered
        self._request_bytes += added

    def _release(self, size: int) -> None:
        """A received frame of ``size`` bytes was answered (or was the hello)."""
        if self._accounted:
            self._request_bytes -= size
            self._server.stats.buffered_bytes -= size

    def _drop_accounting(self) -> None:
        if self._accounted:
            self._accounted = False
            self._server.stats.buffered_bytes -= self._buffered + self._request_bytes
            self._buffered = self._request_bytes = 0

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
        assert self.transport is not None
        peercert = self.transport.get_extra_info("peercert") if server.ssl is not None else None
        cert = tls.identity_of(peercert)
        node = target is not None
        reason = None
        if version not in wire.SUPPORTED_VERSIONS:
            reason = f"unsupported protocol version {version} (supported: {sorted(wire.SUPPORTED_VERSIONS)})"
        elif cluster != server.cluster_name:
            reason = f"wrong cluster {cluster!r} (this is {server.cluster_name!r})"
        elif target is None and not server.accept_any_target:
            reason = f"a target node id is required (this is node {server.node_id})"
        elif target is not None and target != server.node_id:
            reason = f"wrong target node {target} (this is node {server.node_id})"
        elif server.ssl is not None and server.bind_node_certs and cert.node_ids and sender not in cert.node_ids:
            # A member's certificate cannot speak for another node (issue 11).
            server.stats.identity_rejected += 1
            reason = (f"the TLS certificate is node {','.join(map(str, sorted(cert.node_ids)))}'s, "
                      f"but the hello says it is from {sender}")
        elif server.ssl is not None and server.bind_node_certs and not cert.node_ids and \
                server.client_methods is None:
            reason = f"the TLS certificate names no node ({tls.NODE_NAME_PREFIX}<id>)"
        elif server.allowed_senders is not None and sender not in server.allowed_senders:
            reason = f"sender node {sender} is not allowed"
        elif server.validate_peer is not None:
            info = PeerInfo(sender, self.peername, peercert)
            try:
                ok = server.validate_peer(info)
            except Exception as exc:
                logger.exception("validate_peer raised for node %s", sender)
                ok, reason = False, f"peer validation failed: {type(exc).__name__}"
            if not ok and reason is None:
                reason = f"sender node {sender} refused by validate_peer"
        if reason is None and server.ssl is not None and server.bind_node_certs and not cert.node_ids:
            node = False  # a client's certificate: client methods only, whatever the hello says
        # On TLS a node's certificate is enough to be admitted as a peer: a pristine node
        # (no membership yet, e.g. a learner being added) must still let its leader in.
        certified = server.ssl is not None and server.bind_node_certs and sender in cert.node_ids
        member = node and (certified or (server.is_member is not None and _safe_is_member(server.is_member, sender)))
        if reason is None and not member and len(server._clients) >= server.max_connections:
            reason = f"too many client connections (max_connections={server.max_connections})"
        if reason is not None:
            self._reject(reason, sender=sender)
            return
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        self.sender_id = sender
        self.any_target = target is None
        self.client_only = not node
        self.member = member
        self.identity = PeerConnection(sender, PeerInfo(sender, self.peername, peercert), self.closed, node, member,
                                       cert.admin, server.ssl is not None)
        server._admit(self)
        self._decoder = _core.codec.FrameDecoder(server.max_frame_bytes)
        self._write(wire.encode_message(wire.HELLO_ACK, {"v": wire.PROTOCOL_VERSION, "node": server.node_id}))
        if server.ordered:
            self._spawn(self._run_ordered())
        if not member and server.client_idle_timeout > 0:
            self._idle_timer = self._loop.call_at(self._last_activity + server.client_idle_timeout, self._on_idle)
        logger.debug("peer %s is node %s (cluster %r, member %s)", self.peername, sender, cluster, member)

    def _reject(self, reason: str, sender: int | None = None) -> None:
        self._server.stats.connections_rejected += 1
        logger.warning("rejecting connection from %s (node %s): %s", self.peername, sender, reason)
        self._write(wire.encode_message(wire.HELLO_REJECT, {"reason": reason[:200]}))
        self._close()

    def _on_idle(self) -> None:
        self._idle_timer = None
        if self._closing:
            return
        timeout = self._server.client_idle_timeout
        now = self._loop.time()
        if self._in_flight == 0 and now - self._last_activity >= timeout:
            self._server.stats.idle_timeouts += 1
            logger.info("closing client connection from %s (sender %s): idle for %.3gs", self.peername,
                        self.sender_id, timeout)
            self._close()
            return
        due = self._last_activity + timeout if self._in_flight == 0 else now + timeout
        self._idle_timer = self._loop.call_at(max(due, now + 0.001), self._on_idle)

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
        self._in_flight += 1
        if server.ordered:
            self._queue.append((request_id, method, payload, len(body)))
            self._wake_queue()
            if len(self._queue) >= server.max_queued_requests and not self._read_paused:
                assert self.transport is not None
                self._read_paused = True
                self.transport.pause_reading()
        else:
            self._spawn(self._handle(request_id, method, payload, len(body)))

    def _wake_queue(self) -> None:
        waiter = self._queue_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run_ordered(self) -> None:
        """Handle this connection's requests one at a time, in arrival order."""
        queue = self._queue
        loop = self._loop
        while not self._closing:
            if not queue:
                self._queue_waiter = loop.create_future()
                await self._queue_waiter
                self._queue_waiter = None
                continue
            request_id, method, payload, size = queue.popleft()
            if self._read_paused and len(queue) < self._server.max_queued_requests // 2:
                assert self.transport is not None
                self._read_paused = False
                self.transport.resume_reading()
            client_methods = self._server.client_methods
            if client_methods is not None and client_methods(method):
                await self._client_slots.acquire()  # bounded: a slot frees as a handler ends
                self._spawn(self._handle_client(request_id, method, payload, size))
            else:
                await self._handle(request_id, method, payload, size)

    async def _handle_client(self, request_id: int, method: str, payload: memoryview, size: int) -> None:
        try:
            await self._handle(request_id, method, payload, size)
        finally:
            self._client_slots.release()

    async def _handle(self, request_id: int, method: str, payload: memoryview, size: int) -> None:
        server = self._server
        assert self.sender_id is not None
        token = current_connection.set(self.identity)
        try:
            if self.client_only and not (server.client_methods is not None and server.client_methods(method)):
                raise ProtocolError(f"method {method!r:.70} needs a hello naming node {server.node_id}"
                                    + (" and a node's TLS certificate" if server.ssl is not None else "")
                                    + " (client connections may call client methods only)")
            result = await server.handler(self.sender_id, method, payload)
            if not isinstance(result, (bytes, bytearray, memoryview)):
                raise TypeError(f"handler for {method!r} returned {type(result).__name__}, not bytes")
            message = wire.encode_message(wire.RESPONSE, [request_id], result)
        except Exception as exc:
            server.stats.handler_errors += 1
            logger.debug("handler for %r from node %s raised %r", method, self.sender_id, exc)
            text = str(exc)[:_MAX_ERROR_MESSAGE].encode("utf-8", "replace")
            message = wire.encode_message(wire.ERROR, [request_id, type(exc).__name__[:64]], text)
            if isinstance(exc, _BAD_REQUEST):
                self._errors += 1
        finally:
            current_connection.reset(token)
            self._in_flight -= 1
            self._release(size)
        if self._closing:
            return
        if self._errors > server.max_request_errors:
            server.stats.error_budget_closes += 1
            logger.warning("closing connection from %s (node %s): more than max_request_errors=%d bad requests",
                           self.peername, self.sender_id, server.max_request_errors)
            self._close()
            return
        self.send(message)
        await self.drain()

    # -- plumbing ---------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
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

    def _cancel_timers(self) -> None:
        for timer in (self._hello_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._hello_timer = self._idle_timer = None

    def _close(self) -> None:
        self._closing = True
        self._cancel_timers()
        self._drop_accounting()  # the bytes are dropped with the connection
        self._server._forget(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (server shutdown)."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()


def _safe_is_member(is_member: Callable[[int], bool], sender: int) -> bool:
    try:
        return bool(is_member(sender))
    except Exception:
        logger.exception("is_member raised for node %s; treating it as a non-member", sender)
        return False


class RpcServer:
    """Serves one node's RPCs over TCP (optionally mutual TLS). See the module docstring.

    ``handler(sender_id, method, payload)`` is awaited for each request and returns
    the response bytes (``current_connection.get()`` tells it who is asking). ``allowed_senders``
    (node ids) and ``validate_peer`` (a callable taking a `PeerInfo`) restrict who may
    connect; with ``ssl`` and ``bind_node_certs`` (the default) a certificate naming
    ``raftx-node-<id>`` may only say it is from ``<id>`` and one naming no node gets
    client methods only. ``client_methods`` (a predicate on method names) are the
    methods a client connection may call, up to ``max_client_requests`` at once per
    connection; ``accept_any_target`` (needs ``client_methods``) lets clients connect
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
        self.bind_node_certs = bind_node_certs
        self.is_member = is_member
        self.max_pending_connections = max_pending_connections
        self.max_connections_per_member = max_connections_per_member
        self.client_idle_timeout = client_idle_timeout
        self.max_receive_buffer_bytes = max_receive_buffer_bytes
        self.max_request_errors = max_request_errors
        self.stats = ServerStats()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_ServerConnection] = set()
        self._pending: OrderedDict[_ServerConnection, None] = OrderedDict()
        self._clients: set[_ServerConnection] = set()
        self._members: dict[int, list[_ServerConnection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._port: int | None = None

    # -- connection bookkeeping (budgets) ---------------------------------------------

    def _admit(self, conn: _ServerConnection) -> None:
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

    def _forget(self, conn: _ServerConnection) -> None:
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
