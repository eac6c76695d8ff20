"""Builders of fresh store pairs for the conformance suite (one per store kind)."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from raftx.storage import FileIO, MemLogStore, MemStateMachine, SegmentedLogStore, SqliteLogStore
from raftx.cli_inspect import inspect_dir
from raftx.storage.segment import HARDSTATE_NAME, HEADER_SIZE
from raftx.testing import FaultInjector
from raftx.testing.log_suite import StoreCapabilities
from raftx.testing.simfs import SimFS

_counter = itertools.count()


def flip_bit_in_segment_record(directory: Path, index: int, fs: SimFS | None = None) -> None:
    """Flip a bit in the payload of the record of ``index`` in a closed segmented log
    (on the real disk, or durably in ``fs``)."""
    from raftx import _core

    files = fs.files() if fs is not None else {str(p): p.read_bytes() for p in directory.glob("*.seg")}
    for path in sorted(p for p in files if p.endswith(".seg") and Path(p).parent == directory):
        data = bytearray(files[path])
        scan = _core.codec.scan_records(bytes(data), HEADER_SIZE)
        if scan.count and scan.first_index <= index <= scan.last_index:
            off = scan.offsets[index - scan.first_index] + _core.codec.RECORD_HEADER_SIZE
            data[off] ^= 0x10
            if fs is not None:
                fs.write_file(path, bytes(data))
            else:
                Path(path).write_bytes(bytes(data))
            return
    raise LookupError(f"no record for index {index} in {directory}")


def lose_segmented_file(directory: Path, what: str, fs: SimFS | None = None) -> None:
    """Delete the first or last segment or the hard state of a closed segmented log."""
    names = sorted(fs.listdir(str(directory)) if fs is not None else (p.name for p in directory.iterdir()))
    segments = [n for n in names if n.endswith(".seg")]
    name = {"hard_state": HARDSTATE_NAME, "first_segment": segments[0], "last_segment": segments[-1]}[what]
    if fs is not None:
        fs.remove_file(str(directory / name))
    else:
        (directory / name).unlink()


def verify_segmented(directory: Path, fs: SimFS | None = None) -> str | None:
    """What ``raftx inspect --verify`` finds wrong in a closed segmented log, or None."""
    err = inspect_dir(directory, verify=True, io=fs)["error"]
    return None if err is None else str(err)


def make_builder(kind: str, base: Path) -> Callable[[], Awaitable[Any]]:
    async def mem() -> Any:
        return MemLogStore(), MemStateMachine()

    async def sqlite() -> Any:
        d = base / f"sq{next(_counter)}"
        d.mkdir()
        db = d / "log.db"

        async def reopen() -> Any:
            return await SqliteLogStore.open(db), MemStateMachine()

        async def corrupt(index: int) -> None:
            s = await SqliteLogStore.open(db)
            await s.flip_bit(index, 8 * 40)
            await s.close()

        caps = StoreCapabilities(
            durable=True, reopen=reopen, corrupt_entry=corrupt, detects_corruption_on_open=False,
            open_other_owner=reopen, cleanup=lambda: shutil.rmtree(d, ignore_errors=True),
        )
        return await SqliteLogStore.open(db), MemStateMachine(), caps

    async def segmented(sync_in_thread: bool = True) -> Any:
        d = base / f"seg{next(_counter)}"
        io = FaultInjector()
        opts = dict(segment_bytes=1024, cluster_name="suite", node_id=7, io=io, sync_in_thread=sync_in_thread)

        async def reopen() -> Any:
            io.revive()
            return await SegmentedLogStore.open(d / "log", **opts), await MemStateMachine.open(d / "snap")

        async def other_owner() -> Any:  # another process: its own descriptors
            return await SegmentedLogStore.open(d / "log", **{**opts, "io": FileIO()}), MemStateMachine()

        caps = StoreCapabilities(
            durable=True, reopen=reopen, faults=io,
            corrupt_entry=lambda i: flip_bit_in_segment_record(d / "log", i),
            lose_file=lambda what: lose_segmented_file(d / "log", what),
            open_other_owner=other_owner, verify=lambda: verify_segmented(d / "log"),
            cleanup=lambda: shutil.rmtree(d, ignore_errors=True),
        )
        return await SegmentedLogStore.open(d / "log", **opts), await MemStateMachine.open(d / "snap"), caps

    async def segmented_inline() -> Any:
        return await segmented(sync_in_thread=False)

    async def segmented_simfs() -> Any:
        """The real store over `SimFS`: power loss, sector tears, lost directory entries."""
        n = next(_counter)
        fs = SimFS(seed=n)
        d = Path(f"/sim{n}/log")
        opts = dict(segment_bytes=4096, cluster_name="suite", node_id=7, io=fs)

        async def reopen() -> Any:
            fs.revive()
            return await SegmentedLogStore.open(d, **opts), MemStateMachine()

        caps = StoreCapabilities(
            durable=True, reopen=reopen, faults=fs, simfs=fs,
            corrupt_entry=lambda i: flip_bit_in_segment_record(d, i, fs),
            lose_file=lambda what: lose_segmented_file(d, what, fs),
            verify=lambda: verify_segmented(d, fs),
        )
        return await SegmentedLogStore.open(d, **opts), MemStateMachine(), caps

    return {"mem": mem, "sqlite": sqlite, "segmented": segmented, "segmented-inline": segmented_inline,
            "segmented-simfs": segmented_simfs}[kind]


@pytest.fixture
def flip_record_bit() -> Callable[[Path, int], None]:
    """`flip_bit_in_segment_record`, for tests that corrupt a closed log."""
    return flip_bit_in_segment_record


@pytest.fixture
def store_dir() -> Any:
    d = Path(tempfile.mkdtemp(prefix="raftx-storage-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["mem", "sqlite", "segmented", "segmented-inline", "segmented-simfs"])
def builder(request: pytest.FixtureRequest, store_dir: Path) -> Callable[[], Awaitable[Any]]:
    return make_builder(request.param, store_dir)
