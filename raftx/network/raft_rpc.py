"""The Raft RPC transport: `raftx.Raft` over raftx's generic RPC layer.

The bytes of each method are `raftx.network.rpc_codec`'s (one table, `METHODS`);
this module moves them: `RpcRaftNetwork` (the client side of one peer, over an
`RpcClient` or a `MemRouter` link), the network factories `TcpNetworkFactory` and
`MemNetworkFactory` (`raftx.network.RaftNetworkFactory`), `RaftRpcHandler` (the
server side, usable with any `RpcServer`-style transport) and `RaftServer` (TCP).
An AppendEntries batch goes to the socket as its own buffer (``writelines``, no
copy) and is kept on receipt as a view into the received frame.

Everything received is validated before use (`rpc_codec`: a malformed payload raises
`raftx.errors.ProtocolError`, which the server answers as an error; the node's state
is untouched; entry records are CRC-checked). The decoded request is then checked
whole by the node before any state changes (`raftx.messages` ``validate``: types,
terms and indexes within ``MAX_TERM`` / ``MAX_INDEX``, decodable memberships; the
engine: nothing conflicts with the committed log) and only then may its leader be
accepted.

Authorization and connection identity (issue 11)
------------------------------------------------

Each request is served for the node id its connection proved: `RaftRpcHandler`
receives it as ``sender_id`` from `raftx.network.RpcServer` (the hello's ``"from"``,
after the server's checks) and passes it as ``sender=`` to `raftx.Raft`. The node
(`raftx.engine.peer_check`) refuses, with `raftx.errors.PeerNotAuthorized` and no
state change, a request whose sender is not a member of its effective membership
(voters and learners, joint included) or its current leader (a forwarded client
call included: only members may hand the leader writes), an AppendEntries or
snapshot whose leader vote does not name the sender, a vote request whose candidate
is not the sender, and a TransferLeader that does not come from the current leader.
A node that has no membership yet accepts any sender (bootstrapping: the
initializing node's first AppendEntries, a learner being added); the cluster name
and target of the hello still apply. Refusals are counted in
`raftx.RaftMetrics` (``rpcs_unauthorized``, ``rpcs_invalid``) and logged at most once
a second.

For TLS (binding the identity to a certificate): the identity of a connection is
`raftx.network.server.PeerConnection` (``sender_id``, ``peer.peercert``, ``closed``),
available to a handler as ``current_connection.get()``; its ``sender_id`` is the
handler's first argument. Whatever makes ``sender_id`` trustworthy must happen
before the hello is accepted (``RpcServer(validate_peer=...)`` refusing a hello
whose ``"from"`` is not the id in the peer's certificate); `RaftRpcHandler` then
needs no change. Without TLS the id is only what the peer claims: a stranger that
claims a member's id (a *forged member*) passes the membership check, and only the
content and identity checks above and the leader lease still hold.

Public pieces: `TcpNetworkFactory` and `RaftServer` (TCP, optional mutual TLS),
`MemNetworkFactory` and `serve_on_router` (in-process, for tests), and
`RaftRpcHandler` (the server side, usable with any `RpcServer`-style transport).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, TYPE_CHECKING

from raftx.config import Config
from raftx.errors import Unreachable
from raftx.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    ForwardRequest,
    ForwardResponse,
    InstallSnapshotRequest,
    SnapshotResponse,
    TransferLeaderRequest,
    VoteRequest,
    VoteResponse,
)
from raftx.network.backoff import Backoff
from raftx.network.client import RpcClient
from raftx.network.memory import MemRouter
from raftx.network.protocols import RPCOption
from raftx.network.rpc_codec import (
    SnapshotChunk,
    decode_forward_response,
    decode_request,
    encode_forward_response,
    encode_request,
    encode_request_parts,
    encode_response,
    method,
)
from raftx.network.server import RpcServer, current_connection
from raftx.network.wire import Buffer
from raftx.records import encode_meta
from raftx.types import BasicNode, Snapshot, Vote

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = [
    "MemNetworkFactory",
    "RaftRpcHandler",
    "RaftServer",
    "RpcRaftNetwork",
    "TcpNetworkFactory",
    "decode_forward_response",
    "decode_request",
    "encode_forward_response",
    "encode_request",
    "encode_request_parts",
    "encode_response",
    "serve_on_router",
]

logger = logging.getLogger(__name__)


# -- the client side -------------------------------------------------------------------


class _Caller(Protocol):
    async def call(self, method: str, payload: Any = b"", timeout: float | None = None) -> bytes: ...


class RpcRaftNetwork:
    """A `raftx.network.RaftNetwork` for one target over an RPC caller
    (`RpcClient` or `MemClient`). Snapshots are streamed in ``chunk_size`` chunks, one
    in flight at a time (each answered before the next is read: backpressure).

    A caller whose ``writes_buffer_lists`` is true (`RpcClient`) is handed each payload
    as the codec's list of buffers (an entry batch is sent as it is, no copy); any
    other caller gets one ``bytes``."""

    def __init__(self, caller: _Caller, chunk_size: int = 1 << 20, backoff: Backoff | None = None) -> None:
        self.caller = caller
        self.chunk_size = chunk_size
        self._backoff = backoff or Backoff()
        self._lists = bool(getattr(caller, "writes_buffer_lists", False))

    async def _call(self, name: str, req: Any, option: RPCOption | None) -> Any:
        """Send ``req`` as a ``name`` request; return the decoded answer (`ProtocolError`
        for a malformed one)."""
        raw = await self.caller.call(name, self._payload(name, req), _ttl(option))
        return method(name).decode_response(raw, req)

    def _payload(self, name: str, req: Any) -> list[Buffer] | Buffer:
        """``req`` encoded as a ``name`` request, in the form the caller takes."""
        parts = method(name).encode_request(req)
        return parts if self._lists else b"".join(parts)

    async def append_entries(self, rpc: AppendEntriesRequest, option: RPCOption | None = None) -> AppendEntriesResponse:
        """Send one AppendEntries RPC (§5.3) and return the target's response."""
        resp: AppendEntriesResponse = await self._call("append", rpc, option)
        return resp

    def append_entries_nowait(self, rpc: AppendEntriesRequest) -> asyncio.Future[bytes] | None:
        """Send one AppendEntries now, without a task, when the caller can (it has
        ``call_nowait`` and is connected, with window room): the future of the raw
        answer, for `decode_append_entries`; the deadline is the sender's (cancel the
        future). None: nothing was sent, use `append_entries`. The replicator's path
        for each request that leaves in the core's turn."""
        send = getattr(self.caller, "call_nowait", None)
        if send is None or not getattr(self.caller, "connected", False):
            return None
        fut: asyncio.Future[bytes] | None = send("append", self._payload("append", rpc))
        return fut

    @staticmethod
    def decode_append_entries(raw: bytes, rpc: AppendEntriesRequest) -> AppendEntriesResponse:
        """The response to ``rpc`` in ``raw`` (`ProtocolError` if malformed)."""
        resp: AppendEntriesResponse = method("append").decode_response(raw, rpc)
        return resp

    async def vote(self, rpc: VoteRequest, option: RPCOption | None = None) -> VoteResponse:
        """Send one RequestVote RPC (§5.2; a pre-vote when ``rpc`` says so) and return the response."""
        resp: VoteResponse = await self._call("vote", rpc, option)
        return resp

    async def transfer_leader(self, req: TransferLeaderRequest, option: RPCOption | None = None) -> None:
        """Ask the target to take over leadership (thesis §3.10)."""
        await self._call("transfer", req, option)

    async def forward(self, req: ForwardRequest, option: RPCOption | None = None) -> ForwardResponse:
        """Hand a client write batch or read check to the target (the leader, we believe)."""
        resp: ForwardResponse = await self._call("forward", req, option)
        return resp

    async def install_snapshot(self, rpc: InstallSnapshotRequest, option: RPCOption | None = None) -> SnapshotResponse:
        """Send one chunk (openraft v1 API); no end-to-end checksum."""
        resp: SnapshotResponse = await self._call("snapshot", SnapshotChunk(rpc), option)
        return resp

    async def full_snapshot(self, vote: Vote, snapshot: Snapshot, cancel: Any = None,
                            option: RPCOption | None = None) -> SnapshotResponse:
        """Stream ``snapshot`` to the target (§7); ``option.hard_ttl`` bounds each chunk
        but the last, ``option.last_chunk_ttl`` the last (its answer waits for the install)."""
        f = snapshot.snapshot
        f.seek(0)
        meta = snapshot.meta
        meta_bytes = encode_meta(meta)
        crc = 0
        offset = 0
        last_option = option
        if option is not None and option.last_chunk_ttl is not None:
            last_option = RPCOption(option.last_chunk_ttl, option.soft_ttl)
        cur = f.read(self.chunk_size)
        while True:
            nxt = f.read(self.chunk_size) if cur else b""
            done = not nxt
            crc = zlib.crc32(cur, crc)
            chunk = SnapshotChunk(InstallSnapshotRequest(vote, meta, offset, cur, done), crc if done else None,
                                  meta_bytes)
            resp: SnapshotResponse = await self._call("snapshot", chunk, last_option if done else option)
            if done or resp.vote.term > vote.term:
                return resp
            offset += len(cur)
            cur = nxt

    def backoff(self) -> Iterator[float]:
        """A fresh sequence of retry delays (seconds) after `Unreachable`."""
        b = self._backoff
        return iter(Backoff(b.initial, b.maximum, factor=b.factor, jitter=b.jitter))

    async def close(self) -> None:
        """Close the underlying caller, if it can be closed."""
        close = getattr(self.caller, "close", None)
        if close is not None:
            await close()


