"""SegmentedLogStore's I/O thread: group commit across concurrent appends, ordering
(R14), readable-before-durable, sticky failure (R10), thread lifetime.

An fdatasync held at a gate (a `FaultInjector` whose fdatasync waits for a
`threading.Event`) lets a test submit work while a round is in progress.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from raftx.errors import StorageError
from raftx.storage import SegmentedLogStore
from raftx.storage.fileio import FileIO
from raftx.storage.segment import HARDSTATE_NAME
from raftx.testing import FaultInjector
from raftx.types import Entry, LogId, Vote

OPTS = dict(segment_bytes=1 << 20, cluster_name="c", node_id=1)
WAIT = 30.0  # bound on every wait for the I/O thread


class GatedIO(FaultInjector):
    """fdatasync waits for ``gate`` (open by default) and says when it got there."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def fdatasync(self, fd: int) -> None:
        self._gate("fdatasync")  # counted (and failed, if armed) before the wait
        self.entered.set()
        if not self.gate.wait(WAIT):
            raise OSError(errno.ETIMEDOUT, "test gate never opened")
        FileIO.fdatasync(self, fd)

    async def hold_next_sync(self) -> None:
        """Close the gate; return once the I/O thread waits at it."""
        self.gate.clear()
        self.entered.clear()

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, WAIT), "the I/O thread never reached fdatasync"


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(LogId(term, i), b"v%d" % i) for i in range(lo, hi)]


class Acks:
    """Append callbacks that record ``(name, error, thread id)`` and can be awaited."""

    def __init__(self) -> None:
        self.fired: list[tuple[str, BaseException | None, int]] = []
        self._want: dict[str, asyncio.Future[None]] = {}

    def cb(self, name: str) -> Callable[[BaseException | None], None]:
        fut = asyncio.get_running_loop().create_future()
        self._want[name] = fut

        def f(err: BaseException | None) -> None:
            self.fired.append((name, err, threading.get_ident()))
            fut.set_result(None)

        return f

    async def all(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self._want.values()), WAIT)

    def names(self) -> list[str]:
        return [n for n, _, _ in self.fired]


def syncs(io: FaultInjector, start: int) -> list[tuple[int, str, str]]:
    return [t for t in io.ops_since(start) if t[1] == "fdatasync"]


async def test_appends_during_an_fsync_share_the_next_round(tmp_path: Path) -> None:
    io = GatedIO()
    log = await SegmentedLogStore.open(tmp_path, io=io, **OPTS)
    acks = Acks()
    start = io.ops
    await io.hold_next_sync()
    await log.append(entries(0, 1), acks.cb("a"))
    await io.wait_entered()  # round 1 (a) is inside fdatasync
    for k, name in enumerate("bcd", start=1):
        await log.append(entries(k, k + 1), acks.cb(name))
    assert acks.fired == []  # nothing is durable yet
    io.gate.set()
    await acks.all()
    assert acks.names() == ["a", "b", "c", "d"]
    assert all(err is None for _, err, _ in acks.fired)
    assert len(syncs(io, start)) == 2  # a alone, then b, c, d together
    await log.close()


async def test_callbacks_run_on_the_loop_thread(tmp_path: Path) -> None:
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    acks = Acks()
    for i in range(5):
        await log.append(entries(i, i + 1), acks.cb(str(i)))
    await acks.all()
    assert {tid for _, _, tid in acks.fired} == {threading.get_ident()}
    await log.close()


async def test_entries_are_readable_before_they_are_durable(tmp_path: Path) -> None:
    io = GatedIO()
    log = await SegmentedLogStore.open(tmp_path, io=io, **OPTS)
    acks = Acks()
    await io.hold_next_sync()
    await log.append(entries(0, 10), acks.cb("a"))
    await io.wait_entered()
    assert await log.try_get_log_entries(0, 10) == entries(0, 10)
    assert (await log.get_log_state()).last_log_id == LogId(1, 9)
    assert acks.fired == []
    io.gate.set()
    await acks.all()
    await log.close()


