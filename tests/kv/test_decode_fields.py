"""`decode_fields` (the apply loop's decoder) agrees with `decode` on every input:
the same fields for good commands, `BadCommand` for the same bad ones."""

from __future__ import annotations

import msgpack
import pytest

from raftx.errors import BadCommand
from raftx.kv import commands as c

_U64_MAX = 2**64 - 1

GOOD = [
    c.encode_put("k", b"v"),
    c.encode_put("k", b"", client_id=_U64_MAX, serial=_U64_MAX, acked=_U64_MAX),
    c.encode_put(b"k" * c.MAX_KEY_BYTES, b"v" * 1000, client_id=7, serial=3, acked=2),
    c.encode_delete("k", client_id=1, serial=1, acked=1),
    c.encode_cas("k", None, b"n", client_id=7, serial=3, acked=2),
    c.encode_get("k"),
]

BAD = [
    b"", b"\xc1", msgpack.packb([True, 0, 0, 0, b"k", b"v"]),  # op true is not PUT
    msgpack.packb([1, -1, 0, 0, b"k", b"v"]), msgpack.packb([1, 0, -1, 0, b"k", b"v"]),
    msgpack.packb([1, 0, 0, -1, b"k", b"v"]), msgpack.packb([1, False, 0, 0, b"k", b"v"]),
    msgpack.packb([1, 0, 0, 0, "k", b"v"]), msgpack.packb([1, 0, 0, 0, b"k", "v"]),
    msgpack.packb([1, 0, 0, 0, b"k", None]), msgpack.packb([1, 0, 0, 0, b"k" * (c.MAX_KEY_BYTES + 1), b"v"]),
    msgpack.packb([1, 0.0, 0, 0, b"k", b"v"]), msgpack.packb([2, 0, 0, 0, b"k", b"v"]),
    msgpack.packb([1, 0, 0, 0, b"k"]), msgpack.packb((1, 0, 0, 0, b"k", b"v", b"x")),
]


@pytest.mark.parametrize("payload", GOOD)
def test_good_commands_decode_to_the_same_fields(payload: bytes) -> None:
    assert c.decode_fields(payload) == tuple(c.decode(payload))


@pytest.mark.parametrize("payload", BAD)
def test_bad_commands_are_refused_by_both(payload: bytes) -> None:
    with pytest.raises(BadCommand):
        c.decode(payload)
    with pytest.raises(BadCommand):
        c.decode_fields(payload)


def test_a_put_value_over_the_limit_is_refused_by_both() -> None:
    payload = msgpack.packb([c.PUT, 0, 0, 0, b"k", b"v" * (c.MAX_VALUE_BYTES + 1)])
    with pytest.raises(BadCommand):
        c.decode(payload)
    with pytest.raises(BadCommand):
        c.decode_fields(payload)
