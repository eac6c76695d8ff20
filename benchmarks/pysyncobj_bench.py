"""PySyncObj on the raftx cluster workload: 3 processes on loopback, 100-byte writes.

A thin wrapper over `raftx.bench.pysyncobj_run` (what ``raftx bench --vs pysyncobj``
runs): three PySyncObj node processes, the load driven from inside the leader in
PySyncObj's own style, ``inflight`` writes outstanding per level::

    python benchmarks/pysyncobj_bench.py                       # in-flight 1, 1000, 10000
    python benchmarks/pysyncobj_bench.py --inflight 1 100 --duration 3 --json out.json

Requires ``pip install pysyncobj`` (in raftx's ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # raftx from a checkout

from raftx.bench.pysyncobj_run import run  # noqa: E402
from raftx.bench.stats import print_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 1000, 10000])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per in-flight level")
    ap.add_argument("--max-writes", type=int, default=1_000_000, help="cap per level")
    ap.add_argument("--journal", action="store_true", help="use PySyncObj's mmap journal")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pysyncobj-bench-") as base:
        out = run(Path(base), nodes=3, inflight=args.inflight, duration=args.duration, max_writes=args.max_writes,
                  value_bytes=100, journal=args.journal)
    print_table(f"{out['library']}: 3 processes on loopback, {out['value_bytes']}-byte values, "
                f"no fsync{' (mmap journal)' if out['journal'] else ' (in-memory log)'}", out["levels"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
