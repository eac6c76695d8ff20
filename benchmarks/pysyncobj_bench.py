"""PySyncObj on the raftx cluster workload: 3 processes on loopback, 100-byte writes.

The same workload as raftx's cluster harness (``benchmarks/cluster_bench.py``):
three PySyncObj nodes, each its own OS process on 127.0.0.1, a replicated dict;
the load is driven from *inside the leader process* in PySyncObj's own benchmark
style (``@replicated`` calls with ``callback=``, i.e. ``sync=False``), keeping
``inflight`` writes outstanding: each callback records the latency (submit ->
committed and applied on the leader) and submits the next write. Reported per
in-flight level: committed writes/s, p50 and p99 latency, failed writes.

PySyncObj's defaults are used (in-memory log, ``appendEntriesUseBatch``, tick
thread with ``autoTickPeriod`` 0.05 s). PySyncObj never fsyncs (its optional
journal is an mmap without msync), so its figures are *not durable* writes; raftx's
are (DESIGN §5). ``--journal`` turns on PySyncObj's file journal for comparison.

Every run is bounded (``--duration`` per level plus fixed margins) and the node
processes are killed on exit, whatever happens::

    python benchmarks/pysyncobj_bench.py                       # in-flight 1, 1000, 10000
    python benchmarks/pysyncobj_bench.py --inflight 1 100 --duration 3 --json out.json

Requires ``pip install pysyncobj`` (in raftx's ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # _cluster_common, and raftx from a checkout

from _cluster_common import latency_summary, print_table  # noqa: E402

from raftx.launcher import ManagedProcess, free_ports, wait_for_file  # noqa: E402

VALUE = b"v" * 100
KEYS = 1000


# -- worker (one PySyncObj node) ---------------------------------------------------------


def _make_node(self_addr: str, partners: list[str], journal: str | None) -> Any:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    class Store(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            conf = SyncObjConf(journalFile=journal, dynamicMembershipChange=False)
            super().__init__(self_addr, partners, conf)
            self._data: dict[int, bytes] = {}
            self._applied = 0

        @replicated  # type: ignore[misc]
        def put(self, key: int, value: bytes) -> int:
            self._data[key] = value
            self._applied += 1
            return self._applied

    return Store()


def _run_level(node: Any, inflight: int, duration: float, max_writes: int) -> dict[str, Any]:
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
        node.put(i % KEYS, VALUE, callback=lambda _res, err, t0=t0: on_done(t0, err))

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

    start = time.perf_counter()
    deadline = start + duration
    with lock:
        for _ in range(min(inflight, max_writes)):
            submit()
    if not finished.wait(duration + 30.0):
        raise TimeoutError(f"in-flight {inflight}: writes still outstanding 30 s after the run")
    elapsed = max(state["last"] - start, 1e-9)
    return {
        "inflight": inflight,
        "writes": len(latencies),
        "failed": state["failed"],
        "seconds": elapsed,
        "writes_per_s": len(latencies) / elapsed,
        **latency_summary(latencies),
    }


def worker(args: argparse.Namespace) -> int:
    addrs = args.addrs.split(",")
    me = addrs[args.index]
    node = _make_node(me, [a for a in addrs if a != me], args.journal)
    deadline = time.monotonic() + 30.0
    while node._getLeader() is None:  # PySyncObj exposes no "leader known" event
        if time.monotonic() > deadline:
            print("no leader within 30 s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    if not node._isLeader():
        time.sleep(args.linger)  # a follower: serve until the driver stops us
        return 0
    out: dict[str, Any] = {"leader": me, "levels": []}
    _run_level(node, 100, 1.0, 2000)  # warm-up
    for inflight in args.inflight:
        out["levels"].append(_run_level(node, inflight, args.duration, args.max_writes))
    tmp = Path(args.result + ".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, args.result)
    time.sleep(args.linger)
    return 0


# -- driver --------------------------------------------------------------------------------


def run(inflight: list[int], duration: float, max_writes: int, journal: bool,
        workdir: str | None = None) -> dict[str, Any]:
    """Start 3 PySyncObj processes, collect the leader's results, stop everything."""
    from importlib.metadata import version

    base = Path(workdir or tempfile.mkdtemp(prefix="pysyncobj-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    addrs = ",".join(f"127.0.0.1:{p}" for p in free_ports(3))
    result = base / "result.json"
    linger = 60.0 + len(inflight) * (duration + 35.0)
    procs = []
    for i in range(3):
        argv = [sys.executable, os.path.abspath(__file__), "--worker", "--index", str(i), "--addrs", addrs,
                "--result", str(result), "--duration", str(duration), "--max-writes", str(max_writes),
                "--linger", str(linger), "--inflight", *map(str, inflight)]
        if journal:
            argv += ["--journal", str(base / f"journal{i}")]
        procs.append(ManagedProcess(argv, log_path=base / f"node{i}.log", name=f"pysyncobj-{i}"))
    try:
        for p in procs:
            p.start()
        wait_for_file(result, 60.0 + len(inflight) * (duration + 35.0), procs)
        out = json.loads(result.read_text())
    finally:
        for p in procs:
            p.kill()
    out.update(library=f"pysyncobj {version('pysyncobj')}",
               durable=False, journal=journal, value_bytes=len(VALUE), nodes=3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 1000, 10000])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per in-flight level")
    ap.add_argument("--max-writes", type=int, default=1_000_000, help="cap per level")
    ap.add_argument("--journal", nargs="?", const="", default=None,
                    help="use PySyncObj's mmap journal (driver: flag; worker: the file)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--addrs", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--linger", type=float, default=60.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    out = run(args.inflight, args.duration, args.max_writes, args.journal is not None)
    print_table(f"{out['library']}: 3 processes on loopback, {out['value_bytes']}-byte values, "
                f"no fsync{' (mmap journal)' if out['journal'] else ' (in-memory log)'}", out["levels"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
