"""`KVClient.get(..., lease=True)`: a linearizable read from the leader's read lease."""

from __future__ import annotations

import msgpack
import pytest

from raftx.kv import protocol as P
from raftx.errors import BadCommand

from tests.kv.kvkit import KVCluster


async def test_lease_gets_see_every_completed_put() -> None:
    async with KVCluster() as cl, cl.client() as kv:
        for i in range(30):
            await kv.put(f"k{i}", str(i))
            assert await kv.get(f"k{i}", lease=True) == str(i).encode()
        assert await kv.get("absent", lease=True) is None


def test_the_lease_flag_travels_as_an_optional_third_element() -> None:
    assert P.decode_read_lease(P.encode_read(True, [b"k"], lease=True)) == (True, [b"k"], True)
    assert P.decode_read_lease(P.encode_read(True, [b"k"])) == (True, [b"k"], False)
    assert P.decode_read(P.encode_read(True, [b"k"], lease=True)) == (True, [b"k"])
    with pytest.raises(BadCommand):
        P.decode_read_lease(msgpack.packb([True, [b"k"], "yes"]))
