"""``python -m raftx.testing.nemesis``: run a nemesis schedule (see the package docstring)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from raftx.testing.nemesis.runner import NemesisConfig, report_json, run_nemesis


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m raftx.testing.nemesis", description=__doc__)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of faults (default 600)")
    ap.add_argument("--seed", type=int, help="schedule seed (default: random, printed)")
    ap.add_argument("--out", type=Path, help="data dirs, node logs and (on failure) history.json go here "
                                              "(default: a temp dir, removed when the run passes)")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--partitions", dest="partitions", action="store_true", default=None,
                      help="require network partitions (root, ip netns, tc)")
    part.add_argument("--no-partitions", dest="partitions", action="store_false")
    ap.add_argument("--snapshot-every", type=int, default=500)
    ap.add_argument("--snapshot-keep-log", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s nemesis %(levelname)s %(name)s: %(message)s")
    report = run_nemesis(NemesisConfig(duration=args.duration, seed=args.seed, partitions=args.partitions,
                                       snapshot_every=args.snapshot_every, snapshot_keep_log=args.snapshot_keep_log,
                                       workers=args.workers, base_dir=args.out, keep=args.out is not None))
    print(report_json(report) if args.json else report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
