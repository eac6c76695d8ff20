"""The machine's limits, measured in the same run as the cluster: the raw fdatasync rate
of a small append and the loopback TCP round trip."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

__all__ = ["fdatasync_rate", "loopback_rtt"]


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
