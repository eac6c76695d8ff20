"""The Raft RPC codec: the bytes of each method's request and response, one table of them.

Five methods travel over one `raftx.network.RpcClient` connection per peer (or a
`raftx.network.MemRouter` link in tests): ``append`` (§5.3), ``vote`` (§5.2),
``snapshot`` (one chunk of a streamed snapshot, §7), ``transfer`` (thesis §3.10) and
``forward`` (a follower's client call handed to the leader). `METHODS` maps each name
to its `Method`: request encoder and decoder, response encoder and decoder. The
transport (`raftx.network.raft_rpc`) knows nothing else about the bytes. Each payload
is::

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
  `raftx.records.encode_meta`; the CRC-32 of the whole snapshot goes with the last
  chunk and is verified before install); response ``[vote]``;
* transfer request ``[from_leader_vote, to_node_id, last_log_id]``; empty response;
* forward request ``[kind, count]`` + ``count`` payloads, each a u32 little-endian
  length and its bytes (``kind`` ``"write"``; ``"read"`` with count 0: a follower's
  write or linearizable read handed to the leader, `raftx.runtime.forward`);
  response ``[count]`` + a msgpack list of ``count`` outcomes ``[status, log_id,
  leader_id, message, data]`` (`raftx.messages.ForwardOutcome`).

No copy of an entry batch: a request is encoded as a list of buffers (`encode_request_parts`),
the small prefix and the batch's own bytes, which the transport hands to
``transport.writelines`` as they are; on receipt the batch is validated and kept as
a read-only view into the received frame (`raftx.records.EncodedBatch.from_bytes`).

Everything received is validated before use: a malformed payload raises
`raftx.errors.ProtocolError` (the server answers it as an error; the node's state is
untouched), and entry records are CRC-checked by `EncodedBatch.from_bytes`. The
decoded request is then checked whole by the node before any state changes
(`raftx.messages` ``validate``), and a peer's answer is range-checked like a request.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from raftx.errors import ProtocolError, RaftError
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
from raftx.network.wire import Buffer
from raftx.records import EncodedBatch, decode_meta, encode_entries_batch, encode_meta
from raftx.types import Entry, EntryRange, LogId, Vote

__all__ = [
    "METHODS",
    "Method",
    "SnapshotChunk",
    "decode_forward_response",
    "decode_request",
    "decode_response",
    "encode_forward_response",
    "encode_request",
    "encode_request_parts",
    "encode_response",
]

logger = logging.getLogger(__name__)

_LEN = struct.Struct("<I")
_MAX_HEADER = 1 << 20
_packb = msgpack.Packer(use_bin_type=True).pack


# -- field codecs --------------------------------------------------------------------


def _vote(v: Vote) -> list[Any]:
    return [v.term, v.node_id, v.committed]


def _log_id(x: LogId | None) -> list[int] | None:
    return None if x is None else [x.term, x.index]


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


def _frame_parts(header: Any, body: Buffer = b"") -> list[Buffer]:
    """The payload as buffers: the header prefix, then ``body`` itself (never copied)."""
    h = _packb(header)
    prefix = _LEN.pack(len(h)) + h
    return [prefix, body] if body else [prefix]


def _frame(header: Any, body: Buffer = b"") -> bytes:
    return b"".join(_frame_parts(header, body))


def _unframe(payload: Buffer, arity: int) -> tuple[list[Any], memoryview]:
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


# -- append (§5.3) ---------------------------------------------------------------------


def _entry_bytes(entries: Any) -> tuple[int | None, Buffer]:
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


def _encode_append(req: AppendEntriesRequest) -> list[Buffer]:
    first, data = _entry_bytes(req.entries)
    return _frame_parts([_vote(req.vote), _log_id(req.prev_log_id), _log_id(req.leader_commit), first], data)


def _decode_append(payload: Buffer) -> AppendEntriesRequest:
    (vote, prev, commit, first), body = _unframe(payload, 4)
    prev_id = _un_log_id(prev)
    expected = (-1 if prev_id is None else prev_id.index) + 1
    entries: Any = ()
    if body.nbytes:
        if first is None or _int(first, "first_index") != expected:
            raise ProtocolError(f"entries start at {first!r}, expected {expected}")
        # A view into the received frame, kept without a copy (a read-only view of
        # bytes); CorruptRecord (a ProtocolError) if any record is bad.
        entries = EncodedBatch.from_bytes(body, expected)
    return AppendEntriesRequest(_un_vote(vote), prev_id, entries, _un_log_id(commit))


def _encode_append_response(r: AppendEntriesResponse) -> bytes:
    return _frame([_vote(r.vote), r.success, _log_id(r.matching), r.conflict_index, r.conflict_term])


def _decode_append_response(payload: Buffer, _req: Any) -> AppendEntriesResponse:
    (vote, ok, matching, ci, ct), _ = _unframe(payload, 5)
    return AppendEntriesResponse(_response_vote(vote), _bool(ok, "success"), _un_log_id(matching),
                                 _int(ci, "conflict_index"), _int(ct, "conflict_term"))


# -- vote (§5.2) -----------------------------------------------------------------------


def _encode_vote(req: VoteRequest) -> list[Buffer]:
    return _frame_parts([_vote(req.vote), _log_id(req.last_log_id), req.pre_vote])


def _decode_vote(payload: Buffer) -> VoteRequest:
    (vote, last, pre), _ = _unframe(payload, 3)
    return VoteRequest(_un_vote(vote), _un_log_id(last), _bool(pre, "pre_vote"))


def _encode_vote_response(r: VoteResponse) -> bytes:
    return _frame([_vote(r.vote), r.vote_granted, _log_id(r.last_log_id), r.pre_vote])


def _decode_vote_response(payload: Buffer, _req: Any) -> VoteResponse:
    (vote, granted, last, pre), _ = _unframe(payload, 4)
    return VoteResponse(_response_vote(vote), _bool(granted, "vote_granted"), _un_log_id(last),
                        _bool(pre, "pre_vote"))


# -- snapshot (§7) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    """One ``snapshot`` request: the chunk and, with the last one, the CRC-32 of the whole
    snapshot (None: not checked, openraft's v1 chunk API). ``meta_bytes`` is
    ``encode_meta(chunk.meta)`` when the sender has it already (None: encoded here)."""

    chunk: InstallSnapshotRequest
    crc: int | None = None
    meta_bytes: bytes | None = None


def _encode_snapshot(req: SnapshotChunk) -> list[Buffer]:
    c = req.chunk
    meta = req.meta_bytes if req.meta_bytes is not None else encode_meta(c.meta)
    return _frame_parts([_vote(c.vote), meta, c.offset, c.done, req.crc], c.data)


def _decode_snapshot(payload: Buffer) -> SnapshotChunk:
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
    return SnapshotChunk(req, crc, meta)


def _encode_snapshot_response(r: SnapshotResponse) -> bytes:
    return _frame([_vote(r.vote)])


def _decode_snapshot_response(payload: Buffer, _req: Any) -> SnapshotResponse:
    (vote,), _ = _unframe(payload, 1)
    return SnapshotResponse(_response_vote(vote))


# -- transfer (thesis §3.10) -----------------------------------------------------------


def _encode_transfer(req: TransferLeaderRequest) -> list[Buffer]:
    return _frame_parts([_vote(req.from_leader), req.to_node_id, _log_id(req.last_log_id)])


def _decode_transfer(payload: Buffer) -> TransferLeaderRequest:
    (vote, to, last), _ = _unframe(payload, 3)
    return TransferLeaderRequest(_un_vote(vote), _int(to, "to_node_id"), _un_log_id(last))


def _encode_nothing(_resp: Any) -> bytes:
    return b""


def _decode_nothing(_payload: Buffer, _req: Any) -> None:
    return None


# -- forward (a follower's client call, raftx.runtime.forward) -------------------------


def _encode_forward(req: ForwardRequest) -> list[Buffer]:
    parts: list[bytes] = []
    for p in req.payloads:
        parts.append(_LEN.pack(len(p)))
        parts.append(p)
    return _frame_parts([req.kind, len(req.payloads)], b"".join(parts))


def _decode_forward(payload: Buffer) -> ForwardRequest:
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


def decode_forward_response(payload: Buffer, expected: int) -> ForwardResponse:
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


def _decode_forward_response(payload: Buffer, req: ForwardRequest) -> ForwardResponse:
    return decode_forward_response(payload, len(req.payloads) if req.kind == "write" else 1)


# -- the table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Method:
    """The codec of one Raft RPC method: request and response, both directions."""

    name: str
    encode_request: Callable[[Any], list[Buffer]]
    #: Raises `ProtocolError` for anything malformed (before the node sees it).
    decode_request: Callable[[Buffer], Any]
    encode_response: Callable[[Any], bytes]
    #: ``(payload, request) -> response``; raises `ProtocolError` for a malformed answer.
    decode_response: Callable[[Buffer, Any], Any]


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("append", _encode_append, _decode_append, _encode_append_response, _decode_append_response),
    Method("vote", _encode_vote, _decode_vote, _encode_vote_response, _decode_vote_response),
    Method("snapshot", _encode_snapshot, _decode_snapshot, _encode_snapshot_response, _decode_snapshot_response),
    Method("transfer", _encode_transfer, _decode_transfer, _encode_nothing, _decode_nothing),
    Method("forward", _encode_forward, _decode_forward, encode_forward_response, _decode_forward_response),
)}


def method(name: str) -> Method:
    """The codec of method ``name``; `ProtocolError` for an unknown one (a peer's bytes)."""
    m = METHODS.get(name)
    if m is None:
        raise ProtocolError(f"unknown Raft RPC method {name!r:.70}")
    return m


def encode_request_parts(name: str, req: Any) -> list[Buffer]:
    """The payload of a Raft RPC request as buffers for ``writelines`` (an entry batch
    is one of them, not copied). ValueError for an unknown method (our own bug)."""
    m = METHODS.get(name)
    if m is None:
        raise ValueError(f"unknown Raft RPC method {name!r}")
    return m.encode_request(req)


def encode_request(name: str, req: Any) -> bytes:
    """The payload of a Raft RPC request as one ``bytes`` (see `encode_request_parts`)."""
    return b"".join(encode_request_parts(name, req))


def decode_request(name: str, payload: Buffer) -> Any:
    """Inverse of `encode_request`; raises `ProtocolError` for anything malformed."""
    return method(name).decode_request(payload)


def encode_response(name: str, resp: Any) -> bytes:
    """The payload answering a ``name`` request."""
    return method(name).encode_response(resp)


def decode_response(name: str, payload: Buffer, req: Any) -> Any:
    """Inverse of `encode_response` for the answer to ``req``; `ProtocolError` if malformed."""
    return method(name).decode_response(payload, req)
