"""SegmentedLogStore specifics: rotation, purge by whole segments, recovery refusals, group commit, ordering."""

from __future__ import annotations

import asyncio
import os
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from raftx.errors import StorageCorrupted, StorageError
from raftx.storage import FileIO, SegmentedLogStore, segmented
from raftx.storage.segment import HARDSTATE_NAME, HEADER_SIZE
from raftx.testing import FaultInjector, SimulatedCrash
from raftx.types import Entry, LogId, Vote

OPTS = dict(segment_bytes=700, cluster_name="c", node_id=1)


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(LogId(term, i), b"value-%04d" % i) for i in range(lo, hi)]


async def filled(d: Path, n: int = 60, **kw: object) -> SegmentedLogStore:
    log = await SegmentedLogStore.open(d, **{**OPTS, **kw})
    for i in range(0, n, 5):
        await log.append(entries(i, i + 5))
    return log


async def read_all(log: SegmentedLogStore) -> list[Entry]:
    return await log.try_get_log_entries(0, 1 << 40)


async def test_rotation_and_reopen(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    info = log.segment_info()
    assert len(info) > 3
    assert [s[0] for s in info] == list(range(1, len(info) + 1))
    assert all(info[k + 1][1] == info[k][2] + 1 for k in range(len(info) - 1))
    assert all(s[3] <= 700 for s in info[:-1])
    before = await read_all(log)
    await log.close()
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    assert await read_all(log) == before == entries(0, 60)
    await log.close()


async def test_purge_deletes_only_whole_segments_below(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    info = log.segment_info()
    cut = info[2][1] + 1  # inside the third segment
    await log.purge(LogId(1, cut))
    assert [e.log_id.index for e in await read_all(log)] == list(range(cut + 1, 60))
    await log.close()  # waits for the purged files' deletion (done in the background)
    files = sorted(p.name for p in tmp_path.glob("*.seg"))
    assert len(files) == len(info) - 2  # the third segment still holds entries after the cut
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    assert [e.log_id.index for e in await read_all(log)] == list(range(cut + 1, 60))
    assert (await log.get_log_state()).last_purged_log_id == LogId(1, cut)
    await log.close()


async def test_purged_files_are_deleted_in_the_background(tmp_path: Path) -> None:
    """Deleting purged files (tens of ms for a full segment) holds up neither `purge`
    (the node's storage worker awaits it) nor appends; `close` waits for it."""
    unlinking, release = threading.Event(), threading.Event()

    class SlowUnlink(FileIO):
        def unlink(self, path: str) -> None:
            unlinking.set()
            release.wait(30)
            super().unlink(path)

    log = await filled(tmp_path, io=SlowUnlink())
    cut = log.segment_info()[2][2]  # the last entry of the third segment
    await asyncio.wait_for(log.purge(LogId(1, cut)), 10)  # returns with the deletion still blocked
    try:
        assert await asyncio.to_thread(unlinking.wait, 30)
        durable = asyncio.get_running_loop().create_future()
        await log.append(entries(60, 65), durable.set_result)
        assert await asyncio.wait_for(durable, 10) is None
        assert [e.log_id.index for e in await read_all(log)] == list(range(cut + 1, 65))
    finally:
        release.set()
    await asyncio.wait_for(log.close(), 30)
    assert min(int(p.name.split("-")[0], 16) for p in tmp_path.glob("*.seg")) == 4  # segments 1-3 gone


async def test_open_races_a_deletion_left_running_by_a_crashed_store(tmp_path: Path) -> None:
    """A store abandoned mid-deletion (a simulated crash: its thread runs on) and the
    next open both delete the purged files; whichever is first, the other carries on."""
    unlinking, release, deleted = threading.Event(), threading.Event(), threading.Event()

    class Blocked(FileIO):
        def unlink(self, path: str) -> None:
            unlinking.set()
            release.wait(30)
            super().unlink(path)
            deleted.set()

    class Racing(FileIO):
        def unlink(self, path: str) -> None:
            release.set()  # let the old deletion remove this file first
            deleted.wait(30)
            super().unlink(path)

    old = await filled(tmp_path, io=Blocked())
    cut = old.segment_info()[2][2]
    await old.purge(LogId(1, cut))
    assert await asyncio.to_thread(unlinking.wait, 30)
    assert old._lock_fd is not None
    os.close(old._lock_fd)  # the process died: its directory lock goes with it
    old._lock_fd = None
    new = await SegmentedLogStore.open(tmp_path, **OPTS, io=Racing())
    assert [e.log_id.index for e in await read_all(new)] == list(range(cut + 1, 60))
    await new.close()
    await old.close()


async def test_a_crash_anywhere_in_a_purge_leaves_a_log_that_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Purged files are cut in steps before their unlink (`DELETE_CHUNK`, small here so
    that every segment is): a crash before any operation of the purge leaves a log
    that opens with all entries after the purge point, and none at or below it once
    the purge point was saved."""
    monkeypatch.setattr(segmented, "DELETE_CHUNK", 100)
    n = 0
    while True:
        d = tmp_path / f"crash{n}"
        io = FaultInjector()
        log = await filled(d, io=io)
        cut = log.segment_info()[2][2]
        io.crash_after(n)
        try:
            await log.purge(LogId(1, cut))
            await log.close()  # waits for the deletion of the purged files
        except (SimulatedCrash, StorageError):  # the store reports a crash in its I/O as failed
            pass
        crashed = io.dead  # also by a crash in the background deletion
        io.revive()
        log = await SegmentedLogStore.open(d, **OPTS, io=io)
        got = [e.log_id.index for e in await read_all(log)]
        purged = (await log.get_log_state()).last_purged_log_id
        assert got == list(range(0 if purged is None else purged.index + 1, 60)), (n, purged)
        assert purged in (None, LogId(1, cut))
        await log.close()
        if not crashed:
            assert purged == LogId(1, cut) and n > 10  # the sweep reached the end of the purge
            break
        n += 1


async def test_truncate_across_segments_then_append(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    await log.truncate(12)
    await log.append(entries(12, 30, term=2))
    await log.close()
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    got = await read_all(log)
    assert got == entries(0, 12) + entries(12, 30, term=2)
    await log.close()


@pytest.mark.parametrize(
    "opts, what",
    [({"cluster_name": "other"}, "cluster"), ({"node_id": 2}, "node")],
)
async def test_refuses_foreign_cluster_or_node(tmp_path: Path, opts: dict[str, object], what: str) -> None:
    await (await filled(tmp_path)).close()
    with pytest.raises(StorageCorrupted, match=what):
        await SegmentedLogStore.open(tmp_path, **{**OPTS, **opts})


async def test_refuses_a_segment_copied_from_another_node(tmp_path: Path) -> None:
    """An operator copies a segment of node 9 over one of node 1's: refused (R3), naming it."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    await (await filled(mine)).close()
    await (await filled(other, node_id=9)).close()
    victim = sorted(mine.glob("*.seg"))[1]
    victim.write_bytes((other / victim.name).read_bytes())
    with pytest.raises(StorageCorrupted, match="node 9, not") as exc:
        await SegmentedLogStore.open(mine, **OPTS)
    assert exc.value.path == str(victim) and exc.value.offset == 0


async def test_refuses_sequence_gap(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    await log.close()
    sorted(tmp_path.glob("*.seg"))[2].unlink()
    with pytest.raises(StorageCorrupted, match="sequence gap"):
        await SegmentedLogStore.open(tmp_path, **OPTS)


async def test_refuses_bit_flip_in_last_record_of_earlier_segment(
    tmp_path: Path, flip_record_bit: Callable[[Path, int], None]
) -> None:
    log = await filled(tmp_path)
    last_of_first = log.segment_info()[0][2]
    await log.close()
    flip_record_bit(tmp_path, last_of_first)
    with pytest.raises(StorageCorrupted, match="CRC32C") as exc:
        await SegmentedLogStore.open(tmp_path, **OPTS)
    assert exc.value.offset is not None and exc.value.offset > HEADER_SIZE


async def test_refuses_bit_flip_in_complete_last_record(tmp_path: Path, flip_record_bit: Callable[[Path, int], None]) -> None:
    """A whole record with a bad CRC at the very end is not torn (no zero sector): refuse (R9)."""
    await (await filled(tmp_path)).close()
    flip_record_bit(tmp_path, 59)
    with pytest.raises(StorageCorrupted):
        await SegmentedLogStore.open(tmp_path, **OPTS)


async def test_refuses_truncated_earlier_segment(tmp_path: Path) -> None:
    await (await filled(tmp_path)).close()
    first = sorted(tmp_path.glob("*.seg"))[0]
    first.write_bytes(first.read_bytes()[:-7])
    size = first.stat().st_size
    with pytest.raises(StorageCorrupted, match="^truncated record"):
        await SegmentedLogStore.open(tmp_path, **OPTS)
    assert first.stat().st_size == size  # refused, not "repaired"


async def test_lost_last_segment_detected_by_committed(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    await log.save_committed(LogId(1, 59))
    await log.close()
    sorted(tmp_path.glob("*.seg"))[-1].unlink()
    with pytest.raises(StorageCorrupted, match="committed"):
        await SegmentedLogStore.open(tmp_path, **OPTS)


async def test_corrupt_hard_state_refused(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    await log.save_vote(Vote(3, 1))
    await log.close()
    p = tmp_path / HARDSTATE_NAME
    data = bytearray(p.read_bytes())
    data[-1] ^= 0x40
    p.write_bytes(bytes(data))
    with pytest.raises(StorageCorrupted, match="hard state"):
        await SegmentedLogStore.open(tmp_path, **OPTS)


async def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    await (await filled(tmp_path)).close()
    last = sorted(tmp_path.glob("*.seg"))[-1]
    size = last.stat().st_size
    with open(last, "ab") as f:
        f.write(b"\0" * 1000)
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    assert last.stat().st_size == size
    assert [e.log_id.index for e in await read_all(log)] == list(range(60))
    await log.append(entries(60, 61))
    await log.close()


async def test_corruption_found_on_read_fails_the_store(tmp_path: Path) -> None:
    log = await filled(tmp_path)
    seg, offset, _ = log.log_index.locate(30)
    path = next(p for p in tmp_path.glob("*.seg") if p.name.startswith(f"{seg:016x}-"))
    with open(path, "r+b") as f:
        f.seek(offset + 40)
        b = f.read(1)
        f.seek(offset + 40)
        f.write(bytes([b[0] ^ 1]))
    assert len(await log.try_get_log_entries(0, 30)) == 30
    with pytest.raises(StorageCorrupted):
        await log.try_get_log_entries(25, 35)
    assert log.failed
    with pytest.raises(StorageError):
        await log.read_vote()
    await log.close()


async def test_group_commit_callbacks_in_order(tmp_path: Path) -> None:
    io = FaultInjector()
    log = await SegmentedLogStore.open(tmp_path, **{**OPTS, "segment_bytes": 1 << 20}, io=io)
    fired: list[tuple[int, BaseException | None]] = []
    done = asyncio.get_running_loop().create_future()
    start = io.ops

    def cb(i: int) -> Callable[[BaseException | None], None]:
        def f(err: BaseException | None) -> None:
            fired.append((i, err))
            if i == 99:
                done.set_result(None)

        return f

    for i in range(100):  # submitted back to back, not waiting for durability
        await log.append(entries(i, i + 1), cb(i))
    await asyncio.wait_for(done, 30)
    assert fired == [(i, None) for i in range(100)]
    syncs = [t for t in io.ops_since(start) if t[1] == "fdatasync"]
    writes = [t for t in io.ops_since(start) if t[1] == "pwrite" and not t[2].endswith("@0")]  # not headers
    assert len(writes) == 100 and 1 <= len(syncs) <= 100
    await log.close()


async def test_vote_waits_for_earlier_appends(tmp_path: Path) -> None:
    """R14: the vote file is replaced only after the earlier append's fdatasync."""
    io = FaultInjector()
    log = await SegmentedLogStore.open(tmp_path, **OPTS, io=io)
    start = io.ops
    await log.append(entries(0, 3))  # not waiting for the callback
    await log.save_vote(Vote(2, 1))
    ops = list(io.ops_since(start))
    hard_rename = max(k for k, t in enumerate(ops) if t[1] == "rename" and HARDSTATE_NAME in t[2])
    data_write = next(k for k, t in enumerate(ops) if t[1] == "pwrite" and not t[2].endswith("@0"))
    assert any(t[1] == "fdatasync" for t in ops[data_write:hard_rename]), ops
    await log.close()


async def test_fsync_failure_on_segment_rotation(tmp_path: Path) -> None:
    io = FaultInjector()
    log = await SegmentedLogStore.open(tmp_path, **OPTS, io=io)
    await log.append(entries(0, 5))
    io.fail_next("fsync")  # the new segment's header fsync
    errors: list[BaseException | None] = []
    with pytest.raises(StorageError):
        await log.append(entries(5, 40), errors.append)
    assert len(errors) == 1 and isinstance(errors[0], StorageError)
    with pytest.raises(StorageError):
        await log.append(entries(5, 6))
    await log.close()


async def test_no_fsync_mode_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="raftx.storage.segmented"):
        log = await SegmentedLogStore.open(tmp_path, **OPTS, fsync=False)
    assert "NOT DURABLE" in caplog.text
    await log.append(entries(0, 3))
    await log.close()


async def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SegmentedLogStore(tmp_path, segment_bytes=10)
    with pytest.raises(ValueError):
        SegmentedLogStore(tmp_path, cluster_name="x" * 65)
    with pytest.raises(ValueError):
        SegmentedLogStore(tmp_path, node_id=-1)
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    with pytest.raises(ValueError):  # a caller's mistake, not a failed store
        await log.try_get_log_entries(-1, 3)
    assert not log.failed
    await log.close()
    with pytest.raises(StorageError, match="closed"):
        await log.read_vote()
