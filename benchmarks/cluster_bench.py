"""raftx vs PySyncObj on one workload: 3 node processes on loopback, 100-byte writes.

Measured side by side in one run (the machine is noisy; compare ratios, not
absolute figures):

* the hardware's limits: raw ``fdatasync`` rate of a 100-byte append in the data
  directory's file system, and the loopback TCP round trip (asyncio ping-pong);
* **raftx, in-process**: three ``Raft`` node processes (segmented log, fsync on,
  `KVStateMachine`), the load driven from inside the leader process with
  ``client_write`` (``inflight`` writes outstanding), PySyncObj's own benchmark style;
* **raftx, KVClient**: the same cluster as ``python -m raftx.kv.server`` processes
  (`raftx.launcher.LocalCluster`), the load from this process through `KVClient`
  (``inflight`` concurrent ``put``; the client batches them);
* **PySyncObj** (`pysyncobj_bench.py`): in-memory log, no fsync (it has none).

For each in-flight level (default 1, 1000, 10000) it prints committed writes/s and
p50/p99 latency, then the ratios raftx / PySyncObj::

    python benchmarks/cluster_bench.py [--inflight 1 1000 10000] [--duration 3] [--json out.json]
    python benchmarks/cluster_bench.py --skip-pysyncobj --no-fsync   # raftx without fsync (not durable)

Every phase is bounded in time and every child process is killed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # _cluster_common, and raftx from a checkout

from _cluster_common import latency_summary, print_table  # noqa: E402

VALUE = b"v" * 100
KEYS = 1000
CLUSTER = "raftx-bench"


# -- hardware limits -------------------------------------------------------------------------


def fdatasync_rate(directory: Path, seconds: float = 1.0) -> float:
    """100-byte append + fdatasync per second in ``directory``."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, VALUE)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


async def loopback_rtt(rounds: int = 2000) -> float:
    """Median round trip (seconds) of a 100-byte ping-pong over 127.0.0.1 TCP."""

    done = asyncio.Event()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
        writer.close()
        done.set()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        writer.write(VALUE)
        await reader.readexactly(len(VALUE))
        times.append(time.perf_counter() - t0)
    writer.close()
    await asyncio.wait_for(done.wait(), 10.0)  # the echo side saw EOF and finished
    server.close()
    await server.wait_closed()
    times.sort()
    return times[len(times) // 2]


# -- load generators ----------------------------------------------------------------------


async def drive(write: Any, inflight: int, duration: float, max_writes: int) -> dict[str, Any]:
    """Keep ``inflight`` calls of ``write(key)`` outstanding for ``duration`` seconds."""
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
                await write(i % KEYS)
            except Exception:  # counted, not fatal: the figure says how many failed
                failed += 1
                continue
            last = time.perf_counter()
            latencies.append(last - t0)

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(inflight))), duration + 60)
    elapsed = max(last - start, 1e-9)
    return {"inflight": inflight, "writes": len(latencies), "failed": failed, "seconds": elapsed,
            "writes_per_s": len(latencies) / elapsed, **latency_summary(latencies)}


# -- raftx in-process: a worker per node, the load inside the leader ---------------------------


async def _node_worker(args: argparse.Namespace) -> int:
    from raftx import BasicNode, Config, ServerState
    from raftx.kv import KVNodeServer, KVStateMachine
    from raftx.kv.commands import encode_put
    from raftx.network.raft_rpc import TcpNetworkFactory, parse_addr
    from raftx.raft import Raft
    from raftx.storage import SegmentedLogStore

    addrs = dict(enumerate(args.addrs.split(","), start=1))
    me = args.index
    data = Path(args.data_dir)
    store = await SegmentedLogStore.open(data / "log", fsync=not args.no_fsync, cluster_name=CLUSTER, node_id=me)
    sm = KVStateMachine(data / "snap", fsync=not args.no_fsync)
    raft = await Raft.new(me, Config(cluster_name=CLUSTER, election_timeout_min=300, election_timeout_max=600),
                          TcpNetworkFactory(), store, sm)
    host, port = parse_addr(addrs[me])
    server = KVNodeServer(raft, sm, host, port)
    await server.start()
    try:
        if me == 1:
            await raft.initialize({i: BasicNode(a) for i, a in addrs.items()})
        m = await raft.wait(30).metrics(lambda m: m.current_leader is not None, "a leader")
        if m.current_leader != me:
            await asyncio.sleep(args.linger)
            return 0
        await raft.wait(30).state(ServerState.LEADER, "leader")

        async def write(key: int) -> None:
            await raft.client_write(encode_put(b"k%d" % key, VALUE))

        out: dict[str, Any] = {"levels": []}
        await drive(write, 100, 1.0, 2000)  # warm-up
        for inflight in args.inflight:
            out["levels"].append(await drive(write, inflight, args.duration, args.max_writes))
        tmp = Path(args.result + ".tmp")
        tmp.write_text(json.dumps(out))
        os.replace(tmp, args.result)
        await asyncio.sleep(args.linger)
        return 0
    finally:
        await server.close()
        await raft.shutdown()
        await store.close()


