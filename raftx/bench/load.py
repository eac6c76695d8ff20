"""The load generator: keep N writes in flight for a time or a number of writes.

Writes are submitted one per call (``write(key)``) or, with ``batch`` > 1, in calls
of ``batch`` writes (``write_many(keys)``, e.g. ``Raft.client_write_many``): then
``inflight`` // ``batch`` calls are kept outstanding, every write counts as one
write, and the latency of each write is the latency of the call that carried it.
"""

from __future__ import annotations

import asyncio
import os
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from raftx.bench.procstats import read_stats, usage
from raftx.bench.stats import latency_summary

__all__ = ["Write", "WriteMany", "drive", "measured_level"]

Write = Callable[[int], Awaitable[Any]]
"""One write of ``key``; raises if the write failed."""
WriteMany = Callable[[list[int]], Awaitable[int]]
"""One call writing every key of the list; returns how many of them failed (raises: all failed)."""


async def drive(write: Write, inflight: int, duration: float, max_writes: int, keys: int = 1000, *,
                batch: int = 1, write_many: WriteMany | None = None) -> dict[str, Any]:
    """Keep ``inflight`` writes outstanding until ``duration`` seconds passed or
    ``max_writes`` were issued. Returns writes, failed, writes/s (completed writes over
    the time to the last completion) and latency percentiles.

    With ``batch`` > 1 the writes go through ``write_many`` in calls of ``batch`` keys
    (the last call of a ``max_writes`` run may be shorter), ``max(1, inflight // batch)``
    calls outstanding; the level then reports the writes actually in flight as
    ``inflight`` and the calls as ``calls_in_flight``."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, not {batch}")
    if batch > 1 and write_many is None:
        raise ValueError("batch > 1 needs write_many")
    latencies: list[float] = []
    failed = 0
    issued = 0
    start = time.perf_counter()
    deadline = start + duration
    last = start

    async def worker() -> None:
        nonlocal issued, failed, last
        while time.perf_counter() < deadline and issued < max_writes:
            i = issued
            issued += 1
            t0 = time.perf_counter()
            try:
                await write(i % keys)
            except Exception:  # counted, not fatal: the figure says how many failed
                failed += 1
                continue
            last = time.perf_counter()
            latencies.append(last - t0)

    async def batch_worker() -> None:
        nonlocal issued, failed, last
        assert write_many is not None
        while time.perf_counter() < deadline and issued < max_writes:
            n = min(batch, max_writes - issued)
            batch_keys = [(issued + j) % keys for j in range(n)]
            issued += n
            t0 = time.perf_counter()
            try:
                bad = await write_many(batch_keys)
            except Exception:  # the whole call failed: every write in it did
                failed += n
                continue
            failed += bad
            if bad < n:
                last = time.perf_counter()
                latencies.extend(itertools.repeat(last - t0, n - bad))

    calls = max(1, inflight // batch) if batch > 1 else inflight
    calls = min(calls, -(-max_writes // batch))
    run = batch_worker if batch > 1 else worker
    await asyncio.wait_for(asyncio.gather(*(run() for _ in range(calls))), duration + 60)
    elapsed = max(last - start, 1e-9)
    level: dict[str, Any] = {"inflight": inflight if batch == 1 else max(1, inflight // batch) * batch,
                             "batch": batch, "calls_in_flight": calls, "writes": len(latencies),
                             "failed": failed, "seconds": elapsed, "writes_per_s": len(latencies) / elapsed}
    level.update(latency_summary(latencies))
    return level


async def measured_level(write: Write, inflight: int, duration: float, max_writes: int,
                         stats: dict[str, Path], client_name: str | None = None, keys: int = 1000, *,
                         batch: int = 1, write_many: WriteMany | None = None) -> dict[str, Any]:
    """`drive` plus CPU % per process and fsyncs/s from the processes' stats files
    (`raftx.bench.procstats`); ``client_name``: also this process's own CPU under that name."""
    before = read_stats(stats)
    c0, t0 = os.times(), time.perf_counter()
    level = await drive(write, inflight, duration, max_writes, keys, batch=batch, write_many=write_many)
    c1, wall = os.times(), time.perf_counter() - t0
    after = read_stats(stats)
    extra = [(client_name, (c1.user + c1.system) - (c0.user + c0.system))] if client_name else []
    level.update(usage(before, after, wall, extra))
    return level
