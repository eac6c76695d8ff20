"""The RPC wire format carried inside `raftx._core.codec` frames.

Every message is one codec frame (u32 length, u8 frame type, body). The body is::

    offset size field
    ------ ---- ------------------------------------------------------------
         0    1 header_length  u8, bytes of the msgpack header that follows
         1    h header         msgpack: small, typed per frame type (below)
       1+h    n payload        opaque bytes, the rest of the frame

Frame types and their headers:

* ``HELLO``        ``{"v": version, "cluster": str, "from": int, "to": int | nil}`` (client first;
                   ``"to": nil`` is the *any target* hello of a key-value client that
                   knows only ``host:port``: the server names itself in the ack and
                   serves that connection only its client methods, see `raftx.network.server`)
* ``HELLO_ACK``    ``{"v": version, "node": int}`` (server, hello accepted)
* ``HELLO_REJECT`` ``{"reason": str}`` (server, just before it closes the connection)
* ``REQUEST``      ``[request_id, method]``; payload = request bytes
* ``RESPONSE``     ``[request_id]``; payload = response bytes
* ``ERROR``        ``[request_id, error_type, message]`` (the handler raised)

The payload is never msgpack-encoded or copied by this layer on the sending side:
a large payload (an AppendEntries batch, already in the log's record format, DESIGN
§2 rule 3; or a large piece of a payload given as a list of buffers) goes to the
socket as its own buffer after a small prefix (``writelines``), and a received
payload is handed out as a read-only `memoryview` slice of the frame's ``bytes``.
"""

from __future__ import annotations

import struct
from typing import Any, Union

import msgpack

from raftx import _core
from raftx.errors import ConfigError, ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "HELLO",
    "HELLO_ACK",
    "HELLO_REJECT",
    "REQUEST",
    "RESPONSE",
    "ERROR",
    "PRE_HELLO_MAX_FRAME",
    "MAX_METHOD_LENGTH",
    "encode_message",
    "decode_message",
    "encode_hello",
    "parse_hello",
    "Buffer",
    "Payload",
    "payload_size",
    "check_max_frame_bytes",
    "check_cluster_name",
    "check_node_id",
    "MAX_CLUSTER_NAME_BYTES",
]

#: What a payload may be: any contiguous bytes-like object.
Buffer = Union[bytes, bytearray, memoryview]
#: A payload to send: one buffer, or a list of buffers that follow each other (sent
#: with ``writelines``, so a large one is not copied into a joined message).
Payload = Union[Buffer, list[Buffer]]

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

HELLO = 1
HELLO_ACK = 2
HELLO_REJECT = 3
REQUEST = 4
RESPONSE = 5
ERROR = 6

#: Frame limit until the hello is accepted: an unauthenticated peer cannot make us buffer more.
PRE_HELLO_MAX_FRAME = 4096
#: Longest method name a request may carry.
MAX_METHOD_LENGTH = 64
#: Longest cluster name (UTF-8 bytes), so that a hello header fits its 255 bytes.
MAX_CLUSTER_NAME_BYTES = 128

# Payloads up to this size are joined with their prefix into one bytes object (the
# copy is cheaper than a second buffer); larger ones are written as they are.
_JOIN_BELOW = 16 * 1024

# The codec frame header, as documented in ``raftx._core.codec`` (u32 length, u8 type).
# Only used to send a large payload without copying it into one buffer;
# tests/network/test_wire.py checks the bytes equal ``_core.codec.encode_frame``.
_FRAME_HEADER = struct.Struct("<IB")
assert _FRAME_HEADER.size == _core.codec.FRAME_HEADER_SIZE

_packb = msgpack.Packer(use_bin_type=True).pack


def payload_size(payload: Payload) -> int:
    """Bytes of a payload (one buffer, or a list of buffers sent one after the other)."""
    if isinstance(payload, list):
        return sum([memoryview(p).nbytes for p in payload])
    return memoryview(payload).nbytes


