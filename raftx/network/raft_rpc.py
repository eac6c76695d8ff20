"""Raft RPCs over raftx's generic RPC layer: the glue between `raftx.Raft` and the wire.

Four methods travel over one `raftx.network.RpcClient` connection per peer (or a
`raftx.network.MemRouter` link in tests): ``append`` (§5.3), ``vote`` (§5.2),
``snapshot`` (one chunk of a streamed snapshot, §7) and ``transfer`` (thesis
§3.10). Each payload is::

    offset size field
    ------ ---- ------------------------------------------------------------
         0    4 header_length  u32 little-endian
         4    h header         msgpack, small (ids, votes, flags; below)
       4+h    n body           opaque bytes: the AppendEntries entry batch exactly
                               as read from the log (`_core.codec` records, CRC-32C
                               each, DESIGN §2 rule 3), or a snapshot chunk

Headers (a vote is ``[term, node_id, committed]``, a log id ``[term, index]`` or nil):

* append request ``[vote, prev_log_id, leader_commit, first_index]`` + records;
  response ``[vote, success, matching, conflict_index, conflict_term]``;
* vote request ``[vote, last_log_id, pre_vote]``; response
  ``[vote, granted, last_log_id, pre_vote]``;
* snapshot request ``[vote, meta, offset, done, crc32 or nil]`` + chunk (``meta`` is
  `raftx.records.encode_meta`; the CRC-32 of the whole snapshot goes with
  the last chunk and is verified before install); response ``[vote]``;
* transfer request ``[from_leader_vote, to_node_id, last_log_id]``; empty response;
* forward request ``[kind, count]`` + ``count`` payloads, each a u32 little-endian
  length and its bytes (``kind`` ``"write"``; ``"read"`` with count 0: a follower's
  write or linearizable read handed to the leader, `raftx.runtime.forward`);
  response ``[count]`` + a msgpack list of ``count`` outcomes ``[status, log_id,
  leader_id, message, data]`` (`raftx.messages.ForwardOutcome`).

Everything received is validated before use: a malformed payload raises
`raftx.errors.ProtocolError` (the server answers it as an error; the node's state
is untouched), and entry records are CRC-checked by `EncodedBatch.from_bytes`.
The decoded request is then checked whole by the node before any state changes
(`raftx.messages` ``validate``: types, terms and indexes within ``MAX_TERM`` /
``MAX_INDEX``, decodable memberships; the engine: nothing conflicts with the
committed log) and only then may its leader be accepted.

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

import logging
import ssl as _ssl
import struct
import zlib
from collections.abc import Iterator
from typing import Any, Protocol, TYPE_CHECKING

import msgpack

from raftx.config import Config
from raftx.errors import ProtocolError, RaftError, Unreachable
from raftx.messages import (
    MAX_TERM,
    AppendEntriesRequest,
    AppendEntriesResponse,
    ForwardOutcome,
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
from raftx.network.server import RpcServer, current_connection
from raftx.records import EncodedBatch, decode_meta, encode_entries_batch, encode_meta
from raftx.types import BasicNode, Entry, EntryRange, LogId, Snapshot, Vote

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
    "serve_on_router",
]

logger = logging.getLogger(__name__)

_LEN = struct.Struct("<I")
_MAX_HEADER = 1 << 20
_packb = msgpack.Packer(use_bin_type=True).pack


# -- field codecs --------------------------------------------------------------------


def _vote(v: Vote) -> list[Any]:
    return [v.term, v.node_id, v.committed]


def _log_id(x: LogId | None) -> list[int] | None:
    return None if x is None else [x.leader_id, x.index]


def _int(x: Any, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise ProtocolError(f"{what} must be an int, not {type(x).__name__}")
    return x


def _bool(x: Any, what: str) -> bool:
    if not isinstance(x, bool):
        raise ProtocolError(f"{what} must be a bool, not {type(x).__name__}")
    return x


def _un_vote(x: Any) -> Vote:
    if not isinstance(x, list) or len(x) != 3:
        raise ProtocolError(f"malformed vote {x!r:.80}")
    term, node, committed = x
    try:
        return Vote(_int(term, "vote term"), None if node is None else _int(node, "vote node"),
                    _bool(committed, "vote committed"))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"bad vote {x!r:.80}: {exc}") from exc


def _response_vote(x: Any) -> Vote:
    """A peer's answer is range-checked like a request (`MAX_TERM`): the leader adopts a
    higher term it sees (§5.1), so an unusable term must not get in through an answer."""
    v = _un_vote(x)
    if v.term > MAX_TERM:
        raise ProtocolError(f"response term {v.term} is above the largest accepted term {MAX_TERM}")
    return v


def _un_log_id(x: Any) -> LogId | None:
    if x is None:
        return None
    if not isinstance(x, list) or len(x) != 2:
        raise ProtocolError(f"malformed log id {x!r:.80}")
    try:
        return LogId(_int(x[0], "log id term"), _int(x[1], "log id index"))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"bad log id {x!r:.80}: {exc}") from exc


def _frame(header: Any, body: bytes | memoryview = b"") -> bytes:
    h = _packb(header)
    return b"".join((_LEN.pack(len(h)), h, body))


def _unframe(payload: bytes | memoryview, arity: int) -> tuple[list[Any], memoryview]:
    view = memoryview(payload)
    if view.nbytes < 4:
        raise ProtocolError("payload shorter than its header length")
    (hlen,) = _LEN.unpack_from(view, 0)
    if hlen > _MAX_HEADER or 4 + hlen > view.nbytes:
        raise ProtocolError(f"header length {hlen} does not fit the {view.nbytes}-byte payload")
    try:
        header = msgpack.unpackb(view[4 : 4 + hlen], raw=False, max_bin_len=_MAX_HEADER, max_str_len=1024,
                                 max_array_len=64, max_map_len=0, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ProtocolError(f"undecodable message header: {exc}") from exc
    if not isinstance(header, list) or len(header) != arity:
        raise ProtocolError(f"message header must be a list of {arity}, not {header!r:.80}")
    return header, view[4 + hlen :]


# -- messages ------------------------------------------------------------------------


def _entry_bytes(entries: Any) -> tuple[int | None, bytes | memoryview]:
    """``(first_index, record bytes)`` of an AppendEntries' entries (encoded once)."""
    if isinstance(entries, EncodedBatch):
        return (entries.first_index if entries else None), entries.data
    if isinstance(entries, EntryRange):
        b = encode_entries_batch(entries)
        return (b.first_index if b else None), b.data
    items = list(entries)
    if not items:
        return None, b""
    if not all(isinstance(e, Entry) for e in items):
        raise ProtocolError("AppendEntries entries must be Entry objects or an EncodedBatch")
    b = EncodedBatch.from_entries(items)
    return b.first_index, b.data


