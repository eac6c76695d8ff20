"""The machine's limits, measured in the same run as the cluster: the raw fdatasync rate
of a small append, the disk's streaming bandwidth (large appends, each fdatasync'ed)
and the loopback TCP round trip; and what the machine and the code are (`machine_info`)."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["disk_bandwidth", "fdatasync_rate", "loopback_rtt", "machine_info"]


def fdatasync_rate(directory: Path, seconds: float = 1.0, record: bytes = b"v" * 100) -> float:
    """Appends of ``record`` + ``fdatasync`` per second in ``directory`` (its file system)."""
    path = Path(directory) / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, record)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def disk_bandwidth(directory: Path, seconds: float = 1.0, block: int = 4 << 20, limit: int = 512 << 20) -> float:
    """Bytes per second of ``block``-byte appends, each followed by ``fdatasync``, in
    ``directory`` for ``seconds`` (or until ``limit`` bytes were written): the most a
    log that syncs large batches can write."""
    path = Path(directory) / "bandwidth-probe"
    data = os.urandom(block)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        written = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds and written < limit:
            written += os.write(fd, data)
            os.fdatasync(fd)
        return written / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit(root: Path) -> str | None:
    """The commit of the checkout raftx runs from (``+dirty`` with local changes), if any."""
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def machine_info() -> dict[str, Any]:
    """CPU model and cores, kernel, Python and raftx version and commit (when run from a
    git checkout), for the JSON report."""
    import raftx

    return {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "raftx_version": raftx.__version__,
            "raftx_commit": _git_commit(Path(raftx.__file__).resolve().parent.parent)}


async def loopback_rtt(rounds: int = 2000, size: int = 100) -> float:
    """Median round trip (seconds) of a ``size``-byte ping-pong over 127.0.0.1 TCP."""
    done = asyncio.Event()
    message = b"p" * size

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
        writer.close()
        done.set()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        writer.write(message)
        await reader.readexactly(size)
        times.append(time.perf_counter() - t0)
    writer.close()
    await asyncio.wait_for(done.wait(), 10.0)  # the echo side saw EOF and finished
    server.close()
    await server.wait_closed()
    times.sort()
    return times[len(times) // 2]
