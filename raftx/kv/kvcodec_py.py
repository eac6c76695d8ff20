"""The key-value service's PUT command bytes, both ways (pure-Python twin, the spec).

`raftx.kv.commands` defines the command format: one msgpack array
``[op, client_id, serial, acked, key, *args]``. A PUT is the command of almost every
entry, so its bytes have a fast path here: `encode_put` on the client side and
`decode_put` in the state machine's apply loop (run by every node for every entry).
Both answer ``None`` for anything outside the fast path; the caller then takes its
full, checked path (which raises the precise `raftx.errors.BadCommand`). Neither
function ever raises for bad input.

The bytes of ``PUT(client_id, serial, acked, key, value)`` are exactly those of
``msgpack.Packer(use_bin_type=True).pack([1, client_id, serial, acked, key, value])``,
i.e. msgpack's minimal encodings::

    0x96                        fixarray of 6
    0x01                        op = PUT (positive fixint)
    uint  client_id, serial, acked, each one of
          0x00-0x7f             positive fixint       (v < 2**7)
          0xcc + 1 byte         uint8                 (v < 2**8)
          0xcd + 2 bytes        uint16, big-endian    (v < 2**16)
          0xce + 4 bytes        uint32, big-endian    (v < 2**32)
          0xcf + 8 bytes        uint64, big-endian    (v < 2**64)
    bin   key, value, each one of
          0xc4 + 1-byte length  bin8                  (n < 2**8)
          0xc5 + 2-byte length  bin16, big-endian     (n < 2**16)
          0xc6 + 4-byte length  bin32, big-endian     (n < 2**32)
          followed by the n bytes

`decode_put` accepts exactly the PUTs that `raftx.kv.commands.decode` accepts, in
any valid msgpack encoding (not only the minimal one above): an array16/array32
header of 6, an op of 1 or a non-negative session int in a wider or signed
encoding (int8-int64, 0xd0-0xd3, with a non-negative value). It refuses (``None``)
anything ``decode`` refuses or decodes as another command: trailing bytes,
truncation, negative ints, bool/nil/float/str/ext in any slot, a key over
`MAX_KEY_BYTES` or a value over `MAX_VALUE_BYTES`, an op other than 1, an array of
another length. Only ``bytes`` payloads are decoded (exactly `bytes`, the type
the log hands to the state machine); any other type gives ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

__all__ = ["MAX_KEY_BYTES", "MAX_VALUE_BYTES", "decode_put", "encode_put"]

#: Longest key, in bytes (`raftx.kv.commands.MAX_KEY_BYTES`).
MAX_KEY_BYTES = 64 * 1024
#: Longest value, in bytes (`raftx.kv.commands.MAX_VALUE_BYTES`; an entry payload is
#: at most 64 MiB, this leaves room for framing).
MAX_VALUE_BYTES = 32 * 1024 * 1024

_PUT = 1  # raftx.kv.commands.PUT
_U64 = 2**64

_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
_unpackb: Callable[[Any], Any] = msgpack.unpackb


def encode_put(key: object, value: object, client_id: object, serial: object, acked: object) -> bytes | None:
    """The bytes of ``[PUT, client_id, serial, acked, key, value]``, or None.

    The fast path takes exactly `bytes` key and value within `MAX_KEY_BYTES` /
    `MAX_VALUE_BYTES` and exactly `int` (not bool) session fields in
    ``0 .. 2**64-1``; anything else (str keys included) is None, for the caller's
    checked path.
    """
    if (type(key) is bytes and type(value) is bytes and type(client_id) is int and type(serial) is int
            and type(acked) is int and len(key) <= MAX_KEY_BYTES and len(value) <= MAX_VALUE_BYTES
            and 0 <= client_id < _U64 and 0 <= serial < _U64 and 0 <= acked < _U64):
        return _pack([_PUT, client_id, serial, acked, key, value])
    return None


def decode_put(payload: object) -> tuple[int, int, int, bytes, bytes] | None:
    """``(client_id, serial, acked, key, value)`` of a well-formed PUT, or None.

    None for a payload that is not exactly `bytes` and for any bytes that
    `raftx.kv.commands.decode` refuses or decodes as another operation (see the
    module docstring).
    """
    if type(payload) is not bytes:
        return None
    try:
        # msgpack's default limits are bounded by the payload's length; the field
        # checks below then apply decode's limits.
        obj = _unpackb(payload)
    except Exception:  # msgpack raises several unrelated types on bad input
        return None
    if type(obj) is not list or len(obj) != 6:
        return None
    op, client_id, serial, acked, key, value = obj
    # msgpack decodes no int above 2**64-1, so "in 0..2**64-1" is "not negative",
    # and an OR of ints is negative iff one of them is.
    if (type(op) is int and op == _PUT and type(client_id) is int and type(serial) is int
            and type(acked) is int and client_id | serial | acked >= 0
            and type(key) is bytes and type(value) is bytes
            and len(key) <= MAX_KEY_BYTES and len(value) <= MAX_VALUE_BYTES):
        return client_id, serial, acked, key, value
    return None
