"""SegmentedLogStore benchmarks, each next to the raw limit of the same disk in the same run.

    python -m pytest benchmarks/bench_storage.py --benchmark-only   # pytest-benchmark figures
    python benchmarks/bench_storage.py                             # interleaved side-by-side ratios

* **batch append**: 1,000 entries of 100 bytes per append, waiting for durability
  (the callback) before the next; vs *raw*: ``pwrite`` + ``fdatasync`` of the very
  same bytes to a plain file in the same directory. Target >= 80 % of raw.
* **single append**: one 100-byte entry per append, durable before the next; vs raw
  ``pwrite`` + ``fdatasync`` of the same record. Target >= 90 % of raw.
* **open**: recovering a 1,000,000-entry log (scan + CRC of every record + index
  build). Target <= 1 s and an index of <= 24 bytes per entry.
* **read**: a 10,000-entry range as `Entry` objects and as encoded bytes.

Store variants: ``store`` (fdatasync in a worker thread, the default) and
``store-inline`` (``sync_in_thread=False``: fdatasync on the loop thread). Which
``_core`` twin ran is printed (``raftx._core.IMPLEMENTATION``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raftx import _core
from raftx.storage import EncodedBatch, SegmentedLogStore
from raftx.types import Entry, LogId

PAYLOAD = b"p" * 100
BATCH = 1_000
SINGLES = 20  # single appends per measured block (small: blocks interleave finely)
OPEN_N = 1_000_000
READ_N = 10_000


def encoded_batches(first: int, size: int, count: int) -> list[EncodedBatch]:
    return [
        EncodedBatch.from_entries([Entry(LogId(1, first + b * size + i), PAYLOAD) for i in range(size)])
        for b in range(count)
    ]


class Raw:
    """The disk's limit: pwrite + fdatasync of the same bytes, nothing else."""

    def __init__(self, directory: Path) -> None:
        self.fd = os.open(directory / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.off = 0

    def write_all(self, batches: list[EncodedBatch]) -> None:
        for b in batches:
            os.pwrite(self.fd, b.data, self.off)
            self.off += len(b.data)
            os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class Store:
    """A SegmentedLogStore on its own event loop; appends wait for the durability callback."""

    def __init__(self, directory: Path, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = self.loop.run_until_complete(SegmentedLogStore.open(directory, **options))

    def write_all(self, batches: list[EncodedBatch] | list[list[Entry]]) -> None:
        self.loop.run_until_complete(self._write_all(batches))

    async def _write_all(self, batches: Any) -> None:
        loop = asyncio.get_running_loop()
        for b in batches:
            fut = loop.create_future()
            await self.store.append(b, fut.set_result)
            err = await fut
            if err is not None:
                raise err

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


def _feeder(first: int, size: int, per_call: int) -> Iterator[list[EncodedBatch]]:
    """Endless consecutive batch groups (encoded ahead of time, outside the timing)."""
    nxt = first
    while True:
        group = encoded_batches(nxt, size, per_call)
        nxt += size * per_call
        yield group


KINDS = ["raw", "store", "store-inline"]


def _target(kind: str, directory: Path) -> Raw | Store:
    if kind == "raw":
        return Raw(directory)
    return Store(directory / "log", sync_in_thread=(kind == "store"))


# -- pytest-benchmark ---------------------------------------------------------------------------


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="raftx-bench-", dir=os.environ.get("RAFTX_BENCH_DIR")))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
def test_append_batch_1000(benchmark: Any, kind: str, workdir: Path) -> None:
    target = _target(kind, workdir)
    feed = _feeder(0, BATCH, 1)
    benchmark.extra_info.update(units=BATCH, implementation=_core.IMPLEMENTATION, bytes_per_entry=132)
    benchmark.pedantic(lambda batches: target.write_all(batches), setup=lambda: ((next(feed),), {}), rounds=60)
    target.close()


@pytest.mark.parametrize("kind", KINDS)
def test_append_single(benchmark: Any, kind: str, workdir: Path) -> None:
    target = _target(kind, workdir)
    feed = _feeder(0, 1, SINGLES)
    benchmark.extra_info.update(units=SINGLES, implementation=_core.IMPLEMENTATION)
    benchmark.pedantic(lambda batches: target.write_all(batches), setup=lambda: ((next(feed),), {}), rounds=50)
    target.close()


