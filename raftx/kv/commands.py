"""The key-value service's commands: the bytes of a NORMAL log entry, and the responses.

A command is one msgpack array, the payload of a NORMAL entry (encoded once by the
client side, stored and replicated as it is)::

    [op, client_id, serial, acked, key, *args]

    op         PUT=1 (args: value), DELETE=2, CAS=3 (args: expected, new), GET=4,
               PUT_LEASE=5 (args: value, lease_id), TXN=6 (args: compares, success,
               failure; key empty), LEASE_GRANT=7 (args: ttl_ms), LEASE_KEEPALIVE=8,
               LEASE_REVOKE=9 (args: lease_id), LEASE_EXPIRE=10 (args: lease_id,
               version; proposed by the leader only, `raftx.kv.leases`); the lease
               commands have an empty key
    client_id  u64; 0 = no session (the command is not deduplicated)
    serial     u64; the client's sequence number of this command, from 1
    acked      u64; the client's lowest serial still waiting for a response: the
               state machine may forget the responses of every lower serial
               (Raft thesis §6.3, "acknowledging" responses)
    key        bytes, at most `MAX_KEY_BYTES`
    value/new  bytes (`MAX_VALUE_BYTES`); ``expected`` / ``new`` of CAS may be nil:
               expected nil = "the key is absent", new nil = "delete the key"

A transaction's compares are ``[target, key, cmp, operand]`` (target `TARGET_VALUE`
with a bytes operand or `TARGET_MOD` with an int; cmp an index into `CMP_OPS`,
``== != < <= > >=``); its operations ``[PUT, key, value, lease_id]``, ``[DELETE, key]``,
``[GET, key]`` (at most `MAX_TXN_OPS` of each list).

A response (`KVResponse`) is ``(status, value)``: `OK`, `NOT_FOUND`, `CAS_MISMATCH`
(value = the current value), `BAD_COMMAND` (value = the reason, a str), `STALE`
(a duplicate of a request whose response the client already acknowledged),
`LEASE_NOT_FOUND` (value = the lease id). A write's ``OK`` value is the revision it
created (`raftx.kv.state_machine` numbers every key change); a transaction's is
``[succeeded, [response, ...]]``; a lease grant's ``[lease_id, ttl_ms]``, a
keep-alive's ``ttl_ms``. It is a tuple, so it is msgpack-encodable as it is.

Keys and values given as `str` are encoded as UTF-8; the state machine only ever
sees bytes, so ``"a"`` and ``b"a"`` name the same key. Malformed arguments raise
`raftx.errors.BadCommand`; `decode` raises it for malformed bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgpack

from raftx.kv import kvcodec
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
    "PUT_LEASE",
    "TXN",
    "LEASE_GRANT",
    "LEASE_KEEPALIVE",
    "LEASE_REVOKE",
    "LEASE_EXPIRE",
    "LEASE_NOT_FOUND",
    "CMP_OPS",
    "MAX_TXN_OPS",
    "TARGET_MOD",
    "TARGET_VALUE",
    "Command",
    "KVResponse",
    "decode",
    "decode_fields",
    "describe",
    "encode_cas",
    "encode_delete",
    "encode_get",
    "encode_lease",
    "encode_put_lease",
    "encode_txn",
    "encode_put",
    "to_bytes",
]

PUT = 1
DELETE = 2
CAS = 3
GET = 4
PUT_LEASE = 5
TXN = 6
LEASE_GRANT = 7
LEASE_KEEPALIVE = 8
LEASE_REVOKE = 9
LEASE_EXPIRE = 10
_ARITY = {PUT: 1, DELETE: 0, CAS: 2, GET: 0, PUT_LEASE: 2, TXN: 3, LEASE_GRANT: 1, LEASE_KEEPALIVE: 1,
          LEASE_REVOKE: 1, LEASE_EXPIRE: 2}
_LEASE_OPS = (LEASE_GRANT, LEASE_KEEPALIVE, LEASE_REVOKE, LEASE_EXPIRE)

OK = 0
NOT_FOUND = 1
CAS_MISMATCH = 2
BAD_COMMAND = 3
STALE = 4
LEASE_NOT_FOUND = 5

TARGET_VALUE = 0
TARGET_MOD = 1
#: Comparison operators of a transaction's compares, by index.
CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")
#: Most compares, and most operations per branch, in one transaction (etcd's default).
MAX_TXN_OPS = 128
#: Longest lease TTL (a year, in milliseconds).
MAX_TTL_MS = 365 * 24 * 3600 * 1000

#: Longest key, in bytes (64 KiB; defined by `raftx.kv.kvcodec`, the PUT fast path).
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
    `raftx.kv.kvcodec.encode_put`; anything else (str keys, bad arguments) takes
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


def encode_put_lease(key: Any, value: Any, lease_id: int, client_id: int = 0, serial: int = 0,
                     acked: int = 0) -> bytes:
    """The command bytes of ``put(key, value, lease=lease_id)`` (``lease_id`` 0: none)."""
    _session(client_id, serial, acked)
    _u63(lease_id, "lease_id")
    return _pack([PUT_LEASE, client_id, serial, acked, to_bytes(key, "key", MAX_KEY_BYTES),
                  to_bytes(value, "value", MAX_VALUE_BYTES), lease_id])


def encode_txn(compares: Sequence[Any], success: Sequence[Any], failure: Sequence[Any], client_id: int = 0,
               serial: int = 0, acked: int = 0) -> bytes:
    """The command bytes of a transaction (compares and operations as lists, see the
    module docstring; `raftx.kv.txn` builds them from `Compare` / `Op`)."""
    _session(client_id, serial, acked)
    cmd = [TXN, client_id, serial, acked, b"", list(compares), list(success), list(failure)]
    _validate(cmd)
    return _pack(cmd)


def encode_lease(op: int, arg: int, client_id: int = 0, serial: int = 0, acked: int = 0,
                 version: int | None = None) -> bytes:
    """The command bytes of a lease command: `LEASE_GRANT` (``arg`` = TTL in ms),
    `LEASE_KEEPALIVE` / `LEASE_REVOKE` (``arg`` = lease id) or `LEASE_EXPIRE`
    (``arg`` = lease id, with ``version``)."""
    _session(client_id, serial, acked)
    cmd: list[Any] = [op, client_id, serial, acked, b"", arg]
    if op == LEASE_EXPIRE:
        cmd.append(version)
    _validate(cmd)
    return _pack(cmd)


def _u63(v: Any, what: str) -> None:
    if type(v) is not int or not 0 <= v < 2**63:
        raise BadCommand(f"{what} must be an int in 0..2**63-1, not {v!r:.50}")


def _check_txn(compares: Any, success: Any, failure: Any) -> None:
    for name, items in (("compares", compares), ("success", success), ("failure", failure)):
        if not isinstance(items, list) or len(items) > MAX_TXN_OPS:
            raise BadCommand(f"txn {name} must be a list of at most {MAX_TXN_OPS} items")
    for c in compares:
        if not (isinstance(c, list) and len(c) == 4 and c[0] in (TARGET_VALUE, TARGET_MOD)
                and type(c[1]) is bytes and len(c[1]) <= MAX_KEY_BYTES
                and type(c[2]) is int and 0 <= c[2] < len(CMP_OPS)):
            raise BadCommand(f"malformed txn compare {c!r:.100}")
        if c[0] == TARGET_VALUE and type(c[3]) is not bytes:
            raise BadCommand("a value compare takes a bytes operand")
        if c[0] == TARGET_MOD:
            _u63(c[3], "a mod_revision compare's operand")
    for op in (*success, *failure):
        if not (isinstance(op, list) and op and op[0] in (PUT, DELETE, GET) and len(op) >= 2
                and type(op[1]) is bytes and len(op[1]) <= MAX_KEY_BYTES):
            raise BadCommand(f"malformed txn operation {op!r:.100}")
        if op[0] == PUT:
            if len(op) != 4 or type(op[2]) is not bytes:
                raise BadCommand("a txn put is [PUT, key, value, lease_id]")
            _u63(op[3], "lease_id")
        elif len(op) != 2:
            raise BadCommand("a txn delete / get is [op, key]")


def _unpack(payload: bytes | bytearray | memoryview) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, use_list=True, max_array_len=MAX_TXN_OPS, max_map_len=0,
                               max_ext_len=0, max_str_len=0, max_bin_len=MAX_VALUE_BYTES)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise BadCommand(f"undecodable command: {exc!r:.200}") from None


def decode_fields(payload: bytes | bytearray | memoryview) -> tuple[int, int, int, int, bytes, tuple[Any, ...]]:
    """`decode` for the state machine's apply loop: the same fields and the same
    `BadCommand` checks, as a plain tuple; a well-formed PUT (the common command) is
    parsed without building a `Command`.

    The fast path, `raftx.kv.kvcodec.decode_put`, answers only for a `bytes`
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
    if op == PUT or op == PUT_LEASE:
        if type(args[0]) is not bytes:
            raise BadCommand(f"value must be bytes, got {type(args[0]).__name__}")
        if op == PUT_LEASE:
            _u63(args[1], "lease_id")
    elif op == TXN:
        _check_txn(*args)
    elif op in _LEASE_OPS:
        if key:
            raise BadCommand("lease commands have an empty key")
        if op == LEASE_GRANT:
            if type(args[0]) is not int or not 1 <= args[0] <= MAX_TTL_MS:
                raise BadCommand(f"a lease TTL is 1..{MAX_TTL_MS} ms, not {args[0]!r:.50}")
        else:
            for a in args:
                _u63(a, "lease id / version")
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
