"""Run a nemesis schedule against real ``raftx serve`` processes and judge it.

`run_nemesis` (see `NemesisConfig`):

1. starts 3 nodes with frequent snapshots (in network namespaces when partitions
   are on), waits for a leader and starts the `Workload`;
2. until ``duration`` runs out: picks a fault (seeded), lets it break and repair the
   cluster, and measures the *recovery time*: from the repair until a probe client's
   write is acknowledged; a node that exits on its own (``raftx serve`` exits 70 on
   `Fatal`) or a cluster that accepts no write within ``recovery_timeout`` fails the run;
3. heals everything, stops the load, waits until every node applied the leader's
   commit index (every node caught up), stops the nodes with SIGTERM (each must exit
   0), runs ``raftx inspect --verify`` on every data directory, and checks the
   history for linearizability (`raftx.testing.linearizability`, `KV` model).

The `NemesisReport` has the counts, every fault with its recovery time, and the
failure (None when the run passed). On failure the history (``history.json``) and
the node logs (``node<i>.log``) stay in ``base_dir``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from raftx.errors import RaftError
from raftx.launcher import child_env
from raftx.testing.linearizability import KV, UNKNOWN, Verdict
from raftx.testing.nemesis import netns
from raftx.testing.nemesis.cluster import NemesisCluster
from raftx.testing.nemesis.faults import FAULTS, PARTITION_FAULTS, FaultContext
from raftx.testing.nemesis.workload import Workload, WorkloadCounts

__all__ = ["FaultRecord", "NemesisConfig", "NemesisFailure", "NemesisReport", "run_nemesis"]

logger = logging.getLogger(__name__)


class NemesisFailure(RaftError):
    """The run found a problem (the message says which)."""


@dataclass
class NemesisConfig:
    """One nemesis run. Times in seconds."""

    duration: float = 60.0
    seed: int | None = None
    #: Partition faults through network namespaces: True (required), False, or None (when available).
    partitions: bool | None = None
    snapshot_every: int = 500
    snapshot_keep_log: int = 100
    clients: int = 4
    workers: int = 8
    keys: int = 40
    max_hold: float = 4.0
    quiet: tuple[float, float] = (0.5, 2.0)
    recovery_timeout: float = 30.0
    catch_up_timeout: float = 60.0
    check_timeout: float = 120.0
    #: Fault names to run once each, in this order (``duration`` is then ignored);
    #: None: random faults (seeded) until ``duration`` runs out.
    schedule: list[str] | None = None
    #: Where data dirs, logs and (on failure) the history go; None: a temp dir, removed on success.
    base_dir: Path | None = None
    keep: bool = False


@dataclass
class FaultRecord:
    name: str
    description: str
    started: float  # seconds since the run began
    recovery: float | None  # seconds from the repair until a write was acknowledged


@dataclass
class NemesisReport:
    seed: int
    partitions: bool
    duration: float
    counts: WorkloadCounts
    faults: list[FaultRecord] = field(default_factory=list)
    catch_up: float | None = None
    verdict: str | None = None
    #: Per node: snapshots received from a leader and installed (counted in its log).
    snapshot_installs: dict[int, int] = field(default_factory=dict)
    #: Per node: the ERROR lines of its log (at most 20).
    node_errors: dict[int, list[str]] = field(default_factory=dict)
    failure: str | None = None
    base_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None

    def summary(self) -> str:
        rec = [f.recovery for f in self.faults if f.recovery is not None]
        lines = [
            f"nemesis seed {self.seed}: {'PASS' if self.ok else 'FAIL'} in {self.duration:.0f}s "
            f"(partitions {'on' if self.partitions else 'off'})",
            f"ops: {self.counts.ok} acknowledged ({self.counts.puts_ok} puts, {self.counts.gets_ok} gets of "
            f"which {self.counts.lease_gets_ok} lease reads), "
            f"{self.counts.puts_unknown} puts with unknown outcome, {self.counts.gets_failed} failed gets",
            f"faults: {len(self.faults)}; recovery (s) "
            + (f"median {sorted(rec)[len(rec) // 2]:.2f}, max {max(rec):.2f}" if rec else "n/a"),
            f"catch-up after healing: {'n/a' if self.catch_up is None else f'{self.catch_up:.2f}s'}; "
            f"linearizability: {self.verdict}",
            f"snapshot installs per node: {self.snapshot_installs}",
        ]
        for i, errors in sorted(self.node_errors.items()):
            lines += [f"  node {i} ERROR: {e}" for e in errors]
        by_name: dict[str, list[float]] = {}
        for f in self.faults:
            by_name.setdefault(f.name, []).append(-1.0 if f.recovery is None else f.recovery)
        lines += [f"  {name:20s} x{len(r):3d}  recovery median {sorted(r)[len(r) // 2]:5.2f}s  max {max(r):5.2f}s"
                  for name, r in sorted(by_name.items())]
        lines += [f"  {f.started:7.1f}s {f.name:20s} recovery {_fmt(f.recovery)}  {f.description}" for f in self.faults]
        if self.failure:
            lines.append(f"FAILURE: {self.failure}")
            lines.append(f"history and node logs: {self.base_dir}")
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:5.2f}s"


def run_nemesis(config: NemesisConfig) -> NemesisReport:
    """Run one nemesis schedule (module docstring); never raises for a found problem:
    it is the report's ``failure``."""
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    reason = netns.unavailable_reason()
    if config.partitions and reason is not None:
        raise NemesisFailure(f"partitions requested but unavailable: {reason}")
    partitions = reason is None if config.partitions is None else config.partitions
    own_dir = config.base_dir is None
    base = Path(tempfile.mkdtemp(prefix="raftx-nemesis-")) if own_dir else Path(config.base_dir)  # type: ignore[arg-type]
    base.mkdir(parents=True, exist_ok=True)
    network = netns.Network([1, 2, 3]) if partitions else None
    report = NemesisReport(seed, partitions, 0.0, WorkloadCounts(), base_dir=str(base))
    t0 = time.monotonic()
    try:
        if network is not None:
            network.open()
        cluster = NemesisCluster(3, base, network=network, node_args=[
            "--snapshot-every", str(config.snapshot_every), "--snapshot-keep-log", str(config.snapshot_keep_log),
            "--heartbeat-ms", "50", "--election-timeout-ms", "300", "600", "--log-level", "INFO"])
        try:
            asyncio.run(_run(config, cluster, rng, report, t0))
        finally:
            cluster.kill_all()
    except NemesisFailure as exc:
        report.failure = str(exc)
    finally:
        if network is not None:
            network.close()
        report.duration = time.monotonic() - t0
        _scan_logs(base, report)
    if report.ok and own_dir and not config.keep:
        shutil.rmtree(base, ignore_errors=True)
    return report


