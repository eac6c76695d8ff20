"""The TXN_KV linearizability model: small known-linearizable and known-not histories,
and a live history of concurrent transactions against an in-process cluster."""

from __future__ import annotations

import asyncio
import doctest
import math
import random

import pytest

from raftx.kv import Compare, Op
from raftx.testing.linearizability import TXN_KV, UNKNOWN, History, Operation, check_operations
from raftx.testing.linearizability import txn_model

_INC = ("txn", (("mod_revision", "c", "==", 0),), (("put", "c", "1"),), (("get", "c"),))


def _ops(*specs: tuple) -> list[Operation]:
    return [Operation(i, inp, call, out, ret) for i, (inp, call, out, ret) in enumerate(specs)]


def test_module_examples() -> None:
    assert doctest.testmod(txn_model).failed == 0


@pytest.mark.parametrize("name, ops, verdict", [
    # two concurrent create-if-absent transactions: exactly one may win
    ("one_winner", _ops((_INC, 0, (True, (1,)), 3), (_INC, 1, (False, (("1", 1),)), 4)), "ok"),
    ("two_winners", _ops((_INC, 0, (True, (1,)), 3), (_INC, 1, (True, (1,)), 4)), "illegal"),
    # a txn that saw the put must come after it; a later read may not miss its write
    ("order", _ops((("put", "a", "x"), 0, 1, 1), (("txn", (("value", "a", "==", "x"),), (("put", "b", "y"),), ()),
                                                     2, (True, (2,)), 3), (("get", "b"), 4, "y", 5)), "ok"),
    ("stale_read", _ops((("put", "a", "x"), 0, 1, 1), (("txn", (("value", "a", "==", "x"),),
                                                               (("put", "b", "y"),), ()), 2, (True, (2,)), 3),
                        (("get", "b"), 4, None, 5)), "illegal"),
    # multi-key atomicity: a reader sees both writes of a txn or neither
    ("atomic", _ops((("txn", (), (("put", "a", "1"), ("put", "b", "1")), ()), 0, (True, (1, 2)), 10),
                    (("txn", (), (("get", "a"), ("get", "b")), ()), 1, (True, (("1", 1), ("1", 2))), 2)), "ok"),
    ("torn", _ops((("txn", (), (("put", "a", "1"), ("put", "b", "1")), ()), 0, (True, (1, 2)), 10),
                  (("txn", (), (("get", "a"), ("get", "b")), ()), 1, (True, (("1", 1), None)), 2)), "illegal"),
    # revisions must be consecutive and match the order
    ("revisions", _ops((("put", "a", "1"), 0, 2, 1), (("put", "b", "1"), 2, 1, 3)), "illegal"),
    ("unknown", _ops((("put", "a", "1"), 0, UNKNOWN, math.inf), (("get", "a"), 1, "1", 2)), "ok"),
    ("delete_absent", _ops((("delete", "a"), 0, 0, 1), (("put", "a", "1"), 2, 1, 3), (("delete", "a"), 4, 2, 5)),
     "ok"),
])
def test_known_histories(name: str, ops: list[Operation], verdict: str) -> None:
    assert check_operations(TXN_KV, ops).verdict.value == verdict, name


async def test_live_concurrent_transactions_are_linearizable() -> None:
    from tests.kv.kvkit import KVCluster

    history = History()
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    async with KVCluster(3) as cl:
        clients = [cl.client() for _ in range(3)]

        async def worker(n: int) -> None:
            kv = clients[n]
            for _ in range(8):
                key = rng.choice("ab")
                got = await kv.get_with_revision(key)
                rev = 0 if got is None else got[1]
                inp = ("txn", (("mod_revision", key, "==", rev),), (("put", key, f"{n}"), ("get", "a")),
                       (("get", key),))
                h = history.invoke(n, inp, time=loop.time())
                ok, resp = await kv.txn(compare=[Compare.mod_revision(key) == rev],
                                        success=[Op.put(key, f"{n}"), Op.get("a")], failure=[Op.get(key)])
                out = (ok, tuple(None if r is None else (r[0].decode(), r[1]) if isinstance(r, tuple) else r
                                 for r in resp))
                history.complete(h, out, time=loop.time())

        await asyncio.gather(*(worker(n) for n in range(3)))
        for kv in clients:
            await kv.close()
    result = history.check(TXN_KV, timeout=60)
    assert result.verdict.value == "ok", result.describe()
