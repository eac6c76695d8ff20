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

Store variants: ``store`` (fdatasync on the store's I/O thread, the default) and
``store-inline`` (``sync_in_thread=False``: fdatasync on the loop thread). Which
``_core`` twin ran is printed (``raftx._core.IMPLEMENTATION``).

The script form alternates blocks raw / store / store-inline so all three see the
same disk weather (the disk is shared and swings between ~250 and ~9,000 fsync/s),
and reports, per variant, the ratio to raw of *each alternating pair* of blocks
(median and quartiles) next to the raw fsync rate of those blocks (the disk state).
It also measures the software cost per append with ``fdatasync`` replaced by a
no-op (`NoSyncIO`): what the store adds on top of the disk, without the disk's noise.

    python benchmarks/bench_storage.py --runs 3 --no-open   # appends only, three runs
"""

from __future__ import annotations

import argparse
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
from raftx.storage.fileio import FileIO
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
    """The measured thing for ``kind`` (one of `KINDS`), writing under ``directory``."""
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
        n = int(s.log_index.memory_bytes())
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
                t0 = time.perf_counter()
                targets[k].write_all(group)
                times[k].append(time.perf_counter() - t0)
    finally:
        for target in targets.values():
            target.close()
    return times


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[1], q[2]


def _report(
    title: str, times: dict[str, list[float]], items: int, nbytes: int, syncs: int, line: Callable[[str], None]
) -> None:
    """Per variant: median rate, and the ratio to raw of each alternating pair of blocks."""
    raw = times["raw"]
    lo, mid, hi = _quartiles([syncs / t for t in raw])
    line(f"{title}")
    line(f"  disk state: raw fsync/s per block median {mid:,.0f} (quartiles {lo:,.0f} .. {hi:,.0f})")
    for k, ts in times.items():
        med = statistics.median(ts)
        rate = f"  {k:<13} {items / med:>12,.0f} entries/s {nbytes / med / 1e6:>8.1f} MB/s"
        if k == "raw":
            line(rate)
            continue
        q1, q2, q3 = _quartiles([r / t for r, t in zip(raw, ts)])  # pair i: raw block i vs this block i
        line(f"{rate}   per-pair ratio to raw: median {q2:6.1%} (quartiles {q1:6.1%} .. {q3:6.1%})")


class NoSyncIO(FileIO):
    """`FileIO` whose fdatasync does nothing: isolates the store's own cost per append."""

    def fdatasync(self, fd: int) -> None:
        return None


def software_cost(size: int, appends: int, base: Path) -> dict[str, float]:
    """Median microseconds per durable-waited append with a no-op fdatasync, per mode."""
    got: dict[str, list[float]] = {"store": [], "store-inline": []}
    for rnd in range(5):
        for k in got:
            d = base / f"{k}-{size}-{rnd}"
            target = Store(d, sync_in_thread=(k == "store"), io=NoSyncIO())
            group = encoded_batches(0, size, appends)
            t = time.perf_counter()
            target.write_all(group)
            got[k].append((time.perf_counter() - t) / appends * 1e6)
            target.close()
            shutil.rmtree(d, ignore_errors=True)
    return {k: statistics.median(v) for k, v in got.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1, help="repeat the interleaved append measurements")
    ap.add_argument("--no-open", action="store_true", help="skip the 1M-entry open and read figures")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="raftx-bench-", dir=os.environ.get("RAFTX_BENCH_DIR")))
    out = print
    try:
        out(f"raftx storage benchmark; _core.IMPLEMENTATION = {_core.IMPLEMENTATION}; dir {base}")
        rec = len(encoded_batches(0, 1, 1)[0].data)
        for run in range(args.runs):
            out(f"-- run {run + 1} of {args.runs}")
            t = _interleaved(BATCH, 1, 60, base / f"batch{run}")
            _report(f"append batches of {BATCH} x {len(PAYLOAD)} B ({rec} B records), durable each",
                    t, BATCH, BATCH * rec, 1, out)
            t = _interleaved(1, SINGLES, 100, base / f"single{run}")
            _report(f"single-entry appends, durable each ({SINGLES} per block)", t, SINGLES, SINGLES * rec, SINGLES, out)
        for size, n in ((1, 5000), (BATCH, 300)):
            cost = software_cost(size, n, base / "nosync")
            out(f"software cost per append of {size} entries, fdatasync a no-op (median of 5): "
                + ", ".join(f"{k} {v:.1f} us" for k, v in cost.items()))
        if args.no_open:
            return 0
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
