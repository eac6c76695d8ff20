"""The nemesis's ``raftx serve`` processes: in network namespaces, or on loopback.

`NemesisCluster` runs node ``i`` as ``python -m raftx serve`` (one real OS process
each, `raftx.launcher.ManagedProcess`) with its own data directory and log file
under ``base_dir``. With a `raftx.testing.nemesis.netns.Network` the node runs
inside its namespace on ``198.18.T.i:7000``; without one on 127.0.0.1 with a port
the OS picked. Faults act on the processes: `kill` (SIGKILL: nothing flushed),
`pause` / `resume` (SIGSTOP / SIGCONT of its process group), `restart`. A node that
exits although nobody killed it (``raftx serve`` exits 70 on `Fatal`) is reported
by `exited_on_its_own`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from raftx.errors import RaftError
from raftx.launcher import ManagedProcess, child_env, free_ports
from raftx.testing.nemesis.netns import Network

__all__ = ["NemesisCluster"]

logger = logging.getLogger(__name__)

PORT = 7000  # inside a namespace every node has its own address


class NemesisCluster:
    """N node processes (module docstring); ids 1..n, node 1 initializes the cluster."""

    def __init__(self, n: int, base_dir: Path, *, network: Network | None, cluster_name: str = "nemesis",
                 node_args: list[str] | None = None) -> None:
        self.base_dir = base_dir
        self.network = network
        self.cluster_name = cluster_name
        ids = list(range(1, n + 1))
        if network is not None:
            self.addrs = {i: f"{network.addr(i)}:{PORT}" for i in ids}
        else:
            ports = free_ports(n)
            self.addrs = {i: f"127.0.0.1:{ports[i - 1]}" for i in ids}
        env = child_env()
        self.nodes: dict[int, ManagedProcess] = {}
        self.paused: set[int] = set()
        self.killed: set[int] = set()  # by us, since their last start
        for i in ids:
            argv = [sys.executable, "-m", "raftx", "serve", "--id", str(i), "--listen", self.addrs[i],
                    "--data-dir", str(self.data_dir(i)), "--cluster-name", cluster_name,
                    *[f"--peer={j}={a}" for j, a in self.addrs.items() if j != i], *(node_args or [])]
            if i == 1:
                argv.append("--init")
            if network is not None:
                argv = network.exec_prefix(i) + argv
            self.nodes[i] = ManagedProcess(argv, log_path=base_dir / f"node{i}.log", env=env, name=f"node{i}")

    def data_dir(self, i: int) -> Path:
        return self.base_dir / f"node{i}"

    def start(self) -> None:
        for i, p in self.nodes.items():
            if not p.alive:
                self.killed.discard(i)
                p.start()

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (a crash); a paused node is killed too."""
        self.killed.add(i)
        self.nodes[i].kill()
        self.paused.discard(i)

    def restart(self, i: int) -> None:
        self.killed.discard(i)
        self.nodes[i].restart()

    def pause(self, i: int) -> None:
        """SIGSTOP node ``i``'s process group (it keeps its sockets, answers nothing)."""
        self.nodes[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i: int) -> None:
        self.nodes[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def exited_on_its_own(self) -> dict[int, int | None]:
        """Nodes that exited although not killed by us: id -> exit code."""
        return {i: p.returncode for i, p in self.nodes.items()
                if p.starts and not p.alive and i not in self.killed}

    def client(self, **kwargs: Any) -> Any:
        """A `raftx.kv.KVClient` for this cluster."""
        from raftx.kv.client import KVClient

        kwargs.setdefault("cluster_name", self.cluster_name)
        return KVClient([f"{i}={a}" for i, a in self.addrs.items()], **kwargs)

    async def statuses(self, timeout: float = 1.0) -> dict[int, dict[str, Any]]:
        """``kv.status`` of every node that answers within ``timeout`` seconds."""
        async def one(i: int) -> tuple[int, dict[str, Any] | None]:
            kv = self.client(timeout=timeout, attempt_timeout=timeout)
            try:
                return i, await asyncio.wait_for(kv.status(i), timeout + 1.0)
            except (RaftError, TimeoutError, OSError):
                return i, None
            finally:
                await kv.close()

        got = await asyncio.gather(*(one(i) for i, p in self.nodes.items() if p.alive and i not in self.paused))
        return {i: s for i, s in got if s is not None}

    async def leader(self) -> int | None:
        """The node a majority of the answering nodes name as leader and that leads, if any."""
        st = await self.statuses()
        named = [s["leader"] for s in st.values() if s.get("leader") is not None]
        for cand in set(named):
            if named.count(cand) * 2 > len(self.nodes) and st.get(cand, {}).get("state") == "Leader":
                return int(cand)
        return None

    def stop(self, grace: float = 15.0) -> dict[int, int | None]:
        """Resume paused nodes, SIGTERM every node; their exit codes (0 = clean stop)."""
        for i in list(self.paused):
            self.resume(i)
        return {i: p.terminate(grace) for i, p in self.nodes.items()}

    def kill_all(self) -> None:
        for i in list(self.paused):
            self.resume(i)
        for p in self.nodes.values():
            p.kill()