def encode_message(frame_type: int, header: Any, payload: Payload = b"") -> list[Buffer]:
    """Encode one message as the list of buffers to hand to ``transport.writelines``.

    ``payload`` is one buffer or a list of them (the message body is their
    concatenation). Small pieces are joined with the prefix; a piece of
    ``_JOIN_BELOW`` bytes or more (an entry batch) is passed on as it is, never
    copied. The result concatenates to exactly ``_core.codec.encode_frame(frame_type, body)``.
    """
    hdr = _packb(header)
    hlen = len(hdr)
    if hlen > 0xFF:
        raise ProtocolError(f"message header of {hlen} bytes exceeds 255")
    parts = payload if isinstance(payload, list) else [payload]
    sizes = [memoryview(p).nbytes for p in parts]
    n = sum(sizes)
    if n < _JOIN_BELOW:
        return [_core.codec.encode_frame(frame_type, b"".join([bytes((hlen,)), hdr, *parts]))]
    out: list[Buffer] = []
    small: list[Buffer] = [_FRAME_HEADER.pack(1 + hlen + n, frame_type), bytes((hlen,)), hdr]
    for p, size in zip(parts, sizes):
        if size < _JOIN_BELOW:
            small.append(p)
            continue
        out.append(b"".join(small))
        small = []
        out.append(p)
    if small:
        out.append(b"".join(small))
    return out


def decode_message(body: bytes) -> tuple[Any, memoryview]:
    """Split a frame body into its msgpack header and a zero-copy payload view.

    Raises `raftx.errors.ProtocolError` for a body too short for its header or a header
    that is not valid msgpack.
    """
    if not body:
        raise ProtocolError("empty message body")
    hlen = body[0]
    if len(body) < 1 + hlen:
        raise ProtocolError(f"message header length {hlen} exceeds the body ({len(body)} bytes)")
    try:
        header = msgpack.unpackb(
            body[1 : 1 + hlen], raw=False, max_str_len=256, max_bin_len=256,
            max_array_len=8, max_map_len=8, max_ext_len=0, strict_map_key=True,
        )
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ProtocolError(f"undecodable message header: {exc}") from exc
    return header, memoryview(body)[1 + hlen :]


def encode_hello(cluster_name: str, sender_id: int, target_id: int | None) -> list[Buffer]:
    """The client's first frame on every connection (``target_id=None``: any target)."""
    return encode_message(
        HELLO, {"v": PROTOCOL_VERSION, "cluster": cluster_name, "from": sender_id, "to": target_id}
    )


def parse_hello(header: Any) -> tuple[int, str, int, int | None]:
    """Validate the shape of a hello header; return ``(version, cluster, sender, target)``
    (``target`` None: an *any target* client hello).

    Only the shape is checked here; whether the values are acceptable is the server's
    decision. Raises `raftx.errors.ProtocolError` for a malformed hello.
    """
    if not isinstance(header, dict):
        raise ProtocolError("hello header is not a map")
    version, cluster = header.get("v"), header.get("cluster")
    sender, target = header.get("from"), header.get("to", -1)  # "to" must be present, nil or an id
    if not (isinstance(version, int) and isinstance(cluster, str)
            and _is_node_id(sender) and (target is None or _is_node_id(target))):
        raise ProtocolError(f"malformed hello: {header!r:.200}")
    return version, cluster, int(sender), None if target is None else int(target)  # type: ignore[arg-type]


def _is_node_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def check_max_frame_bytes(max_frame_bytes: int) -> None:
    """Reject a frame limit below the pre-hello limit or above the codec's u32 range."""
    if not (isinstance(max_frame_bytes, int)
            and PRE_HELLO_MAX_FRAME <= max_frame_bytes <= _core.codec.MAX_FRAME_SIZE_LIMIT):
        raise ConfigError(
            f"max_frame_bytes must be in {PRE_HELLO_MAX_FRAME}..{_core.codec.MAX_FRAME_SIZE_LIMIT}, "
            f"not {max_frame_bytes!r}")



def check_cluster_name(cluster_name: str) -> None:
    """Reject a cluster name that is not a string or too long for the hello header."""
    if not isinstance(cluster_name, str) or len(cluster_name.encode("utf-8")) > MAX_CLUSTER_NAME_BYTES:
        raise ConfigError(f"cluster_name must be a str of at most {MAX_CLUSTER_NAME_BYTES} UTF-8 bytes, "
                          f"not {cluster_name!r:.60}")


def check_node_id(name: str, value: int) -> None:
    """Reject a node id that is not an int in u64 (what the hello can carry)."""
    if not _is_node_id(value):
        raise ConfigError(f"{name} must be an int in 0..2**64-1, not {value!r:.60}")
