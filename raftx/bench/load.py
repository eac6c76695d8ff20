"""The load generator: keep N writes in flight for a time or a number of writes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from raftx.bench.procstats import read_stats, usage
from raftx.bench.stats import latency_summary

__all__ = ["drive", "measured_level"]


async def drive(write: Callable[[int], Awaitable[Any]], inflight: int, duration: float, max_writes: int,
                keys: int = 1000) -> dict[str, Any]:
    """Keep ``inflight`` calls of ``write(key)`` outstanding until ``duration`` seconds
    passed or ``max_writes`` were issued. Returns writes, failed, writes/s (completed
    writes over the time to the last completion) and latency percentiles."""
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

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(min(inflight, max_writes)))), duration + 60)
    elapsed = max(last - start, 1e-9)
    return {"inflight": inflight, "writes": len(latencies), "failed": failed, "seconds": elapsed,
            "writes_per_s": len(latencies) / elapsed, **latency_summary(latencies)}


async def measured_level(write: Callable[[int], Awaitable[Any]], inflight: int, duration: float, max_writes: int,
                         stats: dict[str, Path], client_name: str | None = None, keys: int = 1000) -> dict[str, Any]:
    """`drive` plus CPU % per process and fsyncs/s from the processes' stats files
    (`raftx.bench.procstats`); ``client_name``: also this process's own CPU under that name."""
    before = read_stats(stats)
    c0, t0 = os.times(), time.perf_counter()
    level = await drive(write, inflight, duration, max_writes, keys)
    c1, wall = os.times(), time.perf_counter() - t0
    after = read_stats(stats)
    extra = [(client_name, (c1.user + c1.system) - (c0.user + c0.system))] if client_name else []
    level.update(usage(before, after, wall, extra))
    return level
