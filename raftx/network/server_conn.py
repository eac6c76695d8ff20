"""One accepted connection of an `raftx.network.server.RpcServer`: hello check, receive
budget accounting, request dispatch (ordered or not), responses.

The rules it enforces (hello, identity, budgets, ordering) are documented once, in
`raftx.network.server`; the server keeps the per-server state (connection sets, the
shared receive budget) and this module the per-connection state machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from raftx import _core
from raftx.errors import NotAuthorized, ProtocolError
from raftx.network import tls, wire
from raftx.network.identity import PeerConnection, PeerInfo, current_connection
from raftx.network.tcp import FlowControl, configure_socket
from raftx.stats import SERVER_TRAFFIC

if TYPE_CHECKING:
    from raftx.network.server import RpcServer

__all__ = ["ServerConnection"]

logger = logging.getLogger("raftx.network.server")  # one logger for the server and its connections

_MAX_ERROR_MESSAGE = 4096
# Handler errors that mean "the request was bad" (they count against max_request_errors).
_BAD_REQUEST = (ProtocolError, NotAuthorized, ValueError, TypeError)


class ServerConnection(asyncio.Protocol, FlowControl):
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
        # Client requests being handled may take up to max_client_requests slots.
        self._client_free = server.max_client_requests
        self._client_waiter: asyncio.Future[None] | None = None
        # Started requests (the handler's pipelined start) not answered yet may take up
        # to max_started_requests slots.
        self._started_free = server.max_started_requests
        self._started_waiter: asyncio.Future[None] | None = None
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
            waiter = self._queue_waiter
            if waiter is not None and not waiter.done() and self._client_free > 0 \
                    and server.client_methods is not None and server.client_methods(method):
                # The ordered runner is idle (nothing queued before this request): start
                # the client handler here, as the runner would, one hop sooner.
                self._client_free -= 1
                self._spawn(self._handle_client(request_id, method, payload, len(body)))
                return
            if waiter is not None and not waiter.done() and self._started_free > 0 and not self._write_paused \
                    and self._start(request_id, method, payload, len(body)):
                return  # the ordered runner is idle: started here, in its turn
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
                while self._client_free == 0:  # bounded: a slot frees as a handler ends
                    self._client_waiter = loop.create_future()
                    await self._client_waiter
                self._client_free -= 1
                self._spawn(self._handle_client(request_id, method, payload, size))
                continue
            while self._started_free == 0:  # bounded: a slot frees as an answer goes out
                self._started_waiter = loop.create_future()
                await self._started_waiter
            await self.drain()  # the peer reads its answers before more are started
            if not self._start(request_id, method, payload, size):
                await self._handle(request_id, method, payload, size)

    def _start(self, request_id: int, method: str, payload: memoryview, size: int) -> bool:
        """Start the request with the handler's ``start`` (`raftx.network.server`,
        Ordering) and answer it when it replies; False (nothing done) if the handler
        does not start this method (the caller awaits the handler instead)."""
        start = self._server.start_request
        if start is None or self.client_only or self._closing:
            return False
        assert self.sender_id is not None
        token = current_connection.set(self.identity)
        try:
            started = start(self.sender_id, method, payload,
                            lambda result, exc: self._started_done(request_id, method, size, result, exc))
        except Exception as exc:  # refused before anything reached the node: answered now
            self._done(size)
            self._answer(request_id, method, None, exc)
            return True
        finally:
            current_connection.reset(token)
        if started:
            self._started_free -= 1
        return bool(started)

    def _started_done(self, request_id: int, method: str, size: int, result: Any,
                      exc: BaseException | None) -> None:
        self._started_free += 1
        waiter = self._started_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._done(size)
        self._answer(request_id, method, result, exc)

    async def _handle_client(self, request_id: int, method: str, payload: memoryview, size: int) -> None:
        try:
            await self._handle(request_id, method, payload, size)
        finally:
            self._client_free += 1
            waiter = self._client_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _handle(self, request_id: int, method: str, payload: memoryview, size: int) -> None:
        server = self._server
        assert self.sender_id is not None
        token = current_connection.set(self.identity)
        result: Any = None
        error: BaseException | None = None
        try:
            if self.client_only and not (server.client_methods is not None and server.client_methods(method)):
                raise ProtocolError(f"method {method!r:.70} needs a hello naming node {server.node_id}"
                                    + (" and a node's TLS certificate" if server.ssl is not None else "")
                                    + " (client connections may call client methods only)")
            result = await server.handler(self.sender_id, method, payload)
        except Exception as exc:
            error = exc
        finally:
            current_connection.reset(token)
            self._done(size)
        self._answer(request_id, method, result, error)
        await self.drain()

    def _done(self, size: int) -> None:
        """A request of ``size`` bytes is handled: out of the in-flight count and budget."""
        self._in_flight -= 1
        self._release(size)

    def _answer(self, request_id: int, method: str, result: Any, error: BaseException | None) -> None:
        """Send the answer of request ``request_id``: ``result`` (bytes) or ``error``."""
        server = self._server
        message: list[Any] = []
        if error is None:
            try:
                if not isinstance(result, (bytes, bytearray, memoryview)):
                    raise TypeError(f"handler for {method!r} returned {type(result).__name__}, not bytes")
                message = wire.encode_message(wire.RESPONSE, [request_id], result)
            except Exception as exc:
                error = exc
        if error is not None:
            server.stats.handler_errors += 1
            logger.debug("handler for %r from node %s raised %r", method, self.sender_id, error)
            text = str(error)[:_MAX_ERROR_MESSAGE].encode("utf-8", "replace")
            message = wire.encode_message(wire.ERROR, [request_id, type(error).__name__[:64]], text)
            if isinstance(error, _BAD_REQUEST):
                self._errors += 1
        if self._closing:
            return
        if self._errors > server.max_request_errors:
            server.stats.error_budget_closes += 1
            logger.warning("closing connection from %s (node %s): more than max_request_errors=%d bad requests",
                           self.peername, self.sender_id, server.max_request_errors)
            self._close()
            return
        self.send(message)

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
