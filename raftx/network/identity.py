"""Who is asking: the identity of an accepted connection, and the server's counters.

`raftx.network.server.RpcServer` checks each connection's hello (cluster, target,
TLS certificate, budgets; see its module docstring) and then serves its requests
for the `PeerConnection` it proved; a handler reads that with
``current_connection.get()``. `ServerStats` counts what the server refused and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["Handler", "PeerConnection", "PeerInfo", "ServerStats", "current_connection"]

#: ``async def handler(sender_id, method, payload) -> bytes``. ``payload`` is a read-only
#: `memoryview` over the received frame (no copy); ``bytes(payload)`` if you keep it
#: beyond the call is not needed (the view keeps the frame alive) but gives a `bytes`.
#: An exception raised by the handler is sent back and raised by the caller as
#: `raftx.errors.RemoteError`.
Handler = Callable[[int, str, memoryview], Awaitable[Any]]



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