def _ttl(option: RPCOption | None) -> float | None:
    return None if option is None else option.hard_ttl


def parse_addr(addr: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) -> ``(host, port)``; `Unreachable` if malformed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Unreachable(f"node address {addr!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class TcpNetworkFactory:
    """Makes one pipelined TCP connection per peer; peers are `BasicNode("host:port")`.

    ``node_id`` and ``cluster_name`` (sent in the hello) default to the node's own
    when `raftx.Raft.new` binds the factory. ``ssl`` is a client `ssl.SSLContext` for
    (mutual) TLS; ``client_options`` go to `RpcClient` (``max_in_flight``, ...).

    Example: ``raft = await Raft.new(1, config, TcpNetworkFactory(), store, sm)``
    """

    def __init__(self, node_id: int | None = None, *, cluster_name: str | None = None,
                 ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None,
                 **client_options: Any) -> None:
        self.node_id = node_id
        self.cluster_name = cluster_name
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.client_options = client_options
        self.chunk_size = 1 << 20

    def bind_local(self, node_id: int, config: Config) -> None:
        """Called by `raftx.Raft.new`: fill in this node's id, cluster name and limits."""
        if self.node_id is None:
            self.node_id = node_id
        if self.cluster_name is None:
            self.cluster_name = config.cluster_name
        self.client_options.setdefault("max_frame_bytes", config.max_frame_bytes)
        self.client_options.setdefault("max_in_flight", max(config.max_inflight_appends + 8, 16))
        self.client_options.setdefault("max_in_flight_bytes", config.max_inflight_bytes)
        self.chunk_size = min(config.snapshot_max_chunk_size, config.max_frame_bytes // 2)

    async def new_client(self, target: int, node: BasicNode) -> RpcRaftNetwork:
        """A client for ``target`` at ``node.addr`` (`Unreachable` if not bound to a node)."""
        if self.node_id is None or self.cluster_name is None:
            raise Unreachable("TcpNetworkFactory is not bound to a node (pass node_id and cluster_name)")
        host, port = parse_addr(node.addr)
        client = RpcClient(host, port, cluster_name=self.cluster_name, node_id=self.node_id, target_id=target,
                           ssl=self.ssl, server_hostname=self.server_hostname, **self.client_options)
        return RpcRaftNetwork(client, self.chunk_size)


class MemNetworkFactory:
    """Peers reached through a `MemRouter` (in-process tests); see `serve_on_router`.

    Example: ``await Raft.new(1, config, MemNetworkFactory(router), MemLogStore(), sm)``
    """

    def __init__(self, router: MemRouter, node_id: int | None = None) -> None:
        self.router = router
        self.node_id = node_id
        self.chunk_size = 1 << 20

    def bind_local(self, node_id: int, config: Config) -> None:
        """Called by `raftx.Raft.new`: fill in this node's id and the snapshot chunk size."""
        if self.node_id is None:
            self.node_id = node_id
        self.chunk_size = config.snapshot_max_chunk_size

    async def new_client(self, target: int, node: BasicNode) -> RpcRaftNetwork:
        """A client for ``target`` through the router (`Unreachable` if not bound to a node)."""
        if self.node_id is None:
            raise Unreachable("MemNetworkFactory is not bound to a node")
        return RpcRaftNetwork(self.router.client(self.node_id, target), self.chunk_size)


# -- the server side -------------------------------------------------------------------


class RaftRpcHandler:
    """Serves Raft RPCs for one `raftx.Raft`: ``await handler(sender_id, method, payload)``.

    The signature is `RpcServer`'s and `MemRouter.register`'s. ``sender_id`` is the
    identity of the request's connection and is passed on to the node, which serves
    Raft RPCs only to members and only when the request names that sender
    (`raftx.engine.peer_check`). A malformed or refused request raises `ProtocolError`
    (`PeerNotAuthorized` for the latter; sent back as an error; nothing changes on
    the node). On an `RpcServer`, a snapshot transfer is tied to its connection
    (`raftx.network.server.current_connection`) and discarded when it closes.
    """

    def __init__(self, raft: Raft) -> None:
        self.raft = raft
        # What the node does with each decoded request (the bytes are `rpc_codec`'s).
        self._serve: dict[str, Callable[[Any, int], Awaitable[Any]]] = {
            "append": lambda req, sender: raft.append_entries(req, sender=sender),
            "vote": lambda req, sender: raft.vote(req, sender=sender),
            "snapshot": lambda req, sender: raft.receive_snapshot_chunk(
                req.chunk, req.crc, sender=sender, connection=current_connection.get()),
            "transfer": lambda req, sender: raft.handle_transfer_leader(req, sender=sender),
            "forward": lambda req, sender: raft.serve_forward(req, sender=sender),
        }

    async def __call__(self, sender: int, method_name: str, payload: memoryview) -> bytes:
        m = method(method_name)  # ProtocolError for an unknown method
        req = m.decode_request(payload)  # ProtocolError for malformed bytes: nothing reaches the node
        return m.encode_response(await self._serve[m.name](req, sender))

    def start(self, sender: int, method_name: str, payload: memoryview, reply: Reply) -> bool:
        """Start an AppendEntries without awaiting it (`RpcServer`'s pipelining): decode
        it and hand it to the node now (`raftx.Raft.start_append_entries`), then call
        ``reply(response_bytes, None)`` or ``reply(None, error)`` once it is answered.
        False, and nothing done, for any other method. A malformed request raises here,
        before anything reaches the node; one the node refuses (`raftx.engine.peer_check`)
        is answered with its error through ``reply``."""
        if method_name != "append":
            return False
        m = method(method_name)
        fut = self.raft.start_append_entries(m.decode_request(payload), sender=sender)
        fut.add_done_callback(lambda f: _reply(f, m.encode_response, reply))
        return True


#: How a started request is answered: ``reply(response_bytes, None)`` or ``reply(None, error)``.
Reply = Callable[[Any, "BaseException | None"], None]


def _reply(fut: asyncio.Future[Any], encode: Callable[[Any], bytes], reply: Reply) -> None:
    if fut.cancelled():
        reply(None, asyncio.CancelledError())
        return
    exc = fut.exception()
    if exc is not None:
        reply(None, exc)
        return
    try:
        data = encode(fut.result())
    except Exception as exc:  # noqa: BLE001 - answered as an error, like a raising handler
        reply(None, exc)
        return
    reply(data, None)


def serve_on_router(router: MemRouter, raft: Raft) -> None:
    """Register ``raft``'s RPC handler on ``router`` under its node id (a restart re-registers)."""
    router.register(raft.id, RaftRpcHandler(raft))


def _is_member(raft: Raft, node_id: int) -> bool:
    """For `RpcServer`'s budgets: ``node_id`` is in the node's membership (voter or
    learner, joint included) or is its current leader."""
    m = raft.metrics().borrow()
    return node_id in m.membership.nodes or node_id == m.current_leader


class RaftServer:
    """Serves a node's Raft RPCs over TCP (optionally mutual TLS with ``ssl``).

    Connections from members (`_is_member`) are exempt from the server's client
    budgets (`raftx.network.server`); ``server_options`` go to `RpcServer`.

    Example::

        async with RaftServer(raft, "127.0.0.1", 7001) as server:
            ...   # server.port is the bound port (useful with port=0)
    """

    def __init__(self, raft: Raft, host: str = "127.0.0.1", port: int = 0, *,
                 ssl: _ssl.SSLContext | None = None, handler: Any = None, **server_options: Any) -> None:
        cfg = raft.config
        server_options.setdefault("max_frame_bytes", cfg.max_frame_bytes)
        server_options.setdefault("is_member", lambda node_id: _is_member(raft, node_id))
        self.raft = raft
        #: The request handler: `RaftRpcHandler` unless a caller serves more methods on
        #: the same port (it should delegate the Raft methods to a `RaftRpcHandler`).
        self.handler = handler if handler is not None else RaftRpcHandler(raft)
        self.rpc = RpcServer(self.handler, host, port, cluster_name=cfg.cluster_name, node_id=raft.id,
                             ssl=ssl, **server_options)

    @property
    def port(self) -> int:
        """The bound port (the real one when started with ``port=0``)."""
        return self.rpc.port

    @property
    def addr(self) -> str:
        """``"host:port"`` of the bound server (for `BasicNode`)."""
        return f"{self.rpc.host}:{self.rpc.port}"

    async def start(self) -> None:
        """Bind and serve; raises `raftx.errors.BindError` if the address is taken."""
        await self.rpc.start()

    async def close(self) -> None:
        """Stop listening, drop every connection, cancel running handlers. Idempotent."""
        await self.rpc.close()

    async def __aenter__(self) -> RaftServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

