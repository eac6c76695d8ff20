"""etcd on the raftx cluster workload (``raftx bench --vs etcd``).

Starts ``nodes`` etcd members (the ``etcd`` binary on ``PATH``, e.g. Debian's
``etcd-server`` package) as a fresh cluster on 127.0.0.1 with free ports and data
directories under the benchmark's temp dir, with etcd's shipped settings (its WAL
is fdatasync'ed before a write is acknowledged). The load comes from this process
through a Python gRPC client of etcd's v3 API (`aetcd`, asyncio, ``bench`` extra),
connected to the leader member, at the same in-flight levels as the raftx runs
(`raftx.bench.load.drive`: one ``put`` per write, each of ``value_bytes``), plus a
level at in-flight 1 for one-write-at-a-time latency if the levels lack it.

Per level, next to writes/s and latency: CPU % per member (``/proc/<pid>/stat``)
and of the client, and WAL fsyncs/s from the members' ``/metrics``
(``etcd_disk_wal_fsync_duration_seconds_count``). Every member is SIGKILLed and
its directory removed on the way out, also on Ctrl-C.

`etcd_unavailable` says why the comparison cannot run (no binary, no client),
so that the rest of the benchmark runs without it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raftx.bench.load import drive
from raftx.errors import RaftError, Timeout
from raftx.launcher import ManagedProcess, free_ports

__all__ = ["EtcdCluster", "etcd_unavailable", "etcd_version", "run"]

Progress = Callable[[str], None]

INSTALL_HINT = "Debian/Ubuntu: apt-get install etcd-server etcd-client"
_FSYNC_METRIC = re.compile(rb"^etcd_disk_wal_fsync_duration_seconds_count (\S+)$", re.M)
_LEADER_METRIC = re.compile(rb"^etcd_server_is_leader (\S+)$", re.M)


def etcd_unavailable() -> str | None:
    """Why ``--vs etcd`` cannot run here (None: it can)."""
    if shutil.which("etcd") is None:
        return f"no 'etcd' binary on PATH ({INSTALL_HINT})"
    try:
        import aetcd  # noqa: F401
    except ImportError:
        return "the etcd client 'aetcd' is not installed: pip install 'raftx[bench]' (or: pip install aetcd)"
    return None


def etcd_version(binary: str = "etcd") -> str:
    """``etcd --version``'s version (e.g. ``3.4.23``), or its first line if unparsable."""
    text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"etcd Version:\s*(\S+)", text)
    return m.group(1) if m else text.strip().splitlines()[0] if text.strip() else "unknown"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EtcdCluster:
    """``n`` etcd member processes on 127.0.0.1, data under ``base`` (see the module docstring)."""

    def __init__(self, base: Path, n: int = 3, binary: str = "etcd") -> None:
        self.base = Path(base)
        ports = free_ports(2 * n)
        self.client_ports = ports[:n]
        peers = {f"m{i + 1}": f"http://127.0.0.1:{ports[n + i]}" for i in range(n)}
        initial = ",".join(f"{name}={url}" for name, url in peers.items())
        self.members: list[ManagedProcess] = []
        self.base.mkdir(parents=True, exist_ok=True)
        for i, (name, peer) in enumerate(peers.items()):
            client = f"http://127.0.0.1:{self.client_ports[i]}"
            argv = [binary, "--name", name, "--data-dir", str(self.base / name),
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "raftx-bench-etcd", "--logger", "zap", "--log-level", "error"]
            self.members.append(ManagedProcess(argv, log_path=self.base / f"{name}.log", name=f"etcd-{name}"))

    def start(self) -> None:
        for m in self.members:
            m.start()

    def metrics(self, i: int) -> bytes:
        """Member ``i``'s Prometheus ``/metrics`` text."""
        url = f"http://127.0.0.1:{self.client_ports[i]}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as r:
            return r.read()  # type: ignore[no-any-return]

    def wait_for_leader(self, timeout: float = 30.0) -> int:
        """The index of the member that leads, once one does; `Timeout` / `RaftError` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.members):
                if not m.alive:
                    raise RaftError(f"{m.name} exited:\n{m.log_tail(1500)}")
                try:
                    found = _LEADER_METRIC.search(self.metrics(i))
                except OSError:  # not listening yet
                    continue
                if found and float(found.group(1)) == 1.0:
                    return i
            if time.monotonic() > deadline:
                raise Timeout(f"no etcd leader within {timeout:.0f}s")
            time.sleep(0.05)  # a harness watching other processes (no event to wait on)

    def fsyncs(self) -> float:
        """WAL fsyncs of all members so far."""
        total = 0.0
        for i in range(len(self.members)):
            try:
                found = _FSYNC_METRIC.search(self.metrics(i))
            except OSError:
                continue
            total += float(found.group(1)) if found else 0.0
        return total

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each running member, by name (``m1`` ...)."""
        out = {}
        for m in self.members:
            s = None if m.pid is None else _cpu_seconds(m.pid)
            if s is not None:
                out[m.name.removeprefix("etcd-")] = s
        return out

    def cleanup(self) -> None:
        """SIGKILL every member and remove the data directories."""
        for m in self.members:
            m.kill()
        shutil.rmtree(self.base, ignore_errors=True)


async def _measured(cluster: EtcdCluster, write: Any, inflight: int, duration: float,
                    max_writes: int) -> dict[str, Any]:
    """`drive` plus CPU % per member and of this process, and WAL fsyncs/s."""
    cpu0, f0, c0, t0 = cluster.cpu(), cluster.fsyncs(), os.times(), time.perf_counter()
    level = await drive(write, inflight, duration, max_writes)
    wall = max(time.perf_counter() - t0, 1e-9)
    c1, cpu1, f1 = os.times(), cluster.cpu(), cluster.fsyncs()
    cpu = {name: 100.0 * (cpu1[name] - s) / wall for name, s in cpu0.items() if name in cpu1}
    cpu["client"] = 100.0 * ((c1.user + c1.system) - (c0.user + c0.system)) / wall
    level.update(cpu_percent=cpu, fsyncs_per_s=(f1 - f0) / wall)
    return level


async def run(base: Path, *, nodes: int, inflight: list[int], duration: float, max_writes: int,
              value_bytes: int, progress: Progress = lambda text: None) -> dict[str, Any]:
    """Start an etcd cluster, drive one level per ``inflight`` value (and in-flight 1 for
    latency if absent) through `aetcd` from this process, stop everything."""
    import aetcd
    from importlib.metadata import version

    levels_to_run = list(inflight) if 1 in inflight else [1, *inflight]
    out: dict[str, Any] = {"version": etcd_version(), "client": f"aetcd {version('aetcd')}",
                           "grpcio": version("grpcio"), "nodes": nodes, "value_bytes": value_bytes,
                           "durable": True, "levels": []}
    cluster = EtcdCluster(base, nodes)
    value = b"v" * value_bytes
    try:
        progress(f"etcd {out['version']}: starting {nodes} members")
        cluster.start()
        leader = cluster.wait_for_leader()
        out["leader"] = f"m{leader + 1}"
        async with aetcd.Client("127.0.0.1", cluster.client_ports[leader], timeout=60) as client:

            async def write(key: int) -> None:
                await client.put(b"k%d" % key, value)

            progress("etcd: warm-up")
            await drive(write, 100, 1.0, 2000)
            for k, n in enumerate(levels_to_run):
                progress(f"etcd: in-flight {n} ({k + 1}/{len(levels_to_run)})")
                out["levels"].append(await _measured(cluster, write, n, duration, max_writes))
    finally:
        cluster.cleanup()
    return out
