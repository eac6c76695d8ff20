"""`raftx.testing.simfs.SimFS`: the power-loss model, and the real store over it."""

from __future__ import annotations

import errno
import os

import pytest

from raftx.errors import StorageError
from raftx.storage import SegmentedLogStore
from raftx.testing import SimulatedCrash
from raftx.testing.simfs import SECTOR_SIZE, SimFS
from raftx.types import Entry, LogId

RW = os.O_RDWR | os.O_CREAT


def _file(fs: SimFS, path: str, data: bytes, *, sync: bool = True, sync_dir: bool = True) -> int:
    fs.makedirs(os.path.dirname(path))
    fd = fs.open(path, RW)
    fs.pwrite(fd, data, 0)
    if sync:
        fs.fdatasync(fd)
    if sync_dir:
        fs.fsync_dir(os.path.dirname(path))
    return fd


def test_unsynced_write_is_lost_synced_survives() -> None:
    fs = SimFS(1)
    fd = _file(fs, "/d/a", b"durable")
    fs.pwrite(fd, b"-unsynced", 7)
    assert fs.files()["/d/a"] == b"durable-unsynced"
    assert fs.power_loss(kept=0, torn=None) == {"/d/a": b"durable"}


def test_directory_entries_need_the_directory_fsync() -> None:
    fs = SimFS(2)
    _file(fs, "/e/a", b"a", sync_dir=False)  # file synced, its name not
    _file(fs, "/d/b", b"b")
    fs.rename("/d/b", "/d/c")  # not durable
    fs.unlink("/d/c")
    assert fs.listdir("/d") == [] and fs.listdir("/e") == ["a"]
    assert fs.power_loss(kept=0, torn=None) == {"/d/b": b"b"}
    fs.rename("/d/b", "/d/c")
    fs.fsync_dir("/d")
    assert fs.power_loss() == {"/d/c": b"b"}


def test_tear_zeroes_one_sector_and_keeps_the_size() -> None:
    fs = SimFS(3)
    fd = _file(fs, "/d/a", b"h" * 100)
    fs.pwrite(fd, b"x" * 2000, 100)
    got = fs.power_loss(kept=0, torn="sector")["/d/a"]
    assert len(got) == 2100 and got[:100] == b"h" * 100
    zero = [s for s in range(0, 2100, SECTOR_SIZE) if got[max(s, 100) : s + SECTOR_SIZE].count(0) == len(got[max(s, 100) : s + SECTOR_SIZE])]
    assert len(zero) == 1
    assert got.count(0) == len(got[max(zero[0], 100) : zero[0] + SECTOR_SIZE])


def test_tail_tear_zeroes_from_a_sector_boundary() -> None:
    fs = SimFS(4)
    fd = _file(fs, "/d/a", b"")
    fs.pwrite(fd, b"y" * 3000, 0)
    got = fs.power_loss(kept=0, torn="tail")["/d/a"]
    assert len(got) == 3000
    cut = got.index(0)
    assert cut % SECTOR_SIZE == 0 and got[cut:].count(0) == 3000 - cut and b"\0" not in got[:cut]


def test_power_loss_is_deterministic_per_seed() -> None:
    def run(seed: int) -> dict[str, bytes]:
        fs = SimFS(seed)
        for i in range(5):
            fd = _file(fs, f"/d/f{i}", b"s" * 700)
            for j in range(3):
                fs.pwrite(fd, bytes([65 + j]) * 900, 700 + 900 * j)
        return fs.power_loss()

    assert run(11) == run(11)
    assert any(run(11) != run(s) for s in range(12, 20))


def test_failed_fsync_drops_the_dirty_data_fsyncgate() -> None:
    fs = SimFS(5)
    fd = _file(fs, "/d/a", b"old")
    fs.pwrite(fd, b"new", 0)
    fs.fail_next("fdatasync")
    with pytest.raises(OSError) as info:
        fs.fdatasync(fd)
    assert info.value.errno == errno.EIO
    fs.fdatasync(fd)  # "succeeds" -- but the write was never made durable
    assert fs.files()["/d/a"] == b"new"
    assert fs.power_loss(kept=0, torn=None)["/d/a"] == b"old"


def test_crash_keeps_the_page_cache_and_kills_descriptors() -> None:
    fs = SimFS(6)
    fd = _file(fs, "/d/a", b"x", sync=False, sync_dir=False)
    fs.lock(fd)
    fs.crash()
    assert fs.files() == {"/d/a": b"x"}
    with pytest.raises(SimulatedCrash):
        fs.pwrite(fd, b"y", 0)
    fd2 = fs.open("/d/a", os.O_RDWR)
    fs.lock(fd2)  # the dead process's lock is gone
    fd3 = fs.open("/d/a", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fs.lock(fd3)


@pytest.mark.parametrize("in_thread", [False, True])
async def test_segmented_store_over_simfs_keeps_acknowledged_entries(in_thread: bool) -> None:
    fs = SimFS(7)
    opts = dict(cluster_name="sim", node_id=1, io=fs, segment_bytes=4096, sync_in_thread=in_thread)
    store = await SegmentedLogStore.open("/n1/log", **opts)
    acked: list[BaseException | None] = []
    for i in range(0, 60, 6):
        await store.append([Entry(LogId(1, j), b"v%03d" % j * 10) for j in range(i, i + 6)], acked.append)
    await store.save_committed(LogId(1, 59))  # runs after the appends are durable (R14)
    assert acked == [None] * 10
    # an append whose fdatasync never happens: lost (or torn, then cut) at the power loss
    fs.fail_next("fdatasync")
    failed: list[BaseException | None] = []
    try:
        await store.append([Entry(LogId(1, j), b"w" * 300) for j in range(60, 66)], failed.append)
    except StorageError:
        pass
    await store.close()  # waits for the failed round
    assert len(failed) == 1 and isinstance(failed[0], StorageError)
    fs.power_loss()
    store = await SegmentedLogStore.open("/n1/log", **opts)
    got = await (await store.get_log_reader()).try_get_log_entries(0, 100)
    assert [e.log_id.index for e in got] == list(range(60))
    await store.close()
