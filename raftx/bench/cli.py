"""``raftx bench``: a local multi-process cluster benchmark, optionally against PySyncObj.

Starts ``--nodes`` node processes on 127.0.0.1 (default 3; segmented log with fsync
unless ``--no-fsync``) and drives them with ``--inflight`` writes outstanding (several
values: one level each) of ``--value-bytes`` values, for ``--duration`` seconds or
``--writes`` writes per level. The load comes through `raftx.kv.KVClient` over TCP
from this process, or with ``--in-process-client`` from inside the leader with
``Raft.client_write`` (PySyncObj's benchmark style); ``--client both`` runs both.
``--tls`` runs the KVClient load and the nodes' replication over mutual TLS (a
throwaway CA, `raftx.launcher.LocalCluster`). ``--vs pysyncobj`` runs the same workload on PySyncObj (in-process style, its
defaults: in-memory log, no fsync) in the same invocation and prints the ratios;
``--vs etcd`` a cluster of ``--nodes`` etcd members (the ``etcd`` binary on PATH,
WAL fsync on) driven from this process through the `aetcd` gRPC client
(`raftx.bench.etcd_run`), with ratios and one-write-at-a-time latency against it
(skipped with a message when etcd or the client is missing). Both: ``--vs
pysyncobj,etcd`` or the flag twice.

``--sweep`` measures the scale curves instead (`raftx.bench.sweep`: value size,
cluster size, a state of ``--sweep-keys`` keys, a log of ``--sweep-log-entries``
entries); ``--plot DIR`` writes their PNG charts (`raftx.bench.plot`).

``--batch N ...`` (in-process client only) adds, for every N > 1, a run where each
in-flight slot submits ``Raft.client_write_many`` of N values (openraft's batch API;
openraft's own benchmark reports its best figure that way): ``--inflight`` still
counts writes (``inflight // N`` calls outstanding, at least one), every value counts
as one write, and each write's latency is that of its call. These runs are labelled
"client_write_many batches of N" in the tables and stored under
``raftx_in_process_batchN`` in the JSON. KVClient already coalesces concurrent puts
into one request (up to 4096 per request), so ``--batch`` does not apply to it:
``--client kv`` with a batch > 1 is a usage error, ``--client both`` runs KVClient
unbatched. The report ends with each run's best level against PySyncObj's best.

Where one write's latency goes (``--inflight 1``): compare ``--nodes 1`` (no
replication) with ``--nodes 3``, each with and without ``--no-fsync``, and
``--loop asyncio`` with the default uvloop; the difference of two runs is the cost
of what one leaves out (replication round trip, the durable append, the loop).

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

from raftx import cli_config
from raftx.bench import etcd_run, probes, runs, skeleton
from raftx.bench import sweep as sweep_mod
from raftx.bench.plot import plot_sweep, require_matplotlib
from raftx.bench.pysyncobj_run import require_pysyncobj
from raftx.bench.pysyncobj_run import run as run_pysyncobj
from raftx.bench.report import batch_key, compare, latency_vs, print_report, run_title, skeleton_vs
from raftx.bench.trace import print_critical_path, run_critical_path
from raftx.demo import sigterm_as_interrupt
from raftx.errors import RaftError
from raftx.kv.server import GC_GEN0_THRESHOLD, run_on_loop, set_gc_threshold

__all__ = ["build_parser", "main", "run_benchmark"]

MODES = {"kv": ("raftx_kvclient",), "in-process": ("raftx_in_process",),
         "both": ("raftx_in_process", "raftx_kvclient"), "none": ()}
VS = ("pysyncobj", "etcd")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, not {text!r}")
    return v


def _nonnegative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = 0.0
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return v


def _systems(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in VS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected one or more of {', '.join(VS)} (comma-separated), not {text!r}")
    return names


def vs_systems(args: argparse.Namespace) -> list[str]:
    """The systems ``--vs`` asked for, each once, in the order given."""
    return list(dict.fromkeys(n for group in args.vs for n in group))


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
                    help="kv: KVClient over TCP (default); in-process: client_write inside the leader; both; "
                         "none: no raftx run (only the --vs systems)")
    ap.add_argument("--in-process-client", dest="client", action="store_const", const="in-process",
                    help="same as --client in-process")
    ap.add_argument("--batch", type=_positive_int, nargs="+", default=[1], metavar="N",
                    help="in-process client only: also run with client_write_many of N values per call "
                         "(one run per value; --inflight counts writes; default 1 = client_write)")
    ap.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                    help="event loop of the raftx node processes and of the KVClient load generator "
                         "(default: uvloop when installed)")
    ap.add_argument("--vs", type=_systems, action="append", default=[], metavar="SYSTEM[,SYSTEM]",
                    help="also run the workload on pysyncobj and/or etcd (repeat the flag or separate by "
                         "commas) and print raftx / other ratios; etcd needs an 'etcd' binary on PATH "
                         "(skipped with a message otherwise)")
    ap.add_argument("--pysyncobj-journal", action="store_true", help="PySyncObj with its mmap file journal")
    ap.add_argument("--gc-gen0", type=_nonnegative_int, default=GC_GEN0_THRESHOLD, metavar="N",
                    help="generation-0 GC threshold of every process of the run: the nodes (raftx and PySyncObj) "
                         f"and this one, which drives KVClient and etcd's client (default {GC_GEN0_THRESHOLD:,}, "
                         "as raftx serve; 0: Python's 700)")
    ap.add_argument("--tls", action="store_true",
                    help="KVClient run: mutual TLS between the nodes and the load (raftx serve --tls-* with "
                         "certificates from a throwaway CA; needs the 'cryptography' package)")
    sweep = ap.add_argument_group("scale curves (--sweep; raftx.bench.sweep)")
    sweep.add_argument("--sweep", action="store_true",
                       help="instead of the in-flight levels: value size, cluster size, a large state "
                            "(snapshot, restart, memory) and a long log, each with its figures")
    sweep.add_argument("--sweep-values", type=_positive_int, nargs="+", default=sweep_mod.VALUE_SIZES,
                       metavar="BYTES", help="value sizes (default 100 1024 16384 262144)")
    sweep.add_argument("--sweep-nodes", type=_positive_int, nargs="+", default=sweep_mod.CLUSTER_SIZES,
                       metavar="N", help="cluster sizes (default 3 5)")
    sweep.add_argument("--sweep-inflight", type=_positive_int, default=1000, metavar="N",
                       help="writes in flight of the value and cluster size runs (default 1000)")
    sweep.add_argument("--sweep-keys", type=_nonnegative_int, default=sweep_mod.KEYS, metavar="N",
                       help="keys of the state part (default 1000000; 0 skips it)")
    sweep.add_argument("--sweep-log-entries", type=_nonnegative_int, default=sweep_mod.LOG_ENTRIES, metavar="N",
                       help="entries of the log part (default 10000000; 0 skips it)")
    sweep.add_argument("--plot", metavar="DIR", help="--sweep: write PNG charts into DIR (needs matplotlib)")
    ap.add_argument("--critical-path", action="store_true",
                    help="instead of the levels: one write at a time inside the leader of traced node processes, "
                         "and the median time of each step of a write (raftx.bench.trace)")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE ('-': stdout)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return ap


def resolve_loop(choice: str) -> str:
    """``auto``: uvloop when installed, else asyncio."""
    if choice != "auto":
        return choice
    try:
        import uvloop  # noqa: F401
        return "uvloop"
    except ImportError:
        return "asyncio"


def _floor(base: Path, value_bytes: int, progress: Any) -> dict[str, float]:
    """The physical parts of one write, measured in this run: raw fdatasync rate, loopback RTT."""
    progress("measuring the raw fdatasync rate and the loopback round trip")
    return {"fdatasync_per_s": probes.fdatasync_rate(base, record=b"v" * value_bytes),
            "loopback_rtt_us": asyncio.run(probes.loopback_rtt(size=value_bytes)) * 1e6}


def run_benchmark(args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """Run every phase ``args`` asks for; all figures as one JSON-able dict."""
    from raftx import _core

    duration = args.duration if args.duration is not None else (300.0 if args.writes else 3.0)
    max_writes = args.writes or 1_000_000_000
    loop = resolve_loop(args.loop)
    batches = list(dict.fromkeys(args.batch))
    vs = vs_systems(args)
    out: dict[str, Any] = {"format": 1, "machine": probes.machine_info(), "python": platform.python_version(),
                           "implementation": _core.IMPLEMENTATION,
                           "loop": loop, "fsync": not args.no_fsync, "value_bytes": args.value_bytes,
                           "nodes": args.nodes, "inflight": args.inflight, "batch": batches,
                           "duration_s": duration, "writes_per_level": args.writes, "tls": args.tls,
                           "gc_gen0": args.gc_gen0}
    common = dict(nodes=args.nodes, inflight=args.inflight, duration=duration, max_writes=max_writes,
                  value_bytes=args.value_bytes, progress=progress)
    base = Path(tempfile.mkdtemp(prefix="raftx-bench-"))
    try:
        out.update(_floor(base, args.value_bytes, progress))
        for key in MODES[args.client]:
            if key == "raftx_in_process":
                run = runs.run_in_process(base / "inproc", fsync=not args.no_fsync, batch=batches, loop=loop,
                                          gc_gen0=args.gc_gen0, **common)
                for batch in batches:
                    out[batch_key(batch)] = {"leader": run["leader"], "batch": batch,
                                             "title": run_title(batch_key(batch)),
                                             "levels": [lv for lv in run["levels"] if lv["batch"] == batch]}
            else:
                # the KVClient load on the nodes' loop: on asyncio's slower loop it would measure the client
                out[key] = run_on_loop(runs.run_kvclient(base / "kvclient", fsync=not args.no_fsync, loop=loop,
                                                         tls=args.tls, gc_gen0=args.gc_gen0, **common), loop)
                out[key].update(batch=1, title=run_title(key))
        if 1 in args.inflight and MODES[args.client]:
            progress("one write at a time through the Python skeleton of a commit (raftx.bench.skeleton)")
            out["skeleton"] = skeleton.measure(base / "skeleton", value_bytes=args.value_bytes,
                                               duration=min(duration, 2.0), fsync=not args.no_fsync, loop=loop)
            out["skeleton_compare"] = skeleton_vs(out)
        if "pysyncobj" in vs:
            out["pysyncobj"] = run_pysyncobj(base / "pysyncobj", journal=args.pysyncobj_journal,
                                             gc_gen0=args.gc_gen0, **common)
            out.update(compare(out, "pysyncobj"))  # "ratios" and "best"
        if "etcd" in vs:
            why = etcd_run.etcd_unavailable()
            if why is not None:
                progress(f"etcd: not run: {why}")
                out["etcd"] = {"skipped": why}
            else:
                # the same loop as the KVClient load, so that the two clients compare like for like
                out["etcd"] = run_on_loop(etcd_run.run(base / "etcd", **common), loop)
                out["etcd_compare"] = compare(out, "etcd")
                out["etcd_latency"] = latency_vs(out, "etcd")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


def run_critical_path_cmd(args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """``--critical-path``: the probes and one traced run of one write at a time."""
    base = Path(tempfile.mkdtemp(prefix="raftx-bench-"))
    try:
        out: dict[str, Any] = {"format": 1, "machine": probes.machine_info(), "loop": resolve_loop(args.loop),
                               "fsync": not args.no_fsync, "nodes": args.nodes, "value_bytes": args.value_bytes}
        out.update(_floor(base, args.value_bytes, progress))
        out.update(run_critical_path(base / "traced", nodes=args.nodes, duration=args.duration or 3.0,
                                     value_bytes=args.value_bytes, fsync=not args.no_fsync, loop=out["loop"],
                                     progress=progress))
        return out
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raftx bench``; returns the exit code."""
    parser = build_parser()
    args = cli_config.parse_args(parser, argv)
    if args.client == "kv" and any(b > 1 for b in args.batch):
        parser.error("--batch > 1 applies to the in-process client only (--client in-process or both); "
                     "KVClient already coalesces concurrent puts into batched requests")
    if args.plot and not args.sweep:
        parser.error("--plot draws the charts of --sweep")
    if args.critical_path and (args.sweep or args.vs or args.tls):
        parser.error("--critical-path traces raftx alone (no --sweep, --vs or --tls)")
    if args.sweep and (args.vs or args.tls):
        parser.error("--sweep measures raftx alone (no --vs, no --tls)")
    if args.plot:
        try:
            require_matplotlib()
        except RaftError as exc:
            sys.stderr.write(f"raftx bench: {exc}\n")
            return 2
    if args.client == "none" and not args.vs and not args.sweep:
        parser.error("--client none runs nothing without --vs")
    if "pysyncobj" in vs_systems(args):
        try:
            require_pysyncobj()
        except RaftError as exc:
            sys.stderr.write(f"raftx bench: {exc}\n")
            return 2
    logging.basicConfig(stream=sys.stderr, level=logging.CRITICAL)  # node start-up retries are expected
    # This process is the load generator of the KVClient and etcd runs: the same GC
    # setting as every node (100,000 writes in flight are 100,000 live tasks, which
    # Python's default threshold would traverse again and again: half the throughput).
    set_gc_threshold(args.gc_gen0)
    t0 = time.monotonic()

    def progress(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"[{time.monotonic() - t0:6.1f}s] {text}\n")
            sys.stderr.flush()

    try:
        with sigterm_as_interrupt():
            if args.critical_path:
                out = run_critical_path_cmd(args, progress)
            elif args.sweep:
                out = sweep_mod.run_sweep(args, progress, resolve_loop(args.loop))
            else:
                out = run_benchmark(args, progress)
            if args.plot:
                for path in plot_sweep(out, args.plot):
                    progress(f"wrote {path}")
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
        if args.critical_path:
            print_critical_path(out["critical_path"], sys.stdout.write, [
                f"  {out['nodes']} nodes, fsync {'on' if out['fsync'] else 'off'}, loop {out['loop']}; untraced "
                f"parts measured in the same run: fdatasync {out['fdatasync_per_s']:,.0f}/s "
                f"({1e6 / out['fdatasync_per_s']:.0f} us), loopback round trip {out['loopback_rtt_us']:.0f} us; "
                f"the traced level's p50 {out['level']['p50_ms']:.2f} ms"])
        else:
            (sweep_mod.print_sweep if args.sweep else print_report)(out, sys.stdout)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
