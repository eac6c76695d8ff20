"""Start, kill, restart and stop local node processes on 127.0.0.1 (tests, CLI, benchmarks).

Two layers:

* `ManagedProcess`: one OS process from an argv, its stdout/stderr in a log file,
  in its own process group (so a kill reaches its children), with `start`,
  `kill` (SIGKILL: a crash, nothing flushed), `terminate` (SIGTERM, then SIGKILL
  after a grace period), `restart` and bounded `wait`. Generic: the PySyncObj
  benchmark runs its workers with it too.
* `LocalCluster`: N raftx key-value nodes (``python -m raftx.kv.server``), each with
  its own data directory under one base directory (a temp dir unless given) and a
  port on 127.0.0.1 picked by the OS. `start` launches them (node 1 with
  ``--init``), `wait_for_leader` polls the nodes' ``kv.status`` until one leader is
  known to a majority, `kill` / `restart` a node, `stop` all, `cleanup` removes a
  temp base directory. ``async with LocalCluster(3) as c:`` does start + wait +
  stop + cleanup.

Every wait is bounded (a ``timeout`` in seconds) and raises `raftx.errors.Timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from raftx.errors import RaftError, Timeout

__all__ = ["LocalCluster", "ManagedProcess", "child_env", "free_ports", "wait_for_file"]

logger = logging.getLogger(__name__)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports that were free on ``host`` a moment ago.

    The sockets are bound together (so the ports differ) and closed before returning;
    a process that binds one soon after normally gets it (SO_REUSEADDR is set by
    asyncio servers). Use port 0 instead wherever the caller can learn the real port.
    """
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with raftx importable in a child
    also when it runs from a checkout without installing (its root goes first on
    ``PYTHONPATH``)."""
    out = dict(os.environ if env is None else env)
    root = str(Path(__file__).resolve().parent.parent)
    out["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [out.get("PYTHONPATH")])])
    return out


class ManagedProcess:
    """One child process (see the module docstring). Not started until `start`."""

    def __init__(self, argv: Sequence[str], *, log_path: str | os.PathLike[str],
                 env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                 name: str = "") -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.name = name or Path(self.argv[0]).name
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        #: How many times the process was started.
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The OS process id of the last start (None before `start`)."""
        return None if self.popen is None else self.popen.pid

    @property
    def alive(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal); None while running or never started."""
        return None if self.popen is None else self.popen.poll()

    def start(self) -> None:
        """Launch the process (its output is appended to ``log_path``)."""
        if self.alive:
            raise RaftError(f"{self.name} is already running (pid {self.pid})")
        self._close_log()
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=self.env, cwd=self.cwd, start_new_session=True,
        )
        self.starts += 1
        logger.info("started %s (pid %d): %s", self.name, self.popen.pid, " ".join(self.argv))

    def _signal_group(self, sig: int) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)  # its own session: the group id is its pid
        except ProcessLookupError:
            pass

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process's group if it runs (e.g. SIGSTOP / SIGCONT: a pause)."""
        self._signal_group(sig)

    def kill(self, timeout: float = 10.0) -> int | None:
        """SIGKILL the process (a crash: nothing is flushed) and reap it."""
        self._signal_group(signal.SIGKILL)
        return self.wait(timeout)

    def terminate(self, grace: float = 10.0) -> int | None:
        """SIGTERM; SIGKILL if still running after ``grace`` seconds. Returns the exit code."""
        if not self.alive:
            return self.returncode
        self._signal_group(signal.SIGTERM)
        try:
            return self.wait(grace)
        except Timeout:
            logger.warning("%s did not stop within %.1fs of SIGTERM; killing it", self.name, grace)
            return self.kill()

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit; `Timeout` if it is still running after ``timeout``."""
        p = self.popen
        if p is None:
            return None
        try:
            code = p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"{self.name} (pid {p.pid}) still running after {timeout}s") from None
        self._close_log()
        return code

    def restart(self) -> None:
        """Start again after it exited (or was killed)."""
        if self.alive:
            raise RaftError(f"{self.name} is still running (pid {self.pid})")
        self.start()

    def log_tail(self, n_bytes: int = 4000) -> str:
        """The last bytes of the process's output, for error messages."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - n_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_for_file(path: str | os.PathLike[str], timeout: float, processes: Sequence[ManagedProcess] = (),
                  on_poll: Callable[[], None] | None = None) -> Path:
    """Wait until ``path`` exists (written atomically by a child); `Timeout` otherwise.

    Fails early with `RaftError` if every one of ``processes`` has exited. Polls
    every 50 ms, calling ``on_poll`` (e.g. to report a child's progress) each time:
    this is for harnesses watching other processes, not for tests' synchronisation
    inside one process.
    """
    p = Path(path)
    deadline = time.monotonic() + timeout
    while not p.exists():
        if on_poll is not None:
            on_poll()
        if processes and not any(proc.alive for proc in processes):
            raise RaftError(f"all processes exited before {p} appeared:\n"
                            + "\n".join(f"--- {x.name}\n{x.log_tail(1500)}" for x in processes))
        if time.monotonic() > deadline:
            raise Timeout(f"{p} did not appear within {timeout}s")
        time.sleep(0.05)
    return p


