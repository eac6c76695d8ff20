"""raftx vs PySyncObj on one workload: 3 node processes on loopback, 100-byte writes.

A thin wrapper over `raftx.bench` (``raftx bench``, which also runs from an installed
wheel) keeping this script's flags. By default it runs, side by side in one
invocation: the machine's fdatasync rate and loopback RTT; raftx with the load inside
the leader (``client_write``); raftx through `KVClient`; PySyncObj; then the ratios::

    python benchmarks/cluster_bench.py [--inflight 1 1000 10000] [--duration 3] [--json out.json]
    python benchmarks/cluster_bench.py --skip-pysyncobj --no-fsync   # raftx without fsync (not durable)

Same as ``raftx bench --client both --vs pysyncobj --inflight ... --duration ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # raftx from a checkout

from raftx.bench.cli import main as bench_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 1000, 10000])
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per in-flight level")
    ap.add_argument("--max-writes", type=int, default=None, help="cap on writes per level")
    ap.add_argument("--no-fsync", action="store_true", help="raftx without fsync (NOT durable)")
    ap.add_argument("--skip-pysyncobj", action="store_true")
    ap.add_argument("--skip-kvclient", action="store_true")
    ap.add_argument("--json", help="also write all results here")
    args = ap.parse_args(argv)
    new = ["--inflight", *map(str, args.inflight), "--duration", str(args.duration),
           "--client", "in-process" if args.skip_kvclient else "both"]
    if args.max_writes is not None:
        new += ["--writes", str(args.max_writes)]
    if args.no_fsync:
        new.append("--no-fsync")
    if not args.skip_pysyncobj:
        new += ["--vs", "pysyncobj"]
    if args.json:
        new += ["--json", args.json]
    return bench_main(new)


if __name__ == "__main__":
    sys.exit(main())
