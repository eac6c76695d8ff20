"""The TCP RPC client: one lazily opened, pipelined connection to one peer.

`RpcClient.call` sends a request and waits for the response with the same id;
many calls may be in flight on the connection at once (pipelining), bounded by an
`InflightWindow` of ``max_in_flight`` requests and ``max_in_flight_bytes`` payload
bytes: when it is full, callers wait their turn (backpressure). The connection is
opened by the first call, with the hello handshake of `raftx.network.wire`.

Failures map onto openraft's ``RPCError`` (`raftx.errors`):

* `Unreachable`: the connection could not be made (refused, connect timeout, TLS
  failure), or a previous attempt failed and the reconnect backoff is still running
  (capped exponential with jitter, `raftx.network.backoff.Backoff`);
  `HandshakeRejected` (a subclass) when the peer refused our hello;
* `Timeout`: the call's ``timeout`` expired (the request may still be handled);
* `NetworkError`: the connection broke while the call was in flight; every pending
  call on that connection fails together; also raised after `close`;
* `RemoteError`: the remote handler raised; ``remote_type`` names its exception.

After an established connection is lost the next call reconnects at once; only
failed connection attempts start (or extend) the backoff.

``target_id=None`` sends the *any target* hello (a key-value client that knows only
``host:port``): the server names itself in its ack and the client records it in
`RpcClient.remote_id`; such a connection may call only the server's client methods
(see `raftx.network.server`). Raft peers always name their target.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import Callable
from typing import Any, cast

from raftx import _core
from raftx.errors import (
    HandshakeRejected, NetworkError, ProtocolError, RemoteError, Timeout, Unreachable,
)
from raftx.network import tls, wire
from raftx.network.backoff import Backoff
from raftx.network.outage import OutageLog
from raftx.network.tcp import FlowControl, configure_socket
from raftx.network.window import InflightWindow
from raftx.stats import CLIENT_TRAFFIC

__all__ = ["RpcClient"]

logger = logging.getLogger(__name__)


class _ClientConnection(asyncio.Protocol, FlowControl):
    """One connection of an `RpcClient`: hello, then responses matched to pending calls."""

    traffic = CLIENT_TRAFFIC

    def __init__(self, client: RpcClient) -> None:
        FlowControl.__init__(self)
        loop = asyncio.get_running_loop()
        self._client = client
        self._decoder = _core.codec.FrameDecoder(wire.PRE_HELLO_MAX_FRAME)
        self.hello: asyncio.Future[None] = loop.create_future()
        # Retrieved even when the connect was cancelled before it awaited the hello.
        self.hello.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: str | None = None
        #: Hello acknowledged and the connection neither lost nor failed.
        self.ready = False
        self.loop = loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop transports are not subclasses
        self.transport = transport
        configure_socket(transport, self._client.keepalive)
        c = self._client
        if c.ssl is not None and c.target_id is not None:
            # The server's certificate, if it names nodes, must name the one we expect.
            ids = tls.identity_of(transport.get_extra_info("peercert")).node_ids
            if ids and c.target_id not in ids:
                self._fail(f"{c.address} presented the TLS certificate of node(s) {sorted(ids)}, "
                           f"not of node {c.target_id}")
                return
        transport.writelines(wire.encode_hello(c.cluster_name, c.node_id, c.target_id))

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        traffic = self.traffic
        traffic.bytes_received += len(data)
        try:
            frames = self._decoder.feed(data)
            traffic.frames_received += len(frames)
            for frame_type, body in frames:
                self._on_frame(frame_type, body)
        except ProtocolError as exc:
            self._fail(f"protocol error from node {self._client.target_id}: {exc}")

    def _on_frame(self, frame_type: int, body: bytes) -> None:
        header, payload = wire.decode_message(body)
        if not self.hello.done():
            if frame_type == wire.HELLO_ACK:
                c = self._client
                node = header.get("node") if isinstance(header, dict) else None
                if c.target_id is None:
                    if not (isinstance(node, int) and not isinstance(node, bool) and 0 <= node < 2**64):
                        raise ProtocolError(f"hello ack names no node id: {header!r:.100}")
                    if c.remote_id is not None and node != c.remote_id:
                        logger.warning("%s was node %s, now node %s", c.address, c.remote_id, node)
                elif node != c.target_id:
                    raise ProtocolError(f"hello ack from the wrong node: {header!r:.100}")
                c.remote_id = node
                self._decoder = _core.codec.FrameDecoder(self._client.max_frame_bytes)
                self.hello.set_result(None)
                self.ready = True
            elif frame_type == wire.HELLO_REJECT:
                reason = header.get("reason") if isinstance(header, dict) else None
                self.hello.set_exception(HandshakeRejected(
                    f"{self._client.who} rejected our hello: {reason}"))
                self.error = "rejected"
            else:
                raise ProtocolError(f"frame type {frame_type} before the hello ack")
            return
        if frame_type not in (wire.RESPONSE, wire.ERROR) or not isinstance(header, list) or not header \
                or not isinstance(header[0], int):
            raise ProtocolError(f"unexpected frame type {frame_type} / header {header!r:.100}")
        fut = self.pending.pop(header[0], None)
        if fut is None or fut.done():
            logger.debug("response to request %s that is no longer waited for", header[0])
            return
        if frame_type == wire.RESPONSE:
            fut.set_result(bytes(payload))
        else:
            remote_type = str(header[1]) if len(header) > 1 else "Exception"
            message = bytes(payload).decode("utf-8", "replace")
            err = RemoteError(f"node {self._client.target_id}: {remote_type}: {message}")
            err.remote_type = remote_type  # type: ignore[attr-defined]
            err.remote_message = message  # type: ignore[attr-defined]
            fut.set_exception(err)

    def _fail(self, reason: str) -> None:
        logger.warning("%s; closing the connection", reason)
        self.error = reason
        self.ready = False
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ready = False
        self._flow_lost()
        c = self._client
        if not self.hello.done():
            why = self.error or (f"{exc or type(exc).__name__}" if exc is not None else "EOF")
            self.hello.set_exception(HandshakeRejected(
                f"node {c.target_id} at {c.address} closed the connection before acknowledging our hello "
                f"({why}; wrong cluster/node id, or a TLS client certificate it does not accept?)"))
        reason = self.error or c._close_reason or f"connection to node {c.target_id} at {c.address} lost"
        if exc is not None and self.error is None:
            reason = f"{reason}: {exc}"
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(NetworkError(reason))
        c._connection_lost(self)
        if not self.closed.done():
            self.closed.set_result(None)


class RpcClient:
    """A pipelined request/response client for one peer (see the module docstring).

    ``node_id`` is this node (the sender named in the hello), ``target_id`` the node
    expected at ``host:port`` (None: whoever answers there, learned as `remote_id`).
    ``ssl`` is a client `ssl.SSLContext` for (mutual) TLS (`raftx.network.tls`);
    ``server_hostname`` defaults to ``host``. With TLS and a ``target_id``, a server
    certificate that names nodes (``raftx-node-<id>``) but not the target is refused. ``backoff`` paces reconnection attempts
    (default `Backoff()`: 50 ms doubling to 1 s, half jitter); ``clock`` (default: the
    loop's ``time``) is what backoff deadlines are measured on. Use ``async with`` or
    call `close`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        cluster_name: str,
        node_id: int,
        target_id: int | None,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        max_in_flight: int = 64,
        max_in_flight_bytes: int = 64 * 1024 * 1024,
        max_frame_bytes: int = 64 * 1024 * 1024,
        connect_timeout: float = 5.0,
        hello_timeout: float = 5.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] | None = None,
        keepalive: bool = True,
    ) -> None:
        wire.check_max_frame_bytes(max_frame_bytes)
        wire.check_cluster_name(cluster_name)
        wire.check_node_id("node_id", node_id)
        if target_id is not None:
            wire.check_node_id("target_id", target_id)
        self.host = host
        self.port = port
        self.cluster_name = cluster_name
        self.node_id = node_id
        self.target_id = target_id
        #: The node id the server named in its hello ack (None until the first connection).
        self.remote_id: int | None = None
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.max_frame_bytes = max_frame_bytes
        self.connect_timeout = connect_timeout
        self.hello_timeout = hello_timeout
        self.backoff = backoff if backoff is not None else Backoff()
        self._clock = clock
        self.keepalive = keepalive
        self.window = InflightWindow(max_in_flight, max_in_flight_bytes)
        self._conn: _ClientConnection | None = None
        self._connecting: asyncio.Task[_ClientConnection] | None = None
        self._retry_at = float("-inf")
        self._last_error: str | None = None
        self._last_error_type: type[Unreachable] = Unreachable
        self._next_id = 0
        self._closed = False
        self._close_reason: str | None = None
        #: Connections established (hello acknowledged) over this client's life.
        self.connects = 0
        #: Failed connection attempts are logged rate-limited: down, a summary a minute, back.
        self.outage = OutageLog(logger, self.who)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def who(self) -> str:
        """The peer in messages: ``node 2 at host:port``, or ``host:port`` (any target)."""
        return f"node {self.target_id} at {self.address}" if self.target_id is not None else self.address

    @property
    def connected(self) -> bool:
        """A connection is open and its hello was acknowledged."""
        return self._conn is not None and self._conn.ready

    @property
    def retry_at(self) -> float:
        """Clock time before which no new connection attempt is made (-inf: none pending)."""
        return self._retry_at

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    #: `call` takes a payload as a list of buffers and sends them without joining them
    #: (`raftx.network.raft_rpc.RpcRaftNetwork` hands it an entry batch that way).
    writes_buffer_lists = True

    async def call(self, method: str, payload: wire.Payload = b"", timeout: float | None = None) -> bytes:
        """Send ``method(payload)`` to the peer; return its response bytes.

        ``payload`` is a bytes-like object or a list of them (the request is their
        concatenation; each is written as it is, no copy). ``timeout`` (seconds, None =
        no limit) covers waiting for window room, connecting and the round trip. Raises
        `Unreachable`, `Timeout`, `NetworkError`, `RemoteError`.
        """
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        if len(method) > wire.MAX_METHOD_LENGTH:
            raise ProtocolError(f"method name longer than {wire.MAX_METHOD_LENGTH} characters")
        size = wire.payload_size(payload)
        if size + 300 > self.max_frame_bytes:
            raise ProtocolError(f"payload of {size} bytes exceeds max_frame_bytes={self.max_frame_bytes}")
        if self._closed:
            raise NetworkError(f"client for node {self.target_id} is closed")
        if timeout is None:
            return await self._windowed_round_trip(method, payload, size)
        try:
            async with asyncio.timeout(timeout):
                return await self._windowed_round_trip(method, payload, size)
        except TimeoutError:
            raise Timeout(f"{method} to {self.who} timed out after {timeout}s") \
                from None

    def call_nowait(self, method: str, payload: wire.Payload = b"") -> asyncio.Future[bytes] | None:
        """`call` without a coroutine, for callers that batch in loop callbacks: when the
        connection is up and the window has room, send ``method(payload)`` now and
        return the future of its response (it fails as `call` does; cancel it to give
        up, a timeout is the caller's); else None, and nothing is sent (use `call`,
        which connects and waits for room)."""
        conn = self._conn
        if self._closed or conn is None or not conn.ready or not isinstance(method, str) \
                or len(method) > wire.MAX_METHOD_LENGTH:
            return None
        size = wire.payload_size(payload)
        window = self.window
        if size + 300 > self.max_frame_bytes or not window.try_acquire(size):
            return None
        request_id, fut = self._send_request(conn, method, payload)
        pending = conn.pending

        def settled(f: asyncio.Future[bytes]) -> None:
            pending.pop(request_id, None)
            window.release(size)
            if not f.cancelled():
                f.exception()  # retrieved: never "Future exception was never retrieved"

        fut.add_done_callback(settled)
        return fut

    def _send_request(self, conn: _ClientConnection, method: str,
                      payload: wire.Payload) -> tuple[int, asyncio.Future[bytes]]:
        """Number a request, send it on ``conn`` and register its response future (once
        sent: a send that raises leaves nothing behind; the answer cannot come before
        the loop's next turn)."""
        self._next_id += 1
        request_id = self._next_id
        conn.send(wire.encode_message(wire.REQUEST, [request_id, method], payload))
        fut: asyncio.Future[bytes] = conn.loop.create_future()
        conn.pending[request_id] = fut
        return request_id, fut

    async def _windowed_round_trip(self, method: str, payload: wire.Payload, size: int) -> bytes:
        window = self.window
        if not window.try_acquire(size):
            await window.acquire(size)
        try:
            if self._closed:
                raise NetworkError(f"client for node {self.target_id} is closed")
            conn = self._conn
            if conn is None or not conn.ready:
                conn = await self._ensure_connected()
            request_id, fut = self._send_request(conn, method, payload)
            try:
                return await fut
            finally:
                conn.pending.pop(request_id, None)
                if fut.done() and not fut.cancelled():
                    fut.exception()  # retrieved: never "Future exception was never retrieved"
        finally:
            window.release(size)

    async def _ensure_connected(self) -> _ClientConnection:
        task = self._connecting
        if task is None:
            now = self._now()
            if now < self._retry_at:
                # The cause first and of the same class (a rejected hello stays HandshakeRejected),
                # so callers that give up during the backoff report the real reason.
                raise self._last_error_type(
                    f"{self._last_error} (reconnect backoff active for another {self._retry_at - now:.3f}s)")
            task = self._connecting = asyncio.get_running_loop().create_task(self._connect())
            task.add_done_callback(self._connect_done)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise NetworkError(f"client for node {self.target_id} is closed") from None
            raise

    def _connect_done(self, task: asyncio.Task[_ClientConnection]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled():
            task.exception()  # consumed even if every caller gave up waiting

    async def _connect(self) -> _ClientConnection:
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs.update(ssl=self.ssl, server_hostname=self.server_hostname or self.host,
                          ssl_handshake_timeout=self.connect_timeout)
        conn: _ClientConnection | None = None
        try:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, conn = await loop.create_connection(
                        lambda: _ClientConnection(self), self.host, self.port, **kwargs)
            except (OSError, TimeoutError) as exc:
                raise Unreachable(f"cannot connect to {self.who}: "
                                  f"{exc or type(exc).__name__}") from exc
            try:
                async with asyncio.timeout(self.hello_timeout):
                    await conn.hello
            except TimeoutError:
                raise Unreachable(f"{self.who} did not acknowledge our hello "
                                  f"within {self.hello_timeout}s") from None
        except Unreachable as exc:
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            self._last_error = str(exc)
            self._last_error_type = type(exc)
            delay = self.backoff.next_delay()
            self._retry_at = self._now() + delay
            self.outage.failure(self._now(), f"{exc}; next attempt in {delay:.3f}s")
            raise
        except BaseException:
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            raise
        if self._closed:
            assert conn.transport is not None
            conn.transport.abort()
            raise NetworkError(f"client for node {self.target_id} is closed")
        self.backoff.reset()
        self._retry_at = float("-inf")
        self._last_error = None
        self._conn = conn
        self.connects += 1
        self.outage.success(self._now())
        logger.debug("connected to node %s at %s", self.target_id, self.address)
        return conn

    def _connection_lost(self, conn: _ClientConnection) -> None:
        if self._conn is conn:
            self._conn = None

    async def close(self) -> None:
        """Close the connection; pending and later calls raise `NetworkError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = f"client for node {self.target_id} is closed"
        task = self._connecting
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None:
            conn.transport.close()
            done, _ = await asyncio.wait([conn.closed], timeout=1.0)
            if not done:
                conn.transport.abort()
                await asyncio.wait([conn.closed], timeout=1.0)

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
