"""Builders of fresh store pairs for the conformance suite (one per store kind)."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from raftx.storage import FaultInjector, MemLogStore, MemStateMachine, SegmentedLogStore, SqliteLogStore
from raftx.storage.segment import HEADER_SIZE
from raftx.testing.log_suite import StoreCapabilities

_counter = itertools.count()


def flip_bit_in_segment_record(directory: Path, index: int) -> None:
    """Flip a bit in the payload of the record of ``index`` in a closed segmented log."""
    from raftx import _core

    for path in sorted(directory.glob("*.seg")):
        data = bytearray(path.read_bytes())
        scan = _core.codec.scan_records(bytes(data), HEADER_SIZE)
        if scan.count and scan.first_index <= index <= scan.last_index:
            off = scan.offsets[index - scan.first_index] + _core.codec.RECORD_HEADER_SIZE
            data[off] ^= 0x10
            path.write_bytes(bytes(data))
            return
    raise LookupError(f"no record for index {index} in {directory}")


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
            cleanup=lambda: shutil.rmtree(d, ignore_errors=True),
        )
        return await SqliteLogStore.open(db), MemStateMachine(), caps

    async def segmented(sync_in_thread: bool = True) -> Any:
        d = base / f"seg{next(_counter)}"
        io = FaultInjector()
        opts = dict(segment_bytes=1024, cluster_name="suite", node_id=7, io=io, sync_in_thread=sync_in_thread)

        async def reopen() -> Any:
            io.revive()
            return await SegmentedLogStore.open(d / "log", **opts), await MemStateMachine.open(d / "snap")

        caps = StoreCapabilities(
            durable=True, reopen=reopen, faults=io,
            corrupt_entry=lambda i: flip_bit_in_segment_record(d / "log", i),
            cleanup=lambda: shutil.rmtree(d, ignore_errors=True),
        )
        return await SegmentedLogStore.open(d / "log", **opts), await MemStateMachine.open(d / "snap"), caps

    async def segmented_inline() -> Any:
        return await segmented(sync_in_thread=False)

    return {"mem": mem, "sqlite": sqlite, "segmented": segmented, "segmented-inline": segmented_inline}[kind]


@pytest.fixture
def flip_record_bit() -> Callable[[Path, int], None]:
    """`flip_bit_in_segment_record`, for tests that corrupt a closed log."""
    return flip_bit_in_segment_record


@pytest.fixture
def store_dir() -> Any:
    d = Path(tempfile.mkdtemp(prefix="raftx-storage-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["mem", "sqlite", "segmented", "segmented-inline"])
def builder(request: pytest.FixtureRequest, store_dir: Path) -> Callable[[], Awaitable[Any]]:
    return make_builder(request.param, store_dir)
