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
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from raftx.bench.procstats import read_stats, usage
from raftx.bench.stats import latency_summary

__all__ = ["Write", "WriteMany", "drive", "fresh_stats", "measured_level"]

RAMP = 1000
"""Writes started per loop turn at the beginning of a level (``RAMP // batch`` calls, at least one)."""

Write = Callable[[int], Awaitable[Any]]
"""One write of ``key``; raises if the write failed."""
WriteMany = Callable[[list[int]], Awaitable[list[BaseException]]]
"""One call writing every key of the list; returns the errors of the writes that failed
(raises: every write of the call failed with that error)."""


async def drive(write: Write, inflight: int, duration: float, max_writes: int, keys: int = 1000, *,
                batch: int = 1, write_many: WriteMany | None = None) -> dict[str, Any]:
    """Keep ``inflight`` writes outstanding until ``duration`` seconds passed or
    ``max_writes`` were issued. Returns writes, failed, writes/s (completed writes over
    the time to the last completion), latency percentiles and ``errors``: how many
    writes failed with each exception type (e.g. ``{"ForwardToLeader": 12}``).

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
    errors: Counter[str] = Counter()
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
            except Exception as exc:  # counted, not fatal: the figure says how many failed
                failed += 1
                errors[type(exc).__name__] += 1
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
            except Exception as exc:  # the whole call failed: every write in it did
                failed += n
                errors[type(exc).__name__] += n
                continue
            failed += len(bad)
            errors.update(type(e).__name__ for e in bad)
            if len(bad) < n:
                last = time.perf_counter()
                latencies.extend(itertools.repeat(last - t0, n - len(bad)))

    calls = max(1, inflight // batch) if batch > 1 else inflight
    calls = min(calls, -(-max_writes // batch))
    run = batch_worker if batch > 1 else worker
    async def ramp() -> None:
        # Start the workers RAMP writes at a time with a loop turn between, so that
        # submitting a large level's first wave does not hold the loop (and the node's
        # heartbeats) for longer than a leader lease.
        step = max(1, RAMP // batch)
        tasks = []
        for k in range(0, calls, step):
            tasks += [asyncio.ensure_future(run()) for _ in range(min(step, calls - k))]
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    await asyncio.wait_for(ramp(), duration + 60)
    elapsed = max(last - start, 1e-9)
    level: dict[str, Any] = {"inflight": inflight if batch == 1 else max(1, inflight // batch) * batch,
                             "batch": batch, "calls_in_flight": calls, "writes": len(latencies),
                             "failed": failed, "errors": dict(errors), "seconds": elapsed, "writes_per_s": len(latencies) / elapsed}
    level.update(latency_summary(latencies))
    return level


async def fresh_stats(stats: dict[str, Path], since: float, timeout: float = 1.0) -> dict[str, dict[str, Any]]:
    """The processes' stats samples taken at ``since`` (a `time.time`) or later: waits (at
    most ``timeout`` s, then takes what is there) for every writer's next sample, so a
    level shorter than the sampling interval still sees its own fsyncs and CPU time."""
    deadline = time.monotonic() + timeout
    while True:
        samples = read_stats(stats)
        fresh = len(samples) == len(stats) and all(s.get("t", 0.0) >= since for s in samples.values())
        if fresh or time.monotonic() >= deadline:
            return samples
        await asyncio.sleep(0.01)  # the writers sample every 50 ms (procstats.StatsWriter)


async def measured_level(write: Write, inflight: int, duration: float, max_writes: int,
                         stats: dict[str, Path], client_name: str | None = None, keys: int = 1000, *,
                         batch: int = 1, write_many: WriteMany | None = None) -> dict[str, Any]:
    """`drive` plus CPU % per process and fsyncs/s from the processes' stats files
    (`raftx.bench.procstats`); ``client_name``: also this process's own CPU under that name."""
    before = read_stats(stats)
    c0, t0 = os.times(), time.perf_counter()
    level = await drive(write, inflight, duration, max_writes, keys, batch=batch, write_many=write_many)
    c1, wall = os.times(), time.perf_counter() - t0
    after = await fresh_stats(stats, time.time())
    extra = [(client_name, (c1.user + c1.system) - (c0.user + c0.system))] if client_name else []
    level.update(usage(before, after, wall, extra))
    return level
