"""PySyncObj on the raftx cluster workload: node processes on loopback, small writes.

The same workload as the raftx runs (`raftx.bench.runs`): N PySyncObj nodes, each its
own OS process on 127.0.0.1, a replicated dict; the load is driven from *inside the
leader process* in PySyncObj's own benchmark style (``@replicated`` calls with
``callback=``, i.e. ``sync=False``), keeping ``inflight`` writes outstanding: each
callback records the latency (submit -> committed and applied on the leader) and
submits the next write.

PySyncObj's defaults are used (in-memory log, ``appendEntriesUseBatch``, tick thread
with ``autoTickPeriod`` 0.05 s). PySyncObj never fsyncs (its optional journal is an
mmap without msync), so its figures are *not durable* writes; raftx's are.
``journal=True`` turns on PySyncObj's file journal for comparison.

Needs ``pip install pysyncobj`` (in raftx's ``bench`` extra): `require_pysyncobj`
raises `PySyncObjMissing` with that hint otherwise.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from raftx.bench.procstats import StatsWriter, read_stats, usage
from raftx.bench.stats import latency_summary
from raftx.errors import RaftError
from raftx.kv.server import set_gc_threshold

__all__ = ["PySyncObjMissing", "require_pysyncobj", "run"]

KEYS = 1000


class PySyncObjMissing(RaftError):
    """``--vs pysyncobj`` without PySyncObj installed."""


def require_pysyncobj() -> str:
    """The installed PySyncObj version; `PySyncObjMissing` (with how to install it) if absent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        import pysyncobj  # noqa: F401

        return version("pysyncobj")
    except (ImportError, PackageNotFoundError):
        raise PySyncObjMissing("--vs pysyncobj needs PySyncObj: pip install 'raftx[bench]' "
                               "(or: pip install pysyncobj)") from None


# -- worker (one PySyncObj node) ---------------------------------------------------------