def build_log(directory: Path, n: int) -> None:
    """An ``n``-entry log of 100-byte entries (written without fsync: only its shape matters)."""
    loop = asyncio.new_event_loop()

    async def fill() -> None:
        s = await SegmentedLogStore.open(directory, fsync=False)
        step = 10_000
        for first in range(0, n, step):
            await s.append(encoded_batches(first, step, 1)[0])
        await s.close()

    loop.run_until_complete(fill())
    loop.close()


@pytest.fixture(scope="module")
def million() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="raftx-bench-1m-", dir=os.environ.get("RAFTX_BENCH_DIR")))
    build_log(d, OPEN_N)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def open_close(directory: Path) -> int:
    loop = asyncio.new_event_loop()

    async def go() -> int:
        s = await SegmentedLogStore.open(directory)
        n = s.log_index.memory_bytes()
        await s.close()
        return n

    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def test_open_1m(benchmark: Any, million: Path) -> None:
    mem = open_close(million)
    benchmark.extra_info.update(units=OPEN_N, index_bytes_per_entry=mem / OPEN_N, implementation=_core.IMPLEMENTATION)
    benchmark.pedantic(open_close, args=(million,), rounds=3)


@pytest.mark.parametrize("form", ["entries", "bytes"])
def test_read_10k(benchmark: Any, form: str, million: Path) -> None:
    loop = asyncio.new_event_loop()
    s = loop.run_until_complete(SegmentedLogStore.open(million))
    read = s.try_get_log_entries if form == "entries" else s.try_get_log_bytes
    benchmark.extra_info.update(units=READ_N, implementation=_core.IMPLEMENTATION)
    got = benchmark(lambda: loop.run_until_complete(read(500_000, 500_000 + READ_N)))
    assert len(got) == READ_N
    loop.run_until_complete(s.close())
    loop.close()


# -- interleaved side-by-side run -------------------------------------------------------------------


def _interleaved(size: int, per_block: int, blocks: int, base: Path) -> dict[str, list[float]]:
    """Alternate raw / store / store-inline blocks so all see the same disk weather."""
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    for k in KINDS:
        (base / k).mkdir(parents=True)
    targets = {k: _target(k, base / k) for k in KINDS}
    feeds = {k: _feeder(0, size, per_block) for k in KINDS}
    try:
        for _ in range(blocks):
            for k in KINDS:
                group = next(feeds[k])
                t = time.perf_counter()
                targets[k].write_all(group)
                times[k].append(time.perf_counter() - t)
    finally:
        for t in targets.values():
            t.close()
    return times


def _report(title: str, times: dict[str, list[float]], items: int, nbytes: int, line: Callable[[str], None]) -> None:
    raw = statistics.median(times["raw"])
    line(f"{title}")
    for k, ts in times.items():
        med = statistics.median(ts)
        line(f"  {k:<13} {items / med:>12,.0f} entries/s {nbytes / med / 1e6:>8.1f} MB/s   {raw / med:6.1%} of raw")


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="raftx-bench-", dir=os.environ.get("RAFTX_BENCH_DIR")))
    out = print
    try:
        out(f"raftx storage benchmark; _core.IMPLEMENTATION = {_core.IMPLEMENTATION}; dir {base}")
        rec = len(encoded_batches(0, 1, 1)[0].data)
        t = _interleaved(BATCH, 1, 60, base / "batch")
        _report(f"append batches of {BATCH} x {len(PAYLOAD)} B ({rec} B records), durable each", t, BATCH, BATCH * rec, out)
        t = _interleaved(1, SINGLES, 100, base / "single")
        _report(f"single-entry appends, durable each ({SINGLES} per block)", t, SINGLES, SINGLES * rec, out)
        build_log(base / "million", OPEN_N)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            mem = open_close(base / "million")
            times.append(time.perf_counter() - t0)
        out(f"open a {OPEN_N:,}-entry log: {min(times):.3f} s (best of 3), index {mem / OPEN_N:.1f} bytes/entry")
        loop = asyncio.new_event_loop()
        s = loop.run_until_complete(SegmentedLogStore.open(base / "million"))
        for form, fn in (("entries", s.try_get_log_entries), ("bytes", s.try_get_log_bytes)):
            ts = []
            for k in range(20):
                t0 = time.perf_counter()
                loop.run_until_complete(fn(k * READ_N, (k + 1) * READ_N))
                ts.append(time.perf_counter() - t0)
            out(f"read {READ_N:,}-entry range as {form}: {READ_N / statistics.median(ts):,.0f} entries/s")
        loop.run_until_complete(s.close())
        loop.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
