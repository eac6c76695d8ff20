"""The key-value service's commands: the bytes of a NORMAL log entry, and the responses.

A command is one msgpack array, the payload of a NORMAL entry (encoded once by the
client side, stored and replicated as it is)::

    [op, client_id, serial, acked, key, *args]

    op         PUT=1 (args: value), DELETE=2, CAS=3 (args: expected, new), GET=4
    client_id  u64; 0 = no session (the command is not deduplicated)
    serial     u64; the client's sequence number of this command, from 1
    acked      u64; the client's lowest serial still waiting for a response: the
               state machine may forget the responses of every lower serial
               (Raft thesis §6.3, "acknowledging" responses)
    key        bytes, at most `MAX_KEY_BYTES`
    value/new  bytes (`MAX_VALUE_BYTES`); ``expected`` / ``new`` of CAS may be nil:
               expected nil = "the key is absent", new nil = "delete the key"

A response (`KVResponse`) is ``(status, value)``: `OK`, `NOT_FOUND`, `CAS_MISMATCH`
(value = the current value), `BAD_COMMAND` (value = the reason, a str), `STALE`
(a duplicate of a request whose response the client already acknowledged). It is a
tuple, so it is msgpack-encodable as it is.

Keys and values given as `str` are encoded as UTF-8; the state machine only ever
sees bytes, so ``"a"`` and ``b"a"`` name the same key. Malformed arguments raise
`raftx.errors.BadCommand`; `decode` raises it for malformed bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

from raftx._core import kvcodec
from raftx.errors import BadCommand

__all__ = [
    "BAD_COMMAND",
    "CAS",
    "CAS_MISMATCH",
    "DELETE",
    "GET",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "NOT_FOUND",
    "OK",
    "PUT",
    "STALE",
    "Command",
    "KVResponse",
    "decode",
    "decode_fields",
    "describe",
    "encode_cas",
    "encode_delete",
    "encode_get",
    "encode_put",
    "to_bytes",
]

PUT = 1
DELETE = 2
CAS = 3
GET = 4
_ARITY = {PUT: 1, DELETE: 0, CAS: 2, GET: 0}

OK = 0
NOT_FOUND = 1
CAS_MISMATCH = 2
BAD_COMMAND = 3
STALE = 4

#: Longest key, in bytes (64 KiB; defined by `raftx._core.kvcodec`, the PUT fast path).
MAX_KEY_BYTES: int = kvcodec.MAX_KEY_BYTES
#: Longest value, in bytes (32 MiB: an entry payload is at most 64 MiB; leave room for framing).
MAX_VALUE_BYTES: int = kvcodec.MAX_VALUE_BYTES

_U64 = 2**64


class KVResponse(NamedTuple):
    """The state machine's answer to one command (see the module docstring)."""

    status: int
    value: Any = None


class Command(NamedTuple):
    """A decoded command. ``args`` holds the value (PUT) or ``(expected, new)`` (CAS)."""

    op: int
    client_id: int
    serial: int
    acked: int
    key: bytes
    args: tuple[Any, ...]


_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
# the PUT fast paths, bound once (a global lookup per call, not an attribute chain)
_encode_put = kvcodec.encode_put
_decode_put = kvcodec.decode_put


def to_bytes(value: Any, what: str, limit: int) -> bytes:
    """``value`` as bytes (str as UTF-8); `BadCommand` if neither or over ``limit``."""
    if isinstance(value, bytes):
        b = value
    elif isinstance(value, str):
        b = value.encode("utf-8")
    elif isinstance(value, (bytearray, memoryview)):
        b = bytes(value)
    else:
        raise BadCommand(f"{what} must be bytes or str, not {type(value).__name__}")
    if len(b) > limit:
        raise BadCommand(f"{what} of {len(b)} bytes exceeds the limit of {limit}")
    return b


