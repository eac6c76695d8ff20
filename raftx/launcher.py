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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from raftx.errors import RaftError, Timeout

__all__ = ["ManagedProcess", "free_ports", "wait_for_file"]

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
        return None if self.popen is None else self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
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


def wait_for_file(path: str | os.PathLike[str], timeout: float, processes: Sequence[ManagedProcess] = ()) -> Path:
    """Wait until ``path`` exists (written atomically by a child); `Timeout` otherwise.

    Fails early with `RaftError` if every one of ``processes`` has exited. Polls
    every 50 ms: this is for harnesses watching other processes, not for tests'
    synchronisation inside one process.
    """
    p = Path(path)
    deadline = time.monotonic() + timeout
    while not p.exists():
        if processes and not any(proc.alive for proc in processes):
            raise RaftError(f"all processes exited before {p} appeared:\n"
                            + "\n".join(f"--- {x.name}\n{x.log_tail(1500)}" for x in processes))
        if time.monotonic() > deadline:
            raise Timeout(f"{p} did not appear within {timeout}s")
        time.sleep(0.05)
    return p