def _make_node(self_addr: str, partners: list[str], journal: str | None) -> Any:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    class Store(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            conf = SyncObjConf(journalFile=journal, dynamicMembershipChange=False)
            super().__init__(self_addr, partners, conf)
            self._data: dict[int, bytes] = {}
            self._applied = 0

        @replicated  # type: ignore[untyped-decorator]
        def put(self, key: int, value: bytes) -> int:
            self._data[key] = value
            self._applied += 1
            return self._applied

    return Store()


def _run_level(node: Any, inflight: int, duration: float, max_writes: int, value: bytes,
               stats: dict[str, Path]) -> dict[str, Any]:
    """Keep ``inflight`` writes outstanding for ``duration`` s (or ``max_writes``)."""
    from pysyncobj import FAIL_REASON

    lock = threading.Lock()
    finished = threading.Event()
    latencies: list[float] = []
    state = {"issued": 0, "completed": 0, "failed": 0, "last": 0.0}
    deadline = 0.0

    def submit() -> None:  # called with the lock held
        i = state["issued"]
        state["issued"] = i + 1
        t0 = time.perf_counter()
        node.put(i % KEYS, value, callback=lambda _res, err, t0=t0: on_done(t0, err))

    def on_done(t0: float, err: Any) -> None:
        now = time.perf_counter()
        with lock:
            state["completed"] += 1
            if err == FAIL_REASON.SUCCESS:
                latencies.append(now - t0)
                state["last"] = now
            else:
                state["failed"] += 1
            if now < deadline and state["issued"] < max_writes:
                submit()
            elif state["completed"] == state["issued"]:
                finished.set()

    before = read_stats(stats)
    start = time.perf_counter()
    deadline = start + duration
    with lock:
        for _ in range(min(inflight, max_writes)):
            submit()
    if not finished.wait(duration + 30.0):
        raise TimeoutError(f"in-flight {inflight}: writes still outstanding 30 s after the run")
    wall = time.perf_counter() - start
    after = read_stats(stats)
    elapsed = max(state["last"] - start, 1e-9)
    return {"inflight": inflight, "writes": len(latencies), "failed": state["failed"], "seconds": elapsed,
            "writes_per_s": len(latencies) / elapsed, **latency_summary(latencies),
            **usage(before, after, wall)}


def worker(args: argparse.Namespace) -> int:
    from raftx.bench.node import write_json

    addrs = args.addrs.split(",")
    me = addrs[args.index]
    writer = StatsWriter(Path(args.stats_dir) / f"stats-node{args.index + 1}.json").start()
    node = _make_node(me, [a for a in addrs if a != me], args.journal)
    deadline = time.monotonic() + 30.0
    while node._getLeader() is None:  # PySyncObj exposes no "leader known" event
        if time.monotonic() > deadline:
            sys.stderr.write("no leader within 30 s\n")
            return 1
        time.sleep(0.05)
    if not node._isLeader():
        time.sleep(args.linger)  # a follower: serve until the driver stops us
        return 0
    stats = {f"node{i + 1}": Path(args.stats_dir) / f"stats-node{i + 1}.json" for i in range(len(addrs))}
    value = b"v" * args.value_bytes
    out: dict[str, Any] = {"leader": me, "levels": []}
    write_json(args.progress, {"phase": "warm-up"})
    _run_level(node, 100, 1.0, 2000, value, stats)
    for k, inflight in enumerate(args.inflight):
        write_json(args.progress, {"phase": f"in-flight {inflight} ({k + 1}/{len(args.inflight)})"})
        out["levels"].append(_run_level(node, inflight, args.duration, args.max_writes, value, stats))
    write_json(args.result, out)
    writer.stop()
    time.sleep(args.linger)
    return 0


# -- driver --------------------------------------------------------------------------------


def run(base: Path, *, nodes: int, inflight: list[int], duration: float, max_writes: int, value_bytes: int,
        journal: bool = False, progress: Any = lambda text: None, gc_gen0: int = 0) -> dict[str, Any]:
    """Start ``nodes`` PySyncObj processes, collect the leader's results, stop everything
    (``gc_gen0``: their generation-0 GC threshold, as raftx's nodes get; 0: Python's)."""
    from raftx.bench.runs import wait_for_result
    from raftx.launcher import ManagedProcess, child_env, free_ports

    lib = require_pysyncobj()
    base.mkdir(parents=True, exist_ok=True)
    addrs = ",".join(f"127.0.0.1:{p}" for p in free_ports(nodes))
    result, progress_file = base / "result.json", base / "progress.json"
    budget = 60.0 + len(inflight) * (duration + 35.0)
    procs = []
    for i in range(nodes):
        argv = [sys.executable, "-m", "raftx.bench.pysyncobj_run", "--index", str(i), "--addrs", addrs,
                "--stats-dir", str(base), "--result", str(result), "--progress", str(progress_file),
                "--duration", str(duration), "--max-writes", str(max_writes), "--value-bytes", str(value_bytes),
                "--linger", str(budget), "--inflight", *map(str, inflight), "--gc-gen0", str(gc_gen0)]
        if journal:
            argv += ["--journal", str(base / f"journal{i}")]
        procs.append(ManagedProcess(argv, log_path=base / f"node{i}.log", env=child_env(), name=f"pysyncobj-{i}"))
    try:
        for p in procs:
            p.start()
        out = wait_for_result(result, progress_file, budget, procs, progress, "PySyncObj")
    finally:
        for p in procs:
            p.kill()
    out.update(library=f"pysyncobj {lib}", durable=False, journal=journal, value_bytes=value_bytes, nodes=nodes,
               gc_gen0=gc_gen0)
    return out


def main(argv: list[str] | None = None) -> int:
    """The worker entry point (``python -m raftx.bench.pysyncobj_run``): one PySyncObj node."""
    ap = argparse.ArgumentParser(prog="python -m raftx.bench.pysyncobj_run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--addrs", required=True)
    ap.add_argument("--stats-dir", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--progress", required=True)
    ap.add_argument("--inflight", type=int, nargs="+", default=[1])
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--max-writes", type=int, default=1_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--journal", default=None)
    ap.add_argument("--linger", type=float, default=60.0)
    ap.add_argument("--gc-gen0", type=int, default=0)
    args = ap.parse_args(argv)
    set_gc_threshold(args.gc_gen0)
    return worker(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
