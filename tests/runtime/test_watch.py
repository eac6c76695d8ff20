"""`WatchSender.send_lazy`: values built on read or for a waiting receiver, never lost."""

from __future__ import annotations

import asyncio

import pytest

from raftx.errors import Fatal
from raftx.runtime.watch import WatchSender

pytestmark = pytest.mark.timeout(30)


async def test_a_lazy_value_is_built_only_when_read() -> None:
    builds: list[int] = []
    state = {"x": 1}

    def build() -> int:
        builds.append(state["x"])
        return state["x"]

    tx: WatchSender[int] = WatchSender(0)
    rx = tx.subscribe()
    for x in range(1, 6):
        state["x"] = x
        tx.send_lazy(build)
    assert builds == []
    assert rx.has_changed()
    assert rx.borrow_and_update() == 5
    assert builds == [5]
    assert not rx.has_changed()


async def test_an_unchanged_lazy_value_does_not_count_as_a_change() -> None:
    tx: WatchSender[int] = WatchSender(7)
    rx = tx.subscribe()
    tx.send_lazy(lambda: 7)
    assert not rx.has_changed()
    assert tx.value == 7


async def test_a_waiting_receiver_is_woken_by_a_lazy_send() -> None:
    tx: WatchSender[int] = WatchSender(0)
    rx = tx.subscribe()
    waiter = asyncio.ensure_future(rx.changed())
    await asyncio.sleep(0)  # the receiver is now waiting
    tx.send_lazy(lambda: 0)  # no change: still waiting
    await asyncio.sleep(0)
    assert not waiter.done()
    tx.send_lazy(lambda: 3)
    await asyncio.wait_for(waiter, 5)
    assert rx.borrow() == 3


async def test_a_pending_lazy_value_is_seen_before_close_raises() -> None:
    tx: WatchSender[int] = WatchSender(0)
    rx = tx.subscribe()
    tx.send_lazy(lambda: 9)
    tx.close()
    await asyncio.wait_for(rx.changed(), 5)
    assert rx.borrow() == 9
    with pytest.raises(Fatal):
        await asyncio.wait_for(rx.changed(), 5)


async def test_send_discards_a_pending_lazy_value() -> None:
    tx: WatchSender[int] = WatchSender(0)
    rx = tx.subscribe()
    tx.send_lazy(lambda: 1)
    tx.send(2)
    assert rx.borrow_and_update() == 2
    assert not rx.has_changed()