class LocalCluster:
    """N raftx key-value node processes on 127.0.0.1 (see the module docstring).

    Node ids are 1..n. ``base_dir`` holds ``node<i>/`` (data) and ``node<i>.log``
    (stderr); a temp dir is made (and removed by `cleanup`) when not given.
    ``node_args`` are extra ``raftx.kv.server`` arguments for every node (e.g.
    ``["--no-fsync"]``).
    """

    def __init__(self, n: int = 3, *, base_dir: str | os.PathLike[str] | None = None,
                 cluster_name: str = "raftx-local", node_args: Sequence[str] = (),
                 python: str = sys.executable, env: Mapping[str, str] | None = None) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="raftx-cluster-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_name = cluster_name
        ports = free_ports(n)
        self.addrs: dict[int, str] = {i + 1: f"127.0.0.1:{ports[i]}" for i in range(n)}
        env = child_env(env)
        self.nodes: dict[int, ManagedProcess] = {}
        for i, addr in self.addrs.items():
            argv = [python, "-m", "raftx.kv.server", "--id", str(i), "--listen", addr,
                    "--data-dir", str(self.base_dir / f"node{i}"), "--cluster-name", cluster_name,
                    *[f"--peer={j}={a}" for j, a in self.addrs.items() if j != i], *node_args]
            if i == 1:
                argv.append("--init")
            self.nodes[i] = ManagedProcess(argv, log_path=self.base_dir / f"node{i}.log", env=env,
                                           name=f"raftx-node{i}")

    def client(self, **kwargs: Any) -> Any:
        """A `raftx.kv.KVClient` for this cluster."""
        from raftx.kv.client import KVClient

        kwargs.setdefault("cluster_name", self.cluster_name)
        return KVClient([f"{i}={a}" for i, a in self.addrs.items()], **kwargs)

    def start(self) -> None:
        """Launch every node that is not running."""
        for p in self.nodes.values():
            if not p.alive:
                p.start()

    def kill(self, node_id: int) -> None:
        """SIGKILL node ``node_id`` (a crash)."""
        self.nodes[node_id].kill()

    def terminate(self, node_id: int, grace: float = 10.0) -> int | None:
        """SIGTERM node ``node_id``; its exit code (0 = clean stop)."""
        return self.nodes[node_id].terminate(grace)

    def restart(self, node_id: int) -> None:
        """Start a stopped node again on the same port and data directory."""
        self.nodes[node_id].restart()

    async def statuses(self, timeout: float = 2.0) -> dict[int, dict[str, Any]]:
        """``kv.status`` of every node that answers within ``timeout``."""
        from raftx.kv.client import KVClient

        async def one(i: int) -> tuple[int, dict[str, Any] | None]:
            kv = KVClient([f"{i}={self.addrs[i]}"], cluster_name=self.cluster_name, timeout=timeout,
                          attempt_timeout=timeout)
            try:
                return i, await kv.status(i)
            except RaftError:
                return i, None
            finally:
                await kv.close()

        got = await asyncio.gather(*(one(i) for i, p in self.nodes.items() if p.alive))
        return {i: s for i, s in got if s is not None}

    async def wait_for_leader(self, timeout: float = 30.0, exclude: Sequence[int] = ()) -> int:
        """The leader once a majority of the nodes name it and it says it leads
        (`raftx.errors.Timeout` after ``timeout`` s). ``exclude``: ids not acceptable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        majority = len(self.nodes) // 2 + 1
        while True:
            st = await self.statuses(min(2.0, max(0.1, deadline - loop.time())))
            leaders = [s["leader"] for s in st.values() if s["leader"] is not None]
            for leader in set(leaders):
                if (leaders.count(leader) >= majority and leader not in exclude
                        and st.get(leader, {}).get("state") == "Leader"):
                    return int(leader)
            dead = [i for i, p in self.nodes.items() if p.starts and not p.alive and p.returncode not in (None, -9)]
            if dead:
                raise RaftError(f"node(s) {dead} exited:\n" + "\n".join(
                    f"--- node {i}\n{self.nodes[i].log_tail(1500)}" for i in dead))
            if loop.time() >= deadline:
                raise Timeout(f"no leader within {timeout}s; statuses: {st}")
            await asyncio.sleep(0.1)

    def stop(self, grace: float = 10.0) -> dict[int, int | None]:
        """SIGTERM every node (SIGKILL after ``grace``); their exit codes."""
        return {i: p.terminate(grace) for i, p in self.nodes.items()}

    def cleanup(self) -> None:
        """Kill anything still running and remove the base directory if it was a temp dir."""
        for p in self.nodes.values():
            p.kill()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    async def __aenter__(self) -> LocalCluster:
        try:
            self.start()
            await self.wait_for_leader()
        except BaseException:
            self.cleanup()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await asyncio.to_thread(self.stop)
        finally:
            self.cleanup()