async def test_vote_is_saved_after_pending_appends_and_before_later_ones(tmp_path: Path) -> None:
    """R14 both ways: the vote waits for the fdatasync of an append queued before it,
    and an append submitted after the vote is written after the vote file is replaced."""
    io = GatedIO()
    log = await SegmentedLogStore.open(tmp_path, io=io, **OPTS)
    acks = Acks()
    await io.hold_next_sync()
    await log.append(entries(0, 1), acks.cb("first"))
    await io.wait_entered()  # the I/O thread is busy with "first": what follows queues up
    start = io.ops
    await log.append(entries(1, 3), acks.cb("early"))
    vote = asyncio.ensure_future(log.save_vote(Vote(2, 1)))
    late = asyncio.ensure_future(log.append(entries(3, 5), acks.cb("late")))
    await asyncio.sleep(0)  # let both reach the store (a turn of the loop, not a timing wait)
    assert not vote.done() and acks.fired == []
    io.gate.set()
    await asyncio.wait_for(asyncio.gather(vote, late), WAIT)
    await acks.all()
    kinds = [(name, detail) for _, name, detail in io.ops_since(start)]
    writes = [k for k, (n, d) in enumerate(kinds) if n == "pwrite" and not d.endswith("@0")]
    hard_rename = next(k for k, (n, d) in enumerate(kinds) if n == "rename" and HARDSTATE_NAME in d)
    early_write, late_write = writes[0], writes[-1]
    assert any(n == "fdatasync" for n, _ in kinds[early_write:hard_rename]), kinds
    assert hard_rename < late_write, kinds
    assert acks.names() == ["first", "early", "late"]
    assert await log.read_vote() == Vote(2, 1)
    await log.close()


async def test_failed_round_fails_every_append_in_it_and_the_store(tmp_path: Path) -> None:
    io = GatedIO()
    log = await SegmentedLogStore.open(tmp_path, io=io, **OPTS)
    first = Acks()
    await log.append(entries(0, 1), first.cb("0"))
    await first.all()  # its round is over: the held sync below is a's
    acks = Acks()
    await io.hold_next_sync()
    await log.append(entries(1, 2), acks.cb("a"))
    await io.wait_entered()
    await log.append(entries(2, 3), acks.cb("b"))
    await log.append(entries(3, 4), acks.cb("c"))
    io.fail_next("fdatasync")  # the next round's (b, c) fdatasync fails
    io.gate.set()
    await acks.all()
    errs = {name: err for name, err, _ in acks.fired}
    assert errs["a"] is None
    assert isinstance(errs["b"], StorageError) and errs["b"] is errs["c"]
    assert log.failed
    with pytest.raises(StorageError):
        await log.append(entries(4, 5))
    with pytest.raises(StorageError):
        await log.save_vote(Vote(3, 1))
    await log.close()


async def test_append_after_failed_fsync_never_syncs_again(tmp_path: Path) -> None:
    """R10: once an fdatasync failed, the I/O thread does not fdatasync again."""
    io = FaultInjector()
    log = await SegmentedLogStore.open(tmp_path, io=io, **OPTS)
    acks = Acks()
    io.fail_next("fdatasync")
    await log.append(entries(0, 1), acks.cb("a"))
    await acks.all()
    assert isinstance(acks.fired[0][1], StorageError)
    start = io.ops
    with pytest.raises(StorageError):
        await log.truncate(0)
    assert syncs(io, start) == []
    await log.close()


def _io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("raftx-log-io:")]


async def test_io_thread_ends_on_close(tmp_path: Path) -> None:
    log = await SegmentedLogStore.open(tmp_path / "closed", **OPTS)
    await log.append(entries(0, 2))
    thread = next(t for t in _io_threads() if t.name.endswith(":closed"))
    await log.close()
    await asyncio.to_thread(thread.join, WAIT)
    assert not thread.is_alive()


async def test_io_thread_ends_when_the_store_is_abandoned(tmp_path: Path) -> None:
    log = await SegmentedLogStore.open(tmp_path / "abandoned", **OPTS)
    await log.append(entries(0, 2))
    thread = next(t for t in _io_threads() if t.name.endswith(":abandoned"))
    del log
    gc.collect()  # the finalizer schedules the stop on this loop, which runs while we await
    await asyncio.to_thread(thread.join, WAIT)
    assert not thread.is_alive()
