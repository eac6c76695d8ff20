"""Snapshot files (R13) and MemStateMachine snapshots."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from raftx.errors import StorageCorrupted
from raftx.storage import FileSnapshotStore, MemStateMachine
from raftx.types import Entry, LogId, Membership, SnapshotMeta, StoredMembership


def meta(index: int) -> SnapshotMeta:
    return SnapshotMeta(LogId(2, index), StoredMembership(LogId(1, 1), Membership.new([1, 2])), f"s{index}")


def write(store: FileSnapshotStore, index: int, data: bytes, chunk: int = 65536) -> None:
    w = store.begin(meta(index))
    for o in range(0, len(data), chunk):
        w.write(data[o : o + chunk])
    w.commit()


def test_round_trip_streamed(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    store = FileSnapshotStore(tmp_path)
    write(store, 10, data)
    snap = FileSnapshotStore(tmp_path).latest()  # a fresh store verifies the file
    assert snap is not None and snap.meta == meta(10) and snap.data_size == len(data)
    with snap.open() as f:
        assert f.read(100) == data[:100]
        f.seek(0)
        assert f.read() == data


def test_previous_kept_until_new_is_durable(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    write(store, 10, b"old")
    w = store.begin(meta(20))
    w.write(b"new")
    assert len(store.paths()) == 1 and store.latest().meta == meta(10)  # type: ignore[union-attr]
    w.commit()
    assert [store.latest().meta] == [meta(20)]  # type: ignore[union-attr]
    assert len(store.paths()) == 1


def test_interrupted_write_is_discarded(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    write(store, 10, b"good")
    w = store.begin(meta(20))
    w.write(b"partial")  # the process dies here: no commit
    assert list(tmp_path.glob("*.tmp"))
    again = FileSnapshotStore(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))
    assert again.latest().meta == meta(10)  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["data", "meta", "trailer", "cut"])
def test_corruption_detected_on_open(tmp_path: Path, where: str) -> None:
    write(FileSnapshotStore(tmp_path), 10, b"x" * 5000)
    p = next(tmp_path.glob("*.snap"))
    b = bytearray(p.read_bytes())
    if where == "data":
        b[3000] ^= 4
    elif where == "meta":
        b[14] ^= 1
    elif where == "trailer":
        b[-10] ^= 1
    else:
        b = b[:-30]
    p.write_bytes(bytes(b))
    with pytest.raises(StorageCorrupted):
        FileSnapshotStore(tmp_path).latest()


def test_checksum_verified_on_receipt(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    w = store.begin(meta(5))
    w.write(b"payload")
    good = w.checksum
    with pytest.raises(StorageCorrupted):
        w.commit(expected_checksum=good ^ 1)
    assert store.paths() == [] and not list(tmp_path.glob("*.tmp"))
    w = store.begin(meta(5))
    w.write(b"payload")
    w.commit(expected_checksum=good)
    assert store.latest().meta == meta(5)  # type: ignore[union-attr]


async def test_state_machine_restores_from_snapshot(tmp_path: Path) -> None:
    sm = await MemStateMachine.open(tmp_path)
    await sm.apply([Entry(LogId(1, 1), Membership.new([1]))] + [Entry(LogId(1, i), b"v%d" % i) for i in range(2, 2000)])
    snap = await (await sm.get_snapshot_builder()).build_snapshot()
    snap.snapshot.close()
    again = await MemStateMachine.open(tmp_path)
    assert await again.applied_state() == await sm.applied_state()
    assert again.data == sm.data


async def test_install_rejects_malformed_snapshot(tmp_path: Path) -> None:
    sm = await MemStateMachine.open(tmp_path)
    await sm.apply([Entry(LogId(1, 1), b"a")])
    before = (await sm.applied_state(), dict(sm.data))
    with pytest.raises(StorageCorrupted):
        await sm.install_snapshot(meta(9), io.BytesIO(b"\x93garbage"))
    assert (await sm.applied_state(), sm.data) == before
    assert await sm.get_current_snapshot() is None


async def test_apply_refuses_out_of_order(tmp_path: Path) -> None:
    from raftx.errors import StorageError

    sm = MemStateMachine()
    await sm.apply([Entry(LogId(1, 5), b"a")])
    with pytest.raises(StorageError, match="R19"):
        await sm.apply([Entry(LogId(1, 5), b"again")])
