"""``python -m raftx.testing.simulation --seeds 0:5000 --jobs 2``: a long seed sweep.

Prints every failing seed's report (invariant, trace tail, replay command) and a
summary; exits 1 if any seed failed.
"""

from __future__ import annotations

import argparse
import sys
import time

from raftx.errors import ConfigError
from raftx.testing.simulation.runner import SimOptions, SimResult
from raftx.testing.simulation.sweep import parse_seeds, sweep


def main(argv: list[str] | None = None) -> int:
    d = SimOptions()
    p = argparse.ArgumentParser(prog="python -m raftx.testing.simulation", description=__doc__)
    p.add_argument("--seeds", default="0:200", help="A:B (B exclusive), N, or a comma list (default 0:200)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--safety-ms", type=int, default=d.safety_ms, help="virtual ms of the safety phase")
    p.add_argument("--nodes", type=int, default=d.nodes)
    p.add_argument("--voters", type=int, default=d.initial_voters, help="initial voters")
    p.add_argument("--progress", type=int, default=0, help="print a line every N seeds")
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        opts = SimOptions(nodes=args.nodes, initial_voters=args.voters, safety_ms=args.safety_ms).validate()
    except ConfigError as exc:
        p.error(str(exc))
    started = time.monotonic()  # reporting only; never reaches a simulation
    done = 0

    def on_result(r: SimResult) -> None:
        nonlocal done
        done += 1
        if not r.ok:
            sys.stdout.write(r.report() + "\n")
            sys.stdout.flush()
        if args.progress and done % args.progress == 0:
            sys.stdout.write(f"... {done}/{len(seeds)} seeds, {time.monotonic() - started:.0f}s\n")
            sys.stdout.flush()

    try:
        summary = sweep(seeds, args.jobs, opts, on_result)
    except ConfigError as exc:
        p.error(str(exc))
    sys.stdout.write(summary.describe() + "\n")
    sys.stdout.write(f"wall time {time.monotonic() - started:.1f}s with {args.jobs} job(s), "
                     f"safety phase {opts.safety_ms} ms\n")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
