"""MemRouter: the in-process network and its fault controls."""

from __future__ import annotations

import asyncio
import random

import pytest
from netkit import echo

from raftx.errors import ConfigError, NetworkError, RemoteError, Timeout, Unreachable
from raftx.network import MemRouter


class Recorder:
    """A handler that records (sender, payload) of every request it runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bytes]] = []

    async def __call__(self, sender_id: int, method: str, payload: memoryview) -> bytes:
        self.calls.append((sender_id, bytes(payload)))
        return await echo(sender_id, method, payload)


@pytest.fixture
async def router():
    r = MemRouter(random.Random(1))
    yield r
    await r.close()


def cluster(router: MemRouter, n: int = 3) -> dict[int, Recorder]:
    nodes = {i: Recorder() for i in range(1, n + 1)}
    for i, h in nodes.items():
        router.register(i, h)
    return nodes


async def test_round_trip_and_remote_error(router: MemRouter) -> None:
    nodes = cluster(router)
    async with asyncio.timeout(5):
        async with router.client(1, 2) as client:
            assert await client.call("echo", b"hi") == b"hi"
            assert await client.call("whoami") == b"1"
            with pytest.raises(RemoteError, match="KeyError") as info:
                await client.call("fail", b"k")
            assert info.value.remote_type == "KeyError"
        with pytest.raises(NetworkError, match="closed"):
            await client.call("echo")
    assert [s for s, _ in nodes[2].calls] == [1, 1, 1]


async def test_payload_is_copied_on_send(router: MemRouter) -> None:
    seen: list[memoryview] = []

    async def keep(sender_id: int, method: str, payload: memoryview) -> bytes:
        seen.append(payload)
        return b""

    router.register(2, keep)
    buf = bytearray(b"abc")
    async with asyncio.timeout(5):
        await router.call(1, 2, "keep", buf)
    buf[0] = ord("X")
    assert bytes(seen[0]) == b"abc"


async def test_unregistered_target_is_unreachable(router: MemRouter) -> None:
    nodes = cluster(router)
    router.unregister(3)
    async with asyncio.timeout(5):
        with pytest.raises(Unreachable):
            await router.call(1, 3, "echo")
        router.register(3, nodes[3])  # restart
        assert await router.call(1, 3, "echo", b"back") == b"back"


async def test_two_way_partition_blocks_both_directions_and_heals(router: MemRouter) -> None:
    nodes = cluster(router)
    router.partition({1}, {2})
    async with asyncio.timeout(5):
        with pytest.raises(Unreachable, match="partition"):
            await router.call(1, 2, "echo")
        with pytest.raises(Unreachable, match="partition"):
            await router.call(2, 1, "echo")
        assert await router.call(1, 3, "echo", b"x") == b"x"
        assert nodes[1].calls == [] and nodes[2].calls == []
        router.heal()
        assert await router.call(1, 2, "echo", b"y") == b"y"


async def test_one_way_partition(router: MemRouter) -> None:
    nodes = cluster(router)
    router.partition({1}, {2}, one_way=True)  # 1 -> 2 is cut, 2 -> 1 is not
    async with asyncio.timeout(5):
        with pytest.raises(Unreachable):
            await router.call(1, 2, "echo", b"a")
        assert nodes[2].calls == []  # the request never arrived
        # 2 -> 1 arrives and runs, but the response (1 -> 2) is lost: outcome unknown.
        with pytest.raises(NetworkError, match="response"):
            await router.call(2, 1, "echo", b"b")
        assert nodes[1].calls == [(2, b"b")]
    assert router.stats.blocked == 2


async def test_partition_default_other_side_is_everyone_else(router: MemRouter) -> None:
    cluster(router, 4)
    router.partition({1, 2})
    async with asyncio.timeout(5):
        assert await router.call(1, 2, "echo", b"in") == b"in"
        assert await router.call(3, 4, "echo", b"in") == b"in"
        for a, b in ((1, 3), (4, 2)):
            with pytest.raises(Unreachable):
                await router.call(a, b, "echo")


async def test_isolate_applies_to_later_nodes_until_heal(router: MemRouter) -> None:
    cluster(router, 2)
    router.isolate(1)
    router.register(5, echo)
    async with asyncio.timeout(5):
        for a, b in ((1, 2), (2, 1), (1, 5), (5, 1)):
            with pytest.raises(Unreachable):
                await router.call(a, b, "echo")
        assert await router.call(2, 5, "echo", b"ok") == b"ok"
        router.heal()
        assert await router.call(5, 1, "echo", b"ok") == b"ok"


async def outcomes(seed: int, n: int = 300) -> tuple[list[str], int, int]:
    router = MemRouter(random.Random(seed))
    nodes = cluster(router, 2)
    router.set_link(1, 2, drop=0.3)
    router.set_link(2, 1, drop=0.2)
    result = []
    async with asyncio.timeout(10):
        for i in range(n):
            try:
                await router.call(1, 2, "echo", str(i).encode())
                result.append("ok")
            except Unreachable:
                result.append("request-lost")
            except NetworkError:
                result.append("response-lost")
    await router.close()
    return result, len(nodes[2].calls), router.stats.dropped


async def test_drop_is_deterministic_given_the_seed() -> None:
    a, handled_a, dropped_a = await outcomes(11)
    b, handled_b, _ = await outcomes(11)
    c, _, _ = await outcomes(12)
    assert a == b and handled_a == handled_b
    assert a != c
    counts = {k: a.count(k) for k in ("ok", "request-lost", "response-lost")}
    assert all(counts.values())  # all three outcomes occur with these rates
    # The handler ran exactly for the requests that were not lost on the way in.
    assert handled_a == counts["ok"] + counts["response-lost"]
    assert dropped_a == counts["request-lost"] + counts["response-lost"]


async def test_delay_lets_a_later_message_on_another_link_overtake(router: MemRouter) -> None:
    nodes = cluster(router)
    router.set_link(1, 3, delay=0.05)
    async with asyncio.timeout(5):
        await asyncio.gather(router.call(1, 3, "echo", b"slow"), router.call(2, 3, "echo", b"fast"))
    assert nodes[3].calls == [(2, b"fast"), (1, b"slow")]


async def test_delay_longer_than_timeout_is_a_timeout_and_the_handler_still_runs(router: MemRouter) -> None:
    nodes = cluster(router)
    router.set_link(2, 1, delay=0.05)  # the response is slow
    async with asyncio.timeout(5):
        with pytest.raises(Timeout):
            await router.call(1, 2, "echo", b"late", timeout=0.01)
        # The request was delivered even though the caller gave up.
        assert nodes[2].calls == [(1, b"late")]


@pytest.mark.parametrize("ordered", [True, False])
async def test_ordered_links_deliver_in_send_order_despite_random_delays(ordered: bool) -> None:
    router = MemRouter(random.Random(5), ordered=ordered, delay=(0.0, 0.01))
    nodes = cluster(router, 2)
    async with asyncio.timeout(10):
        await asyncio.gather(*(router.call(1, 2, "echo", bytes([i])) for i in range(40)))
    await router.close()
    received = [p[0] for _, p in nodes[2].calls]
    assert sorted(received) == list(range(40))
    assert (received == list(range(40))) is ordered  # unordered: random delays reorder them


async def test_lost_request_does_not_let_later_ones_overtake_earlier_ones(spawn) -> None:
    router = MemRouter(random.Random(3))
    nodes = cluster(router, 2)
    gate = asyncio.Event()

    async def slow_first(sender_id: int, method: str, payload: memoryview) -> bytes:
        if payload == b"0":
            await gate.wait()
        return await nodes[2](sender_id, method, payload)

    router.register(2, slow_first)
    async with asyncio.timeout(5):
        first = spawn(router.call(1, 2, "echo", b"0"))
        await asyncio.sleep(0)
        router.partition({1}, {2}, one_way=True)
        with pytest.raises(Unreachable):
            await router.call(1, 2, "echo", b"1")  # lost
        router.heal()
        third = spawn(router.call(1, 2, "echo", b"2"))
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(first, third)
    assert [p for _, p in nodes[2].calls] == [b"0", b"2"]
    await router.close()


@pytest.mark.parametrize("kw", [{"drop": 1.5}, {"drop": -0.1}, {"delay": -1}, {"delay": (0.2, 0.1)}])
def test_bad_fault_settings_are_config_errors(kw: dict) -> None:
    with pytest.raises(ConfigError):
        MemRouter(**kw)
