"""Committed writes through a 3-node in-process cluster: compiled vs pure `_core`, side by side.

    python benchmarks/bench_runtime.py                  # table: both twins, both scenarios, one run
    python benchmarks/bench_runtime.py --writes 20000   # more writes per measurement
    python -m pytest benchmarks/bench_runtime.py --benchmark-only   # pytest-benchmark, current twin

Scenarios (all three nodes in one process and one event loop, so they share a core):

* ``mem``: `MemRouter` + `MemLogStore` — the runtime, engine and codec alone;
* ``tcp``: loopback TCP + `SegmentedLogStore` with fsync on — the real write path
  (group commit, pipelined replication), though with three nodes on one loop.

``writes/s`` counts `client_write` calls that returned (committed on a majority and
applied on the leader) with ``--inflight`` concurrent writers; ``p50``/``p99`` are
their latencies. Each (twin, scenario) runs in its own subprocess because
``raftx._core`` chooses its twin at import (``RAFTX_NO_EXTENSIONS=1`` selects the
pure one); the ratio column is compiled / pure throughput from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # run from a checkout without installing raftx
    sys.path.insert(0, str(ROOT))

from raftx import Config, ServerState  # noqa: E402
from raftx.network import MemRouter  # noqa: E402
from raftx.network.raft_rpc import MemNetworkFactory, RaftServer, TcpNetworkFactory, serve_on_router  # noqa: E402
from raftx.raft import Raft  # noqa: E402
from raftx.storage import MemLogStore, MemStateMachine, SegmentedLogStore  # noqa: E402
from raftx.types import BasicNode  # noqa: E402


async def start_cluster(scenario: str, directory: str) -> tuple[Raft, Any]:
    """Three nodes; returns the leader and an async cleanup callable."""
    cfg = Config(cluster_name="bench", heartbeat_interval=50, election_timeout_min=300, election_timeout_max=600)
    router = MemRouter()
    nodes: dict[int, Raft] = {}
    closers: list[Any] = []
    addrs: dict[int, BasicNode] = {}
    for i in (1, 2, 3):
        if scenario == "mem":
            raft = await Raft.new(i, cfg, MemNetworkFactory(router), MemLogStore(), MemStateMachine())
            serve_on_router(router, raft)
            addrs[i] = BasicNode(f"mem:{i}")
        else:
            store = await SegmentedLogStore.open(f"{directory}/n{i}", cluster_name="bench", node_id=i)
            raft = await Raft.new(i, cfg, TcpNetworkFactory(), store, MemStateMachine())
            server = RaftServer(raft, "127.0.0.1", 0)
            await server.start()
            addrs[i] = BasicNode(server.addr)
            closers += [store.close, server.close]
        closers.append(raft.shutdown)
        nodes[i] = raft
    await nodes[1].initialize(addrs)
    await nodes[1].wait(10).state(ServerState.LEADER, "node 1 leads")

    async def close() -> None:
        for c in reversed(closers):
            await c()
        await router.close()

    return nodes[1], close


async def measure(leader: Raft, writes: int, inflight: int, size: int) -> dict[str, float]:
    payload = b"x" * size
    latencies: list[float] = []
    per_writer = max(1, writes // inflight)

    async def writer() -> None:
        for _ in range(per_writer):
            t = time.perf_counter()
            await leader.client_write(payload)
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(inflight)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "writes": len(latencies),
        "writes_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
    }


async def child(scenario: str, writes: int, inflight: int, size: int) -> dict[str, Any]:
    from raftx import _core

    with tempfile.TemporaryDirectory() as d:
        leader, close = await start_cluster(scenario, d)
        try:
            await measure(leader, min(writes, 2000), inflight, size)  # warm up
            result = await measure(leader, writes, inflight, size)
        finally:
            await close()
    result["impl"] = _core.IMPLEMENTATION
    return result


def run_child(impl: str, scenario: str, loop: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env["RAFTX_NO_EXTENSIONS"] = "1" if impl == "py" else "0"
    cmd = [sys.executable, __file__, "--child", scenario, "--loop", loop, "--writes", str(args.writes),
           "--inflight", str(args.inflight), "--size", str(args.size)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--writes", type=int, default=10000)
    p.add_argument("--inflight", type=int, default=64)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    p.add_argument("--scenarios", default="mem,tcp")
    p.add_argument("--child", metavar="SCENARIO", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        coro = child(args.child, args.writes, args.inflight, args.size)
        if args.loop == "uvloop":
            import uvloop

            result = uvloop.run(coro)
        else:
            result = asyncio.run(coro)
        print(json.dumps(result))
        return
    print(f"3-node in-process cluster, {args.writes} writes of {args.size} B, {args.inflight} in flight, "
          f"loop={args.loop}")
    print(f"{'scenario':>9} {'twin':>5} {'writes/s':>10} {'p50 ms':>8} {'p99 ms':>8}   c/py")
    for scenario in args.scenarios.split(","):
        rows = {impl: run_child(impl, scenario, args.loop, args) for impl in ("c", "py")}
        for impl, r in rows.items():
            ratio = rows["c"]["writes_per_s"] / rows["py"]["writes_per_s"] if impl == "c" else None
            print(f"{scenario:>9} {r['impl']:>5} {r['writes_per_s']:>10,.0f} {r['p50_ms']:>8.2f} "
                  f"{r['p99_ms']:>8.2f}   {'' if ratio is None else f'{ratio:.2f}x'}")


@pytest.mark.parametrize("scenario", ["mem", "tcp"])
def test_cluster_writes(benchmark: Any, scenario: str, tmp_path: Path) -> None:
    """pytest-benchmark: 1,000 writes (64 in flight) through a 3-node cluster, current twin."""

    async def run() -> None:
        leader, close = await start_cluster(scenario, str(tmp_path / f"r{time.monotonic_ns()}"))
        try:
            await measure(leader, 1000, 64, 100)
        finally:
            await close()

    benchmark.pedantic(lambda: asyncio.run(run()), rounds=3, iterations=1)


if __name__ == "__main__":
    main()
