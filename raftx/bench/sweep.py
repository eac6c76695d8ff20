"""``raftx bench --sweep``: the scale curves in one command.

Measured in one run, next to the machine's limits of the same run (fdatasync rate,
loopback round trip, the disk's streaming bandwidth with `raftx.bench.probes.disk_bandwidth`):

* **value size** (``--sweep-values``, default 100 B, 1 KiB, 16 KiB, 256 KiB): a 3-node
  cluster, load inside the leader (``client_write``, one call per value), fsync on,
  ``--sweep-inflight`` writes in flight (capped at 16 MiB of values in flight):
  writes/s and MB/s of values, and the share of the disk's bandwidth the cluster
  used (every node writes its own log on this one disk: nodes x MB/s);
* **cluster size** (``--sweep-nodes``, default 3 and 5): 100-byte values at in-flight 1
  and ``--sweep-inflight``;
* **state** (``--sweep-keys``, default 1,000,000; 0 skips): snapshot build, transfer and
  install time, restart time and memory per key (`raftx.bench.scale` ``state`` /
  ``learner`` / ``restart``; default `raftx.Config`, so the learner catches up as a
  production one does);
* **log** (``--sweep-log-entries``, default 10,000,000; 0 skips): open time and index
  memory of a log that long (`raftx.bench.scale` ``log``).

``--plot DIR`` writes the charts (`raftx.bench.plot`). Every process is killed and
every temp dir removed on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from raftx.bench import probes, runs
from raftx.bench.stats import print_table
from raftx.launcher import ManagedProcess, child_env, free_ports, wait_for_file

__all__ = ["print_sweep", "run_sweep"]

Progress = Callable[[str], None]

VALUE_SIZES = [100, 1024, 16 * 1024, 256 * 1024]
CLUSTER_SIZES = [3, 5]
KEYS = 1_000_000
LOG_ENTRIES = 10_000_000
MAX_BYTES_IN_FLIGHT = 16 << 20
"""Values in flight of a value-size run at most: with 64 MiB of 256 KiB values in flight
(frames of up to 64 MiB) the 3-node leader lost its leadership on this 2-core machine."""
BUDGET = 1800.0
"""Seconds a state or log phase may take (a loaded 2-core machine at the default sizes)."""


def _scale_proc(base: Path, kind: str, *argv: str) -> ManagedProcess:
    return ManagedProcess([sys.executable, "-m", "raftx.bench.scale", kind, *argv], log_path=base / f"{kind}.log",
                          env=child_env(), name=f"raftx-scale-{kind}")


def _state(base: Path, keys: int, value_bytes: int, loop: str, progress: Progress) -> dict[str, Any]:
    """1 voter loads ``keys`` keys, snapshots, feeds a new learner by InstallSnapshot, then
    is killed (-9) and restarted on its data directory."""
    base.mkdir(parents=True)
    p1, p2 = free_ports(2)
    common = ["--loop", loop, "--value-bytes", str(value_bytes)]
    learner = _scale_proc(base, "learner", "--data-dir", str(base / "n2"), "--addr", f"127.0.0.1:{p2}",
                          "--result", str(base / "learner.json"), *common)
    leader = _scale_proc(base, "state", "--data-dir", str(base / "n1"), "--addr", f"127.0.0.1:{p1}",
                         "--learner", f"127.0.0.1:{p2}", "--keys", str(keys), "--result", str(base / "state.json"),
                         "--progress", str(base / "progress.json"), *common)
    restart = _scale_proc(base, "restart", "--data-dir", str(base / "n1"), "--addr", f"127.0.0.1:{p1}",
                          "--result", str(base / "restart.json"), *common)
    procs = [learner, leader, restart]
    try:
        learner.start()
        leader.start()
        state = runs.wait_for_result(base / "state.json", base / "progress.json", BUDGET, [leader], progress,
                                     f"state of {keys:,} keys")
        wait_for_file(base / "learner.json", 60.0, [learner])
        got = json.loads((base / "learner.json").read_text())
        leader.kill()  # a crash: the restart reads the snapshot and the log back
        learner.kill()
        progress(f"state of {keys:,} keys: restarting the node after kill -9")
        spawned = time.time()
        restart.start()
        wait_for_file(base / "restart.json", BUDGET, [restart])
        again = json.loads((base / "restart.json").read_text())
    finally:
        for p in procs:
            p.kill()
    return {**state, "snapshot_send_start_s": got["receive_started"] - state["add_learner_started"],
            "snapshot_transfer_s": got["install_started"] - got["receive_started"],
            "snapshot_install_s": got["install_s"], "learner_keys": got["keys"],
            "snapshot_receives": got["receives"], "snapshot_installs": got["installs"],
            "state_bytes_per_key": got["state_rss_growth_bytes"] / keys,
            "leader_bytes_per_key": state["leader_rss_growth_bytes"] / keys,
            "restart_s": again["ready"] - spawned, "restart_process_start_s": again["started"] - spawned,
            "restart_log_open_s": again["log_open_s"],
            "restart_snapshot_load_s": again["snapshot_load_s"], "restart_keys": again["keys"]}


def _log(base: Path, entries: int, value_bytes: int, progress: Progress) -> dict[str, Any]:
    base.mkdir(parents=True)
    proc = _scale_proc(base, "log", "--data-dir", str(base / "log"), "--entries", str(entries),
                       "--value-bytes", str(value_bytes), "--result", str(base / "log.json"),
                       "--progress", str(base / "progress.json"))
    try:
        proc.start()
        return runs.wait_for_result(base / "log.json", base / "progress.json", BUDGET, [proc], progress,
                                    f"log of {entries:,} entries")
    finally:
        proc.kill()


def run_sweep(args: argparse.Namespace, progress: Progress, loop: str) -> dict[str, Any]:
    """Every part of the sweep ``args`` asks for; all figures as one JSON-able dict."""
    from raftx import _core

    duration = args.duration if args.duration is not None else (300.0 if args.writes else 3.0)
    max_writes = args.writes or 1_000_000_000
    fsync = not args.no_fsync
    out: dict[str, Any] = {"format": 1, "kind": "sweep", "machine": probes.machine_info(),
                           "python": platform.python_version(), "implementation": _core.IMPLEMENTATION,
                           "loop": loop, "fsync": fsync, "duration_s": duration, "writes_per_level": args.writes,
                           "inflight": args.sweep_inflight}
    base = Path(tempfile.mkdtemp(prefix="raftx-sweep-"))
    try:
        progress("measuring the raw fdatasync rate, the disk's bandwidth and the loopback round trip")
        out["fdatasync_per_s"] = probes.fdatasync_rate(base)
        out["disk_mb_per_s"] = probes.disk_bandwidth(base) / 1e6
        out["loopback_rtt_us"] = asyncio.run(probes.loopback_rtt()) * 1e6
        common: dict[str, Any] = dict(duration=duration, max_writes=max_writes, fsync=fsync, loop=loop,
                                      progress=progress)
        out["value_sizes"] = []
        for size in args.sweep_values:
            n = max(1, min(args.sweep_inflight, MAX_BYTES_IN_FLIGHT // size))
            progress(f"value size {size:,} B, in-flight {n}")
            run = runs.run_in_process(base / f"value{size}", nodes=3, inflight=[n], value_bytes=size, **common)
            (lv,) = run["levels"]
            mb = lv["writes_per_s"] * size / 1e6
            out["value_sizes"].append({"value_bytes": size, "nodes": 3, **lv, "mb_per_s": mb,
                                       "disk_share": 3 * mb / out["disk_mb_per_s"]})
        out["cluster_sizes"] = []
        for nodes in args.sweep_nodes:
            progress(f"cluster of {nodes} nodes")
            levels = sorted({1, args.sweep_inflight})
            run = runs.run_in_process(base / f"nodes{nodes}", nodes=nodes, inflight=levels, value_bytes=100,
                                      **common)
            out["cluster_sizes"].append({"nodes": nodes, "value_bytes": 100, "levels": run["levels"]})
        if args.sweep_keys:
            out["state"] = _state(base / "state", args.sweep_keys, 100, loop, progress)
        if args.sweep_log_entries:
            out["log"] = _log(base / "log", args.sweep_log_entries, 100, progress)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


def print_sweep(out: dict[str, Any], stream: TextIO) -> None:
    """The human report of a sweep."""
    m = out["machine"]
    stream.write(f"\nmachine: {m['cpu_model']}, {m['cpu_count']} cores; fdatasync {out['fdatasync_per_s']:,.0f}/s, "
                 f"disk {out['disk_mb_per_s']:,.0f} MB/s (4 MiB appends + fdatasync), loopback RTT "
                 f"{out['loopback_rtt_us']:.0f} us; python {out['python']}, _core={out['implementation']}, "
                 f"loop={out['loop']}, fsync {'on' if out['fsync'] else 'OFF'}"
                 + (f"; raftx {m['raftx_commit'][:12]}" if m.get("raftx_commit") else "") + "\n")
    if out["value_sizes"]:
        stream.write("\nvalue size (3 nodes, client_write in the leader)\n")
        stream.write(f"{'bytes':>8} {'in-flight':>9} {'writes/s':>10} {'MB/s':>8} {'x3 / disk':>9} "
                     f"{'p50 ms':>8} {'p99 ms':>8} {'failed':>7}\n")
        for v in out["value_sizes"]:
            stream.write(f"{v['value_bytes']:>8,} {v['inflight']:>9} {v['writes_per_s']:>10,.0f} {v['mb_per_s']:>8.1f} "
                         f"{v['disk_share']:>9.0%} {v['p50_ms']:>8.2f} {v['p99_ms']:>8.2f} {v['failed']:>7}\n")
        for v in out["value_sizes"]:
            if v.get("errors"):
                kinds = ", ".join(f"{name} x{n}" for name, n in sorted(v["errors"].items()))
                stream.write(f"{'':>8} {v['value_bytes']:,} B: writes failed with {kinds}\n")
    for c in out["cluster_sizes"]:
        print_table(f"cluster of {c['nodes']} nodes, 100-byte values, client_write in the leader", c["levels"], stream)
    if "state" in out:
        s = out["state"]
        stream.write(f"\nstate of {s['keys']:,} keys ({s['value_bytes']}-byte values): loaded in {s['load_s']:.1f} s; "
                     f"snapshot {s['snapshot_bytes'] / 1e6:,.1f} MB built in {s['snapshot_build_s']:.2f} s, "
                     f"transferred in {s['snapshot_transfer_s']:.2f} s (+{s['snapshot_send_start_s']:.2f} s to "
                     f"start; sent "
                     f"{s['snapshot_receives']}x), installed in {s['snapshot_install_s']:.2f} s; restart after kill -9 "
                     f"{s['restart_s']:.2f} s (process start {s['restart_process_start_s']:.2f} s, log open {s['restart_log_open_s']:.2f} s, snapshot load "
                     f"{s['restart_snapshot_load_s']:.2f} s, then election and log replay); memory per key {s['state_bytes_per_key']:,.0f} B "
                     f"(state alone), {s['leader_bytes_per_key']:,.0f} B (leader after the load)\n")
    if "log" in out:
        lg = out["log"]
        stream.write(f"\nlog of {lg['entries']:,} entries ({lg['disk_bytes'] / 1e6:,.0f} MB): written in "
                     f"{lg['build_s']:.1f} s, opened in {lg['open_s']:.2f} s, index {lg['index_bytes'] / 1e6:,.1f} MB "
                     f"({lg['index_bytes_per_entry']:.1f} B per entry)\n")
