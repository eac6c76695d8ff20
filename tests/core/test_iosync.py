"""``_core.iosync.SyncAhead`` (both twins) and the I/O thread that uses it.

The sync ahead may claim an append durable only after an ``fdatasync`` of its file
that started after the append was armed; a failed sync is a failure (R10), never a
silent "not covered"; a file closed meanwhile (EBADF) covers nothing.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from raftx.storage import io_thread
from raftx.storage.fileio import FileIO

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def bell() -> Any:
    fd = os.eventfd(0)
    yield fd
    os.close(fd)


def _file(tmp_path: Path) -> int:
    return os.open(tmp_path / "seg", os.O_CREAT | os.O_RDWR, 0o600)


def test_wait_syncs_the_armed_file_once(core: SimpleNamespace, tmp_path: Path, bell: int) -> None:
    ahead = core.iosync.SyncAhead()
    fd = _file(tmp_path)
    os.eventfd_write(bell, 1)
    assert ahead.wait(bell)[:3] == (-1, 0, 0)  # nothing armed: nothing synced
    os.pwrite(fd, b"x" * 100, 0)
    ahead.arm(1, fd)
    os.eventfd_write(bell, 1)
    got_fd, seq, err, took = ahead.wait(bell)
    assert (got_fd, seq, err) == (fd, 1, 0) and took > 0 and ahead.done == 1
    os.eventfd_write(bell, 1)
    assert ahead.wait(bell)[:3] == (-1, 0, 0)  # append 1 is synced already
    ahead.synced(3)  # a round synced up to 3: an armed 2 needs no sync ahead
    ahead.arm(2, fd)
    os.eventfd_write(bell, 1)
    assert ahead.wait(bell)[:3] == (-1, 0, 0)
    os.close(fd)


def test_a_failed_sync_is_reported_and_covers_nothing(core: SimpleNamespace, bell: int) -> None:
    ahead = core.iosync.SyncAhead()
    r, w = os.pipe()  # fdatasync of a pipe fails with EINVAL
    ahead.arm(1, r)
    os.eventfd_write(bell, 1)
    fd, seq, err, _ = ahead.wait(bell)
    assert (fd, seq, err) == (r, 1, errno.EINVAL) and ahead.done == 0
    os.close(r)
    os.close(w)


def test_a_closed_file_covers_nothing(core: SimpleNamespace, tmp_path: Path, bell: int) -> None:
    ahead = core.iosync.SyncAhead()
    fd = _file(tmp_path)
    ahead.arm(1, fd)
    os.close(fd)
    os.eventfd_write(bell, 1)
    assert ahead.wait(bell)[:3] == (-1, 0, 0)


class _Owner:
    def __init__(self) -> None:
        self.reports: list[tuple[int, BaseException | None]] = []
        self.changed = asyncio.Event()

    def _synced(self, seq: int, error: BaseException | None) -> None:
        self.reports.append((seq, error))
        self.changed.set()

    async def report(self, n: int) -> tuple[int, BaseException | None]:
        while len(self.reports) < n:
            self.changed.clear()
            await self.changed.wait()
        return self.reports[n - 1]


def test_the_io_thread_syncs_ahead_and_not_twice(tmp_path: Path) -> None:
    async def main() -> None:
        owner = _Owner()
        iot = io_thread.IOThread(owner, FileIO(), asyncio.get_running_loop(), "test-io")
        assert iot.ahead is not None
        fd = _file(tmp_path)
        before = io_thread.synced_ahead()
        for seq in range(1, 6):  # the thread is waiting on its doorbell between two of them
            os.pwrite(fd, b"x" * 10, seq * 10)
            iot.sync(seq, fd)
            assert await owner.report(seq) == (seq, None)
        assert io_thread.synced_ahead() > before  # at least one went ahead
        assert iot.fsyncs == 5  # one fdatasync per append: a covered one is not synced again
        iot.stop()
        os.close(fd)

    asyncio.run(main())


def test_a_failed_sync_ahead_fails_the_store_for_good(tmp_path: Path) -> None:
    async def main() -> None:
        owner = _Owner()
        iot = io_thread.IOThread(owner, FileIO(), asyncio.get_running_loop(), "test-io")
        r, w = os.pipe()
        iot.sync(1, r)  # EINVAL, ahead or in the round
        seq, err = await owner.report(1)
        assert seq == 1 and isinstance(err, OSError) and err.errno == errno.EINVAL
        fd = _file(tmp_path)
        iot.sync(2, fd)  # R10: nothing is durable after a failed fdatasync
        seq, err = await owner.report(2)
        assert seq == 2 and err is not None
        iot.stop()
        for f in (r, w, fd):
            os.close(f)

    asyncio.run(main())