def _session(client_id: int, serial: int, acked: int) -> None:
    for name, v in (("client_id", client_id), ("serial", serial), ("acked", acked)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _U64:
            raise BadCommand(f"{name} must be an int in 0..2**64-1, not {v!r}")


def encode_put(key: Any, value: Any, client_id: int = 0, serial: int = 0, acked: int = 0) -> bytes:
    """The command bytes of ``put(key, value)``.

    The common call (bytes key and value, int session fields) is encoded by
    `raftx._core.kvcodec.encode_put`; anything else (str keys, bad arguments) takes
    the checked path below, which produces the same bytes or raises `BadCommand`.
    """
    b = _encode_put(key, value, client_id, serial, acked)
    if b is not None:
        return b
    _session(client_id, serial, acked)
    return _pack([PUT, client_id, serial, acked, to_bytes(key, "key", MAX_KEY_BYTES),
                  to_bytes(value, "value", MAX_VALUE_BYTES)])


def encode_delete(key: Any, client_id: int = 0, serial: int = 0, acked: int = 0) -> bytes:
    """The command bytes of ``delete(key)``."""
    _session(client_id, serial, acked)
    return _pack([DELETE, client_id, serial, acked, to_bytes(key, "key", MAX_KEY_BYTES)])


def encode_cas(key: Any, expected: Any, new: Any, client_id: int = 0, serial: int = 0, acked: int = 0) -> bytes:
    """The command bytes of ``cas(key, expected, new)`` (None: absent / delete)."""
    _session(client_id, serial, acked)
    exp = None if expected is None else to_bytes(expected, "expected", MAX_VALUE_BYTES)
    nw = None if new is None else to_bytes(new, "new", MAX_VALUE_BYTES)
    return _pack([CAS, client_id, serial, acked, to_bytes(key, "key", MAX_KEY_BYTES), exp, nw])


def encode_get(key: Any, client_id: int = 0, serial: int = 0, acked: int = 0) -> bytes:
    """The command bytes of a read through the log (``get(key)`` as an entry)."""
    _session(client_id, serial, acked)
    return _pack([GET, client_id, serial, acked, to_bytes(key, "key", MAX_KEY_BYTES)])


def _unpack(payload: bytes | bytearray | memoryview) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, use_list=True, max_array_len=16, max_map_len=0,
                               max_ext_len=0, max_str_len=0, max_bin_len=MAX_VALUE_BYTES)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise BadCommand(f"undecodable command: {exc!r:.200}") from None


def decode_fields(payload: bytes | bytearray | memoryview) -> tuple[int, int, int, int, bytes, tuple[Any, ...]]:
    """`decode` for the state machine's apply loop: the same fields and the same
    `BadCommand` checks, as a plain tuple; a well-formed PUT (the common command) is
    parsed without building a `Command`.

    The fast path, `raftx._core.kvcodec.decode_put`, answers only for a `bytes`
    payload holding a PUT that `decode` accepts too (with the same fields);
    anything else is decoded by `decode`.
    """
    put = _decode_put(payload)
    if put is not None:
        client_id, serial, acked, key, value = put
        return PUT, client_id, serial, acked, key, (value,)
    return decode(payload)


def decode(payload: bytes | bytearray | memoryview) -> Command:
    """Parse and validate command bytes; `BadCommand` for anything malformed."""
    return _validate(_unpack(payload))


def _validate(obj: Any) -> Command:
    if not isinstance(obj, list) or len(obj) < 5:
        raise BadCommand(f"a command is an array [op, client_id, serial, acked, key, ...], got {obj!r:.100}")
    op, client_id, serial, acked, key = obj[:5]
    args = tuple(obj[5:])
    if type(op) is not int or op not in _ARITY:
        raise BadCommand(f"unknown operation {op!r:.50}")
    if len(args) != _ARITY[op]:
        raise BadCommand(f"operation {op} takes {_ARITY[op]} argument(s), got {len(args)}")
    _session(client_id, serial, acked)
    if type(key) is not bytes or len(key) > MAX_KEY_BYTES:
        raise BadCommand(f"key must be bytes of at most {MAX_KEY_BYTES}, got {type(key).__name__}")
    if op == PUT:
        if type(args[0]) is not bytes:
            raise BadCommand(f"value must be bytes, got {type(args[0]).__name__}")
    elif op == CAS:
        for a in args:
            if a is not None and type(a) is not bytes:
                raise BadCommand(f"CAS expected/new must be bytes or nil, got {type(a).__name__}")
    return Command(op, client_id, serial, acked, key, args)


_OP_NAMES = {PUT: "PUT", DELETE: "DELETE", CAS: "CAS", GET: "GET"}


def _text(b: bytes | None, limit: int = 200) -> str | None:
    """Bytes for people: UTF-8 where it is, backslash escapes elsewhere, long ones cut."""
    if b is None:
        return None
    t = b[:limit].decode("utf-8", "backslashreplace")
    return t + f"... ({len(b)} bytes)" if len(b) > limit else t


def describe(payload: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A readable form of command bytes (``raftx inspect --dump --decode kv``):
    ``{"op": "PUT", "key": ..., "value": ..., "client_id", "serial"}``; a payload that
    is not a valid command gives ``{"op": "invalid", "error": ...}``."""
    try:
        op, client_id, serial, _acked, key, args = decode_fields(bytes(payload))
    except BadCommand as exc:
        return {"op": "invalid", "error": str(exc)}
    out: dict[str, Any] = {"op": _OP_NAMES[op], "key": _text(key)}
    if op == PUT:
        out["value"] = _text(args[0])
    elif op == CAS:
        out["expected"], out["new"] = _text(args[0]), _text(args[1])
    if client_id:
        out["client_id"], out["serial"] = client_id, serial
    return out
