"""The least one replicated, durable write costs in Python on this machine: a skeleton
of one Raft commit with nothing of raftx in it, run by `raftx bench` next to raftx so
that raftx's one-write latency is reported against it (`measure`).

Three processes on loopback, each on an asyncio loop (the bench's: uvloop when
installed), a leader and two followers. One write: the leader hands the append +
fdatasync of the value to a worker thread (as raftx's log I/O thread does) and sends
the value to both followers at once; each follower appends, fdatasyncs on its loop
and answers with one byte; the write is done when the leader's own sync and one
follower's answer are in (a majority of three, Raft §5.3). In ``client`` mode a
fourth process sends each write to the leader and waits for its answer (the extra
round trip of `raftx.kv.KVClient`). Frames are a 4-byte length and the value: no
log index, no encoding, no state machine. What is left is what no Python
implementation on this machine avoids: the processes sharing the cores, their loops
waking up, three socket hops, one thread hop and two fdatasyncs in parallel.

Run as ``python -m raftx.bench.skeleton ROLE ...`` by `measure` (not meant for users).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["measure"]

_LEN = struct.Struct("<I")


class _Frames(asyncio.Protocol):
    """Length-prefixed frames in, each handed to ``on_frame``."""

    def __init__(self, on_frame: Any) -> None:
        self.on_frame = on_frame
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 4:
            (n,) = _LEN.unpack_from(buf)
            if len(buf) < 4 + n:
                return
            frame = bytes(buf[4:4 + n])
            del buf[:4 + n]
            self.on_frame(self, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _Acks(asyncio.Protocol):
    """A follower's one-byte answers, counted into the leader's current write."""

    def __init__(self, leader: _Leader) -> None:
        self.leader = leader

    def data_received(self, data: bytes) -> None:
        for _ in range(len(data)):
            self.leader.acked()


class _Leader:
    def __init__(self, path: Path, fsync: bool) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.fsync = fsync
        self.pool = ThreadPoolExecutor(1)
        self.followers: list[asyncio.Transport] = []
        self.waiter: asyncio.Future[None] | None = None

    def _append(self, value: bytes) -> None:
        os.write(self.fd, value)
        if self.fsync:
            os.fdatasync(self.fd)

    def acked(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)  # the first answer makes a majority with the leader

    async def commit(self, value: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        synced = loop.run_in_executor(self.pool, self._append, value)
        frame = _LEN.pack(len(value)) + value
        for t in self.followers:
            t.write(frame)
        await synced
        await self.waiter


def _follower(directory: str, fsync: bool) -> None:
    fd = os.open(Path(directory) / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_frame(conn: _Frames, value: bytes) -> None:
        os.write(fd, value)
        if fsync:
            os.fdatasync(fd)
        assert conn.transport is not None
        conn.transport.write(b"\x01")

    _run(_serve_one(on_frame))  # until the leader hangs up: the run is over


async def _serve_one(on_frame: Any) -> None:
    """Listen on a free port (told to the parent), serve the first connection's frames
    with ``on_frame`` until it closes."""
    first: asyncio.Future[_Frames] = asyncio.get_running_loop().create_future()

    def factory() -> _Frames:
        conn = _Frames(on_frame)
        if not first.done():
            first.set_result(conn)
        return conn

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    _say(server.sockets[0].getsockname()[1])
    await (await first).lost
    server.close()


async def _timed(commit: Any, value: bytes, duration: float) -> list[float]:
    times = []
    end = time.perf_counter() + duration
    while (t0 := time.perf_counter()) < end:
        await commit(value)
        times.append(time.perf_counter() - t0)
    return times


def _leader(directory: str, fsync: bool, ports: str, value_bytes: int, duration: float, client: bool) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        leader = _Leader(Path(directory) / "log", fsync)
        for port in ports.split(","):
            transport, _ = await loop.create_connection(lambda: _Acks(leader), "127.0.0.1", int(port))
            leader.followers.append(transport)
        if not client:
            times = await _timed(leader.commit, b"v" * value_bytes, duration)
            _say(json.dumps(times))
        else:
            def on_frame(conn: _Frames, value: bytes) -> None:
                async def answer() -> None:
                    await leader.commit(value)
                    assert conn.transport is not None
                    conn.transport.write(b"\x01")
                loop.create_task(answer())  # a task per request, as any asyncio server has

            await _serve_one(on_frame)  # until the client hangs up
        for t in leader.followers:
            t.close()
        leader.pool.shutdown()

    _run(main())


def _client(port: int, value_bytes: int, duration: float) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[None] = asyncio.Queue()

        class Answers(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                for _ in range(len(data)):
                    answers.put_nowait(None)

        transport, _ = await loop.create_connection(Answers, "127.0.0.1", port)
        value = b"v" * value_bytes
        frame = _LEN.pack(len(value)) + value

        async def commit(_: bytes) -> None:
            transport.write(frame)
            await answers.get()

        times = await _timed(commit, value, duration)
        transport.close()
        _say(json.dumps(times))

    _run(main())


def _say(line: object) -> None:
    """One line to the parent (`measure` reads the child's stdout)."""
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def _run(coro: Any) -> None:
    if os.environ.get("RAFTX_SKELETON_LOOP") == "uvloop":
        import uvloop
        uvloop.run(coro)
    else:
        asyncio.run(coro)


def _spawn(*args: str, loop: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAFTX_SKELETON_LOOP": loop}
    return subprocess.Popen([sys.executable, "-m", "raftx.bench.skeleton", *args], stdout=subprocess.PIPE,
                            text=True, env=env)


def _quantiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"writes": len(times), "p50_ms": times[len(times) // 2] * 1e3,
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3}


def measure(directory: Path, *, value_bytes: int = 100, duration: float = 2.0, fsync: bool = True,
            loop: str = "uvloop") -> dict[str, Any]:
    """One write at a time through the skeleton for ``duration`` seconds, in the leader
    and from a client process: ``{"leader": {...}, "client": {...}}``, each with
    ``writes``, ``p50_ms`` and ``p99_ms``."""
    out: dict[str, Any] = {}
    for mode in ("leader", "client"):
        procs: list[subprocess.Popen[str]] = []
        try:
            ports = []
            for i in (2, 3):
                d = directory / f"{mode}-follower{i}"
                d.mkdir(parents=True)
                procs.append(_spawn("follower", str(d), str(int(fsync)), loop=loop))
                assert procs[-1].stdout is not None
                ports.append(procs[-1].stdout.readline().strip())
            d = directory / f"{mode}-leader"
            d.mkdir(parents=True)
            leader = _spawn("leader", str(d), str(int(fsync)), ",".join(ports), str(value_bytes), str(duration),
                            str(int(mode == "client")), loop=loop)
            procs.append(leader)
            assert leader.stdout is not None
            if mode == "client":
                port = leader.stdout.readline().strip()
                client = _spawn("client", port, str(value_bytes), str(duration), loop=loop)
                procs.append(client)
                assert client.stdout is not None
                times = json.loads(client.stdout.readline())
            else:
                times = json.loads(leader.stdout.readline())
            out[mode] = _quantiles(times)
            for p in reversed(procs):
                p.wait(timeout=30)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return out


if __name__ == "__main__":  # pragma: no cover - the child processes of `measure`
    role, rest = sys.argv[1], sys.argv[2:]
    if role == "follower":
        _follower(rest[0], rest[1] == "1")
    elif role == "leader":
        _leader(rest[0], rest[1] == "1", rest[2], int(rest[3]), float(rest[4]), rest[5] == "1")
    else:
        _client(int(rest[0]), int(rest[1]), float(rest[2]))
