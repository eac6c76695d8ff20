"""``raftx bench``: a local multi-process cluster benchmark, optionally against PySyncObj.

Starts ``--nodes`` node processes on 127.0.0.1 (default 3; segmented log with fsync
unless ``--no-fsync``) and drives them with ``--inflight`` writes outstanding (several
values: one level each) of ``--value-bytes`` values, for ``--duration`` seconds or
``--writes`` writes per level. The load comes through `raftx.kv.KVClient` over TCP
from this process, or with ``--in-process-client`` from inside the leader with
``Raft.client_write`` (PySyncObj's benchmark style); ``--client both`` runs both.
``--vs pysyncobj`` runs the same workload on PySyncObj (in-process style, its
defaults: in-memory log, no fsync) in the same invocation and prints the ratios.

Printed per level: writes/s, p50 / p99 / p99.9 latency, failed writes, fsyncs per
second (all nodes' log fsyncs) and CPU per process (% of one core). Also measured in
the same run: the raw fdatasync rate of a small append in the data directory's file
system and the loopback TCP round trip. ``--json FILE`` (``-`` for stdout) writes
every figure. Progress goes to stderr. Compare ratios, not absolute figures: the
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from raftx.bench import probes, runs
from raftx.bench.pysyncobj_run import require_pysyncobj
from raftx.bench.pysyncobj_run import run as run_pysyncobj
from raftx.bench.stats import print_table
from raftx.demo import sigterm_as_interrupt
from raftx.errors import RaftError

__all__ = ["build_parser", "main", "run_benchmark"]

MODES = {"kv": ("raftx_kvclient",), "in-process": ("raftx_in_process",),
         "both": ("raftx_in_process", "raftx_kvclient")}
TITLES = {"raftx_in_process": "raftx, load inside the leader (client_write)",
          "raftx_kvclient": "raftx, load through KVClient from another process"}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, not {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = 0.0
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="raftx bench", description=__doc__.split("\n\n")[0],
                                 epilog="example: raftx bench --inflight 1 100 1000 --duration 3 --vs pysyncobj")
    ap.add_argument("--nodes", type=_positive_int, default=3, help="cluster size (default 3)")
    ap.add_argument("--inflight", type=_positive_int, nargs="+", default=[1, 1000, 10000], metavar="N",
                    help="writes outstanding; one level per value (default 1 1000 10000)")
    ap.add_argument("--duration", type=_positive_float, default=None, metavar="SECONDS",
                    help="seconds per level (default 3, or up to 300 with --writes)")
    ap.add_argument("--writes", type=_positive_int, default=None, metavar="N",
                    help="writes per level (stop after N instead of after --duration)")
    ap.add_argument("--value-bytes", type=_positive_int, default=100, help="value size (default 100)")
    ap.add_argument("--no-fsync", action="store_true", help="raftx without fsync (NOT durable)")
    ap.add_argument("--client", choices=sorted(MODES), default="kv",
                    help="kv: KVClient over TCP (default); in-process: client_write inside the leader; both")
    ap.add_argument("--in-process-client", dest="client", action="store_const", const="in-process",
                    help="same as --client in-process")
    ap.add_argument("--vs", choices=["pysyncobj"], help="also run the workload on PySyncObj and print ratios")
    ap.add_argument("--pysyncobj-journal", action="store_true", help="PySyncObj with its mmap file journal")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE ('-': stdout)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return ap


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not b["writes_per_s"]:
        return None
    return a["writes_per_s"] / b["writes_per_s"]  # type: ignore[no-any-return]


def run_benchmark(args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """Run every phase ``args`` asks for; all figures as one JSON-able dict."""
    from raftx import _core

    duration = args.duration if args.duration is not None else (300.0 if args.writes else 3.0)
    max_writes = args.writes or 1_000_000_000
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    out: dict[str, Any] = {"format": 1, "python": platform.python_version(), "implementation": _core.IMPLEMENTATION,
                           "loop": loop, "fsync": not args.no_fsync, "value_bytes": args.value_bytes,
                           "nodes": args.nodes, "inflight": args.inflight, "duration_s": duration,
                           "writes_per_level": args.writes}
    common = dict(nodes=args.nodes, inflight=args.inflight, duration=duration, max_writes=max_writes,
                  value_bytes=args.value_bytes, progress=progress)
    base = Path(tempfile.mkdtemp(prefix="raftx-bench-"))
    try:
        progress("measuring the raw fdatasync rate and the loopback round trip")
        out["fdatasync_per_s"] = probes.fdatasync_rate(base, record=b"v" * args.value_bytes)
        out["loopback_rtt_us"] = asyncio.run(probes.loopback_rtt(size=args.value_bytes)) * 1e6
        for key in MODES[args.client]:
            if key == "raftx_in_process":
                out[key] = runs.run_in_process(base / "inproc", fsync=not args.no_fsync, **common)
            else:
                out[key] = asyncio.run(runs.run_kvclient(base / "kvclient", fsync=not args.no_fsync, **common))
        if args.vs == "pysyncobj":
            out["pysyncobj"] = run_pysyncobj(base / "pysyncobj", journal=args.pysyncobj_journal, **common)
            out["ratios"] = {key: [_ratio(a, b) for a, b in zip(out[key]["levels"], out["pysyncobj"]["levels"])]
                             for key in MODES[args.client]}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


def print_report(out: dict[str, Any], stream: TextIO) -> None:
    """The human report: machine limits, one table per run, ratios."""
    stream.write(f"\nmachine: fdatasync {out['fdatasync_per_s']:,.0f}/s ({out['value_bytes']}-byte appends), "
                 f"loopback RTT {out['loopback_rtt_us']:.0f} us; python {out['python']}, "
                 f"_core={out['implementation']}, loop={out['loop']}, {out['nodes']} nodes\n")
    durable = "fsync on" if out["fsync"] else "NO fsync"
    keys = [k for k in ("raftx_in_process", "raftx_kvclient") if k in out]
    for key in keys:
        print_table(f"{TITLES[key]}, {durable}", out[key]["levels"], stream)
    if "pysyncobj" in out:
        ps = out["pysyncobj"]
        print_table(f"{ps['library']}, load inside the leader, no fsync"
                    + (" (mmap journal)" if ps["journal"] else " (in-memory log)"), ps["levels"], stream)
        stream.write("\nratio of writes/s, raftx / PySyncObj (same in-flight level)\n")
        stream.write(f"{'in-flight':>10}" + "".join(f" {k.removeprefix('raftx_'):>12}" for k in keys) + "\n")
        for i, lvl in enumerate(ps["levels"]):
            cells = [out["ratios"][k][i] for k in keys]
            stream.write(f"{lvl['inflight']:>10}"
                         + "".join(f" {'-' if c is None else f'{c:.2f}x':>12}" for c in cells) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raftx bench``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.vs == "pysyncobj":
        try:
            require_pysyncobj()
        except RaftError as exc:
            sys.stderr.write(f"raftx bench: {exc}\n")
            return 2
    logging.basicConfig(stream=sys.stderr, level=logging.CRITICAL)  # node start-up retries are expected
    t0 = time.monotonic()

    def progress(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"[{time.monotonic() - t0:6.1f}s] {text}\n")
            sys.stderr.flush()

    try:
        with sigterm_as_interrupt():
            out = run_benchmark(args, progress)
    except KeyboardInterrupt:
        sys.stderr.write("raftx bench: interrupted; node processes killed\n")
        return 130
    except RaftError as exc:
        sys.stderr.write(f"raftx bench: {type(exc).__name__}: {exc}\n")
        return 1
    if args.json == "-":
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(out, sys.stdout)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