def _encode_forward(req: ForwardRequest) -> bytes:
    parts: list[bytes] = []
    for p in req.payloads:
        parts.append(_LEN.pack(len(p)))
        parts.append(p)
    return _frame([req.kind, len(req.payloads)], b"".join(parts))


def _decode_forward(payload: bytes | memoryview) -> ForwardRequest:
    (kind, count), body = _unframe(payload, 2)
    if not isinstance(kind, str):
        raise ProtocolError("forward kind must be a str")
    n = _int(count, "forward count")
    if not 0 <= n <= body.nbytes // 4:
        raise ProtocolError(f"forward count {n} does not fit the {body.nbytes}-byte body")
    payloads: list[bytes] = []
    pos = 0
    for _ in range(n):
        if pos + 4 > body.nbytes:
            raise ProtocolError("forward payload length past the end of the body")
        (size,) = _LEN.unpack_from(body, pos)
        pos += 4
        if pos + size > body.nbytes:
            raise ProtocolError(f"forward payload of {size} bytes past the end of the body")
        payloads.append(bytes(body[pos : pos + size]))
        pos += size
    if pos != body.nbytes:
        raise ProtocolError(f"{body.nbytes - pos} bytes after the forwarded payloads")
    req = ForwardRequest(kind, tuple(payloads))
    req.validate()
    return req


def _pack_data(data: Any) -> Any:
    """A state machine response as msgpack can carry it; None (logged) if it cannot."""
    try:
        _packb(data)
    except (TypeError, ValueError, OverflowError):
        logger.debug("forwarded write response of type %s is not msgpack-encodable; sent as None",
                     type(data).__name__)
        return None
    return data


def encode_forward_response(resp: ForwardResponse) -> bytes:
    """The payload answering a forward request (see the module docstring)."""
    body = _packb([[o.status, _log_id(o.log_id), o.leader_id, o.message, _pack_data(o.data)]
                   for o in resp.outcomes])
    return _frame([len(resp.outcomes)], body)


