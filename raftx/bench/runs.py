"""The raftx runs of the cluster benchmark: node processes on 127.0.0.1, one load level
per in-flight value, each level measured with `raftx.bench.load.measured_level`.

* `run_in_process`: the load is generated inside the leader process with
  ``Raft.client_write`` (`raftx.bench.node` ``inproc``), PySyncObj's benchmark style,
  or in batches with ``Raft.client_write_many`` (one level per in-flight value and
  batch size, all in one cluster);
* `run_kvclient`: the nodes are ``raftx serve`` key-value nodes (`raftx.launcher.LocalCluster`),
  the load comes from this process through `raftx.kv.KVClient` (concurrent ``put``
  calls; the client batches them).

Every phase is bounded in time and every node process is killed on the way out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from raftx.bench.load import drive, measured_level
from raftx.errors import RaftError, Timeout
from raftx.kv.server import GC_GEN0_THRESHOLD
from raftx.launcher import LocalCluster, ManagedProcess, child_env, free_ports, wait_for_file

__all__ = ["run_in_process", "run_kvclient", "wait_for_result"]

CLUSTER = "raftx-bench"

Progress = Callable[[str], None]


def wait_for_result(result: Path, progress_file: Path, budget: float, procs: Sequence[ManagedProcess],
                    progress: Progress, label: str) -> dict[str, Any]:
    """Wait (at most ``budget`` s) for the leader's ``result`` file, reporting the phases it
    writes to ``progress_file``; `RaftError` with the logs if every process exited."""
    shown = None

    def report_phase() -> None:
        nonlocal shown
        try:
            phase = json.loads(progress_file.read_text()).get("phase")
        except (OSError, ValueError):
            phase = None
        if phase is not None and phase != shown:
            progress(f"{label}: {phase}")
            shown = phase

    try:
        wait_for_file(result, budget, procs, on_poll=report_phase)
    except Timeout:
        raise Timeout(f"{label}: no result within {budget:.0f}s") from None
    except RaftError as exc:
        raise RaftError(f"{label}: {exc}") from exc
    return json.loads(result.read_text())  # type: ignore[no-any-return]


def run_in_process(base: Path, *, nodes: int, inflight: list[int], duration: float, max_writes: int,
                   value_bytes: int, fsync: bool, progress: Progress, batch: Sequence[int] = (1,),
                   loop: str = "auto", env: Mapping[str, str] | None = None,
                   gc_gen0: int = GC_GEN0_THRESHOLD) -> dict[str, Any]:
    """Node processes with the load inside the leader (``client_write``, or
    ``client_write_many`` for each ``batch`` size > 1); the leader's results, one level
    per (batch, in-flight) pair, batch-major, each level carrying its ``batch``.
    ``env``: more environment variables for the node processes; ``gc_gen0``: their
    generation-0 GC threshold (0: Python's)."""
    base.mkdir(parents=True, exist_ok=True)
    addrs = ",".join(f"127.0.0.1:{p}" for p in free_ports(nodes))
    result, progress_file = base / "result.json", base / "progress.json"
    budget = 60.0 + len(inflight) * len(batch) * (duration + 65.0)
    env = {**child_env(), **(env or {})}
    procs = []
    for i in range(1, nodes + 1):
        argv = [sys.executable, "-m", "raftx.bench.node", "inproc", "--stats", str(base / f"stats-node{i}.json"),
                "--index", str(i), "--addrs", addrs, "--data-dir", str(base / f"node{i}"),
                "--stats-dir", str(base), "--result", str(result), "--progress", str(progress_file),
                "--duration", str(duration), "--max-writes", str(max_writes), "--value-bytes", str(value_bytes),
                "--linger", str(budget), "--loop", loop, "--inflight", *map(str, inflight),
                "--batch", *map(str, batch), "--gc-gen0", str(gc_gen0)]
        if not fsync:
            argv.append("--no-fsync")
        procs.append(ManagedProcess(argv, log_path=base / f"node{i}.log", env=env, name=f"raftx-inproc-{i}"))
    try:
        for p in procs:
            p.start()
        return wait_for_result(result, progress_file, budget, procs, progress, "raftx in-process")
    finally:
        for p in procs:
            p.kill()


async def run_kvclient(base: Path, *, nodes: int, inflight: list[int], duration: float, max_writes: int,
                       value_bytes: int, fsync: bool, progress: Progress, loop: str = "auto",
                       tls: bool = False, gc_gen0: int = GC_GEN0_THRESHOLD) -> dict[str, Any]:
    """``raftx serve`` node processes (event loop ``loop``), the load from this process
    through `KVClient` (which coalesces concurrent puts into batches itself); ``tls``:
    mutual TLS everywhere (`LocalCluster` makes a throwaway CA)."""
    base.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(nodes, base_dir=base, cluster_name=CLUSTER, tls=tls,
                           node_args=["--log-level", "WARNING", "--loop", loop, "--gc-gen0", str(gc_gen0),
                                      *([] if fsync else ["--no-fsync"])])
    stats = {f"node{i}": base / f"stats-node{i}.json" for i in cluster.nodes}
    for i, p in cluster.nodes.items():  # the same node, with CPU / fsync accounting around it
        assert p.argv[1:3] == ["-m", "raftx.kv.server"], p.argv
        p.argv[1:3] = ["-m", "raftx.bench.node", "kv", "--stats", str(stats[f"node{i}"]), "--"]
    value = b"v" * value_bytes
    try:
        progress("raftx KVClient: starting the nodes")
        async with cluster, cluster.client(timeout=30.0, max_batch=4096, max_in_flight=4) as kv:
            await cluster.wait_for_leader(30.0)

            async def write(key: int) -> None:
                await kv.put(b"k%d" % key, value)

            progress("raftx KVClient: warm-up")
            await drive(write, 100, 1.0, 2000)
            levels = []
            for k, n in enumerate(inflight):
                progress(f"raftx KVClient: in-flight {n} ({k + 1}/{len(inflight)})")
                levels.append(await measured_level(write, n, duration, max_writes, stats, client_name="client"))
            return {"levels": levels}
    finally:
        cluster.cleanup()