async def _run(config: NemesisConfig, cluster: NemesisCluster, rng: random.Random, report: NemesisReport,
               t0: float) -> None:
    cluster.start()
    await _wait_for_leader(cluster, config.recovery_timeout)
    load = Workload(cluster, clients=config.clients, workers=config.workers, keys=config.keys,
                    rng=random.Random(rng.randrange(1 << 30)))
    report.counts = load.counts
    await load.start()
    faults = dict(FAULTS)
    if report.partitions:
        faults.update(PARTITION_FAULTS)
    names = sorted(faults)
    unknown = [f for f in config.schedule or () if f not in faults]
    if unknown:
        raise NemesisFailure(f"unknown or unavailable faults {unknown}; available: {names}")
    ctx = FaultContext(cluster, rng, config.max_hold)
    try:
        async with cluster.client(timeout=2.0, attempt_timeout=1.0) as probe:
            deadline = t0 + config.duration
            n = 0
            while (n < len(config.schedule) if config.schedule is not None else time.monotonic() < deadline):
                await asyncio.sleep(rng.uniform(*config.quiet))  # load runs undisturbed for a while
                name = rng.choice(names) if config.schedule is None else config.schedule[n]
                started = time.monotonic() - t0
                description = await faults[name](ctx)
                _check_alive(cluster)
                recovery = await _recovery(cluster, probe, n, config.recovery_timeout, description)
                n += 1
                report.faults.append(FaultRecord(name, description, started, recovery))
                logger.info("%6.1fs %s: %s; recovered in %.2fs", started, name, description, recovery)
    finally:
        if cluster.network is not None:
            cluster.network.heal()
        for i in list(cluster.paused):
            cluster.resume(i)
        await load.stop()
    _check_alive(cluster)
    report.catch_up = await _catch_up(cluster, config.catch_up_timeout)
    codes = await asyncio.to_thread(cluster.stop)
    bad = {i: c for i, c in codes.items() if c != 0}
    if bad:
        _fail(report, load, f"nodes did not stop cleanly on SIGTERM (exit codes {bad})")
    for i in sorted(cluster.nodes):
        out = subprocess.run([sys.executable, "-m", "raftx", "inspect", str(cluster.data_dir(i)), "--verify"],
                             capture_output=True, text=True, env=child_env(), timeout=120)
        if out.returncode != 0:
            _fail(report, load, f"raftx inspect --verify failed on node {i}: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    result = await asyncio.to_thread(load.history.check, KV, None, config.check_timeout)
    report.verdict = result.verdict.value
    if result.verdict is Verdict.ILLEGAL:
        _fail(report, load, f"history is not linearizable: {result}")
    if result.verdict is not Verdict.OK:
        logger.warning("linearizability check undecided within %.0fs", config.check_timeout)


async def _wait_for_leader(cluster: NemesisCluster, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        _check_alive(cluster)
        leader = await cluster.leader()
        if leader is not None:
            return leader
        if loop.time() >= deadline:
            raise NemesisFailure(f"no leader within {timeout}s; statuses {await cluster.statuses()}")
        await asyncio.sleep(0.1)  # polling other processes: there is no event to wait on


async def _recovery(cluster: NemesisCluster, probe: Any, n: int, timeout: float, after: str) -> float:
    """Seconds until a probe write is acknowledged (`NemesisFailure` after ``timeout``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        try:
            await probe.put(f"probe-{n}", b"x")
            return loop.time() - start
        except RaftError:
            _check_alive(cluster)
            if loop.time() - start >= timeout:
                raise NemesisFailure(f"no write acknowledged within {timeout}s after: {after}") from None


async def _catch_up(cluster: NemesisCluster, timeout: float) -> float:
    """Seconds until every node applied what the leader had committed once healed."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    target: int | None = None
    st: dict[int, dict[str, Any]] = {}
    while True:
        _check_alive(cluster)
        st = await cluster.statuses()
        if target is None:
            leader = await cluster.leader()
            if leader is not None and leader in st and st[leader]["committed"] is not None:
                target = st[leader]["committed"]
        if target is not None and len(st) == len(cluster.nodes) and all(
            s["running"] and (s["last_applied"] or -1) >= target for s in st.values()
        ):
            return loop.time() - start
        if loop.time() - start >= timeout:
            raise NemesisFailure(f"nodes did not catch up to {target} within {timeout}s: "
                                 + json.dumps({i: {k: s.get(k) for k in ("state", "committed", "last_applied")}
                                               for i, s in st.items()}))
        await asyncio.sleep(0.2)  # polling other processes


def _check_alive(cluster: NemesisCluster) -> None:
    dead = cluster.exited_on_its_own()
    if dead:
        tails = "\n".join(f"--- node {i} (exit {c})\n{cluster.nodes[i].log_tail(3000)}" for i, c in dead.items())
        raise NemesisFailure(f"node(s) {sorted(dead)} exited on their own:\n{tails}")


def _scan_logs(base: Path, report: NemesisReport) -> None:
    for i in (1, 2, 3):
        try:
            lines = (base / f"node{i}.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        report.snapshot_installs[i] = sum(1 for x in lines if "raftx.runtime.apply_worker: installed snapshot" in x)
        errors = [x for x in lines if " ERROR " in x]
        if errors:
            report.node_errors[i] = errors[:20]


def _fail(report: NemesisReport, load: Workload, what: str) -> None:
    write_history(load, Path(report.base_dir) / "history.json")
    raise NemesisFailure(what)


def write_history(load: Workload, path: Path) -> None:
    """The recorded operations as JSON lines: client, input, call, output, return."""
    with open(path, "w") as f:
        for op in load.history.operations():
            f.write(json.dumps({
                "client": op.client_id, "input": list(op.input), "call": op.call,
                "output": "unknown" if op.output is UNKNOWN else op.output,
                "return": None if math.isinf(op.return_time) else op.return_time,
            }) + "\n")


def report_json(report: NemesisReport) -> str:
    """The report as JSON (for ``--json``)."""
    doc = asdict(report)
    doc["ok"] = report.ok
    return json.dumps(doc, indent=2)