def decode_forward_response(payload: bytes | memoryview, expected: int) -> ForwardResponse:
    """Inverse of `encode_forward_response`; `ProtocolError` unless it has ``expected`` outcomes."""
    (count,), body = _unframe(payload, 1)
    if _int(count, "forward outcome count") != expected:
        raise ProtocolError(f"forward response has {count} outcomes, expected {expected}")
    try:
        items = msgpack.unpackb(body, raw=False, strict_map_key=False, max_bin_len=body.nbytes,
                                max_str_len=body.nbytes, max_array_len=body.nbytes,
                                max_map_len=body.nbytes, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ProtocolError(f"undecodable forward response: {exc}") from exc
    if not isinstance(items, list) or len(items) != expected:
        raise ProtocolError("forward response body does not match its count")
    out: list[ForwardOutcome] = []
    for item in items:
        if not isinstance(item, list) or len(item) != 5:
            raise ProtocolError(f"malformed forward outcome {item!r:.80}")
        status, log_id, leader, message, data = item
        if not isinstance(message, str):
            raise ProtocolError("forward outcome message must be a str")
        out.append(ForwardOutcome(_int(status, "forward status"), _un_log_id(log_id),
                                  None if leader is None else _int(leader, "forward leader_id"), message, data))
    return ForwardResponse(tuple(out))


def encode_request(method: str, req: Any) -> bytes:
    """The payload of a Raft RPC request (see the module docstring)."""
    if method == "append":
        first, data = _entry_bytes(req.entries)
        return _frame([_vote(req.vote), _log_id(req.prev_log_id), _log_id(req.leader_commit), first], data)
    if method == "vote":
        return _frame([_vote(req.vote), _log_id(req.last_log_id), req.pre_vote])
    if method == "transfer":
        return _frame([_vote(req.from_leader), req.to_node_id, _log_id(req.last_log_id)])
    if method == "forward":
        return _encode_forward(req)
    raise ValueError(f"unknown Raft RPC method {method!r}")


def decode_request(method: str, payload: bytes | memoryview) -> Any:
    """Inverse of `encode_request`; raises `ProtocolError` for anything malformed."""
    if method == "append":
        (vote, prev, commit, first), body = _unframe(payload, 4)
        prev_id = _un_log_id(prev)
        expected = (-1 if prev_id is None else prev_id.index) + 1
        entries: Any = ()
        if body.nbytes:
            if first is None or _int(first, "first_index") != expected:
                raise ProtocolError(f"entries start at {first!r}, expected {expected}")
            entries = EncodedBatch.from_bytes(bytes(body), expected)  # CorruptRecord (a ProtocolError) if bad
        return AppendEntriesRequest(_un_vote(vote), prev_id, entries, _un_log_id(commit))
    if method == "vote":
        (vote, last, pre), _ = _unframe(payload, 3)
        return VoteRequest(_un_vote(vote), _un_log_id(last), _bool(pre, "pre_vote"))
    if method == "transfer":
        (vote, to, last), _ = _unframe(payload, 3)
        return TransferLeaderRequest(_un_vote(vote), _int(to, "to_node_id"), _un_log_id(last))
    if method == "forward":
        return _decode_forward(payload)
    raise ProtocolError(f"unknown Raft RPC method {method!r:.70}")


def _encode_append_response(r: AppendEntriesResponse) -> bytes:
    return _frame([_vote(r.vote), r.success, _log_id(r.matching), r.conflict_index, r.conflict_term])


def _decode_append_response(payload: bytes) -> AppendEntriesResponse:
    (vote, ok, matching, ci, ct), _ = _unframe(payload, 5)
    return AppendEntriesResponse(_response_vote(vote), _bool(ok, "success"), _un_log_id(matching),
                                 _int(ci, "conflict_index"), _int(ct, "conflict_term"))


def _encode_vote_response(r: VoteResponse) -> bytes:
    return _frame([_vote(r.vote), r.vote_granted, _log_id(r.last_log_id), r.pre_vote])


def _decode_vote_response(payload: bytes) -> VoteResponse:
    (vote, granted, last, pre), _ = _unframe(payload, 4)
    return VoteResponse(_response_vote(vote), _bool(granted, "vote_granted"), _un_log_id(last),
                        _bool(pre, "pre_vote"))


def _encode_chunk(vote: Vote, meta_bytes: bytes, offset: int, done: bool, crc: int | None, data: bytes) -> bytes:
    return _frame([_vote(vote), meta_bytes, offset, done, crc], data)


def _decode_chunk(payload: bytes | memoryview) -> tuple[InstallSnapshotRequest, int | None]:
    (vote, meta, offset, done, crc), body = _unframe(payload, 5)
    if not isinstance(meta, bytes):
        raise ProtocolError("snapshot meta must be bytes")
    try:
        m = decode_meta(meta)
    except RaftError as exc:
        raise ProtocolError(f"bad snapshot meta: {exc}") from exc
    if crc is not None:
        crc = _int(crc, "snapshot crc")
    req = InstallSnapshotRequest(_un_vote(vote), m, _int(offset, "offset"), bytes(body), _bool(done, "done"))
    return req, crc


# -- the client side -------------------------------------------------------------------


class _Caller(Protocol):
    async def call(self, method: str, payload: Any = b"", timeout: float | None = None) -> bytes: ...


class RpcRaftNetwork:
    """A `raftx.network.RaftNetwork` for one target over an RPC caller
    (`RpcClient` or `MemClient`). Snapshots are streamed in ``chunk_size`` chunks, one
    in flight at a time (each answered before the next is read: backpressure)."""

    def __init__(self, caller: _Caller, chunk_size: int = 1 << 20, backoff: Backoff | None = None) -> None:
        self.caller = caller
        self.chunk_size = chunk_size
        self._backoff = backoff or Backoff()

    async def append_entries(self, rpc: AppendEntriesRequest, option: RPCOption | None = None) -> AppendEntriesResponse:
        """Send one AppendEntries RPC (§5.3) and return the target's response."""
        raw = await self.caller.call("append", encode_request("append", rpc), _ttl(option))
        return _decode_append_response(raw)

    async def vote(self, rpc: VoteRequest, option: RPCOption | None = None) -> VoteResponse:
        """Send one RequestVote RPC (§5.2; a pre-vote when ``rpc`` says so) and return the response."""
        raw = await self.caller.call("vote", encode_request("vote", rpc), _ttl(option))
        return _decode_vote_response(raw)

    async def transfer_leader(self, req: TransferLeaderRequest, option: RPCOption | None = None) -> None:
        """Ask the target to take over leadership (thesis §3.10)."""
        await self.caller.call("transfer", encode_request("transfer", req), _ttl(option))

    async def forward(self, req: ForwardRequest, option: RPCOption | None = None) -> ForwardResponse:
        """Hand a client write batch or read check to the target (the leader, we believe)."""
        raw = await self.caller.call("forward", encode_request("forward", req), _ttl(option))
        return decode_forward_response(raw, len(req.payloads) if req.kind == "write" else 1)

    async def install_snapshot(self, rpc: InstallSnapshotRequest, option: RPCOption | None = None) -> SnapshotResponse:
        """Send one chunk (openraft v1 API); no end-to-end checksum."""
        payload = _encode_chunk(rpc.vote, encode_meta(rpc.meta), rpc.offset, rpc.done, None, rpc.data)
        raw = await self.caller.call("snapshot", payload, _ttl(option))
        return _decode_snapshot_response(raw)

    async def full_snapshot(self, vote: Vote, snapshot: Snapshot, cancel: Any = None,
                            option: RPCOption | None = None) -> SnapshotResponse:
        """Stream ``snapshot`` to the target (§7); ``option.hard_ttl`` bounds each chunk."""
        f = snapshot.snapshot
        f.seek(0)
        meta_bytes = encode_meta(snapshot.meta)
        crc = 0
        offset = 0
        cur = f.read(self.chunk_size)
        while True:
            nxt = f.read(self.chunk_size) if cur else b""
            done = not nxt
            crc = zlib.crc32(cur, crc)
            payload = _encode_chunk(vote, meta_bytes, offset, done, crc if done else None, cur)
            resp = _decode_snapshot_response(await self.caller.call("snapshot", payload, _ttl(option)))
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


def _decode_snapshot_response(payload: bytes) -> SnapshotResponse:
    (vote,), _ = _unframe(payload, 1)
    return SnapshotResponse(_response_vote(vote))


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

    async def __call__(self, sender: int, method: str, payload: memoryview) -> bytes:
        raft = self.raft
        if method == "append":
            req = decode_request("append", payload)
            return _encode_append_response(await raft.append_entries(req, sender=sender))
        if method == "vote":
            return _encode_vote_response(await raft.vote(decode_request("vote", payload), sender=sender))
        if method == "snapshot":
            chunk, crc = _decode_chunk(payload)
            resp = await raft.receive_snapshot_chunk(chunk, crc, sender=sender, connection=current_connection.get())
            return _frame([_vote(resp.vote)])
        if method == "transfer":
            await raft.handle_transfer_leader(decode_request("transfer", payload), sender=sender)
            return b""
        if method == "forward":
            return encode_forward_response(await raft.serve_forward(decode_request("forward", payload), sender=sender))
        raise ProtocolError(f"unknown Raft RPC method {method!r:.70}")


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