def run_in_process(inflight: list[int], duration: float, max_writes: int, no_fsync: bool, base: Path) -> dict[str, Any]:
    from raftx.launcher import ManagedProcess, free_ports, wait_for_file

    addrs = ",".join(f"127.0.0.1:{p}" for p in free_ports(3))
    result = base / "inproc-result.json"
    budget = 60.0 + len(inflight) * (duration + 65.0)
    procs = []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(_HERE.parent), os.environ.get("PYTHONPATH")])))
    for i in (1, 2, 3):
        argv = [sys.executable, os.path.abspath(__file__), "--node-worker", "--index", str(i), "--addrs", addrs,
                "--data-dir", str(base / f"inproc{i}"), "--result", str(result), "--duration", str(duration),
                "--max-writes", str(max_writes), "--linger", str(budget), "--inflight", *map(str, inflight)]
        if no_fsync:
            argv.append("--no-fsync")
        procs.append(ManagedProcess(argv, log_path=base / f"inproc{i}.log", env=env, name=f"raftx-inproc-{i}"))
    try:
        for p in procs:
            p.start()
        wait_for_file(result, budget, procs)
        return json.loads(result.read_text())  # type: ignore[no-any-return]
    finally:
        for p in procs:
            p.kill()


# -- raftx over KVClient ------------------------------------------------------------------------


async def run_kvclient(inflight: list[int], duration: float, max_writes: int, no_fsync: bool,
                       base: Path) -> dict[str, Any]:
    from raftx.launcher import LocalCluster

    cluster = LocalCluster(3, base_dir=base / "kvclient", cluster_name=CLUSTER,
                           node_args=["--log-level", "WARNING", *(["--no-fsync"] if no_fsync else [])])
    try:
        async with cluster, cluster.client(timeout=30.0, max_batch=4096, max_in_flight=4) as kv:
            await cluster.wait_for_leader(30.0)

            async def write(key: int) -> None:
                await kv.put(b"k%d" % key, VALUE)

            await drive(write, 100, 1.0, 2000)  # warm-up
            return {"levels": [await drive(write, n, duration, max_writes) for n in inflight]}
    finally:
        cluster.cleanup()


# -- the comparison ----------------------------------------------------------------------------


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if not a or not b or not b["writes_per_s"]:
        return "-"
    return f"{a['writes_per_s'] / b['writes_per_s']:.2f}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 1000, 10000])
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per in-flight level")
    ap.add_argument("--max-writes", type=int, default=1_000_000)
    ap.add_argument("--no-fsync", action="store_true", help="raftx without fsync (NOT durable)")
    ap.add_argument("--skip-pysyncobj", action="store_true")
    ap.add_argument("--skip-kvclient", action="store_true")
    ap.add_argument("--json", help="also write all results here")
    ap.add_argument("--node-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--addrs", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--linger", type=float, default=60.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.node_worker:
        try:
            import uvloop
            return uvloop.run(_node_worker(args))
        except ImportError:
            return asyncio.run(_node_worker(args))

    import logging
    import platform

    from raftx import _core

    logging.basicConfig(level=logging.ERROR)  # connection retries while nodes start are expected

    base = Path(tempfile.mkdtemp(prefix="raftx-cluster-bench-"))
    out: dict[str, Any] = {"python": platform.python_version(), "implementation": _core.IMPLEMENTATION,
                           "fsync": not args.no_fsync, "value_bytes": len(VALUE), "nodes": 3}
    try:
        out["fdatasync_per_s"] = fdatasync_rate(base)
        out["loopback_rtt_us"] = asyncio.run(loopback_rtt()) * 1e6
        out["raftx_in_process"] = run_in_process(args.inflight, args.duration, args.max_writes, args.no_fsync, base)
        if not args.skip_kvclient:
            out["raftx_kvclient"] = asyncio.run(
                run_kvclient(args.inflight, args.duration, args.max_writes, args.no_fsync, base))
        if not args.skip_pysyncobj:
            import pysyncobj_bench

            out["pysyncobj"] = pysyncobj_bench.run(args.inflight, args.duration, args.max_writes, False,
                                                   str(base / "pysyncobj"))
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)

    print(f"\nmachine: fdatasync {out['fdatasync_per_s']:,.0f}/s (100-byte appends), "
          f"loopback RTT {out['loopback_rtt_us']:.0f} us; python {out['python']}, _core={out['implementation']}")
    durable = "fsync on" if out["fsync"] else "NO fsync"
    print_table(f"raftx, load inside the leader (client_write), {durable}", out["raftx_in_process"]["levels"])
    if "raftx_kvclient" in out:
        print_table(f"raftx, load through KVClient from another process, {durable}", out["raftx_kvclient"]["levels"])
    if "pysyncobj" in out:
        print_table(f"{out['pysyncobj']['library']}, load inside the leader, no fsync", out["pysyncobj"]["levels"])
        print("\nratio of writes/s, raftx / PySyncObj (same in-flight level)")
        print(f"{'in-flight':>10} {'in-process':>12} {'KVClient':>10}")
        for k, lvl in enumerate(out["pysyncobj"]["levels"]):
            inproc = out["raftx_in_process"]["levels"][k]
            kvc = out.get("raftx_kvclient", {}).get("levels", [None] * (k + 1))[k]
            print(f"{lvl['inflight']:>10} {_ratio(inproc, lvl):>12} {_ratio(kvc, lvl):>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
