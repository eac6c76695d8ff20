"""Where one write's time goes: ``raftx bench --critical-path`` (issue 15).

Each node process of an in-process run (`raftx.bench.node`) started with
``RAFTX_BENCH_TRACE=DIR`` wraps a fixed list of production methods (`POINTS`)
with a recorder of ``(CLOCK_MONOTONIC ns, thread, label)``; the clock is the
same in every process of the machine, so the nodes' events merge into one
timeline. A writer thread appends them to ``DIR/trace-<pid>.tsv``. With one
write in flight, the leader's ``client_write`` call and return bound each write;
`critical_path` cuts the merged timeline into writes and reports each step at its
median time since the call.

The wrapping adds ~1 us per point to the traced run (its absolute latency is a
little higher than an untraced run's); the steps' shares are what it is for.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["POINTS", "critical_path", "install", "print_critical_path", "run_critical_path"]

#: The environment variable that makes `raftx.bench.node` call `install`.
TRACE_ENV = "RAFTX_BENCH_TRACE"

#: (module, class, method, label, kind): kind "call" records when the method is
#: called, "done" also when an async method's coroutine returns, "ret" also when
#: a plain method returns. An empty class names a module-level function (looked up
#: by its module at each call).
POINTS: list[tuple[str, str, str, str, str]] = [
    ("raftx.raft", "Raft", "client_write", "client_write", "done"),
    ("raftx.runtime.core", "RaftCore", "_drain_writes", "core: drain writes, engine step", "call"),
    ("raftx.runtime.core", "RaftCore", "_step", "core: engine step", "call"),
    ("raftx.runtime.core", "RaftCore", "_on_progress", "core: io/apply progress", "call"),
    ("raftx.engine.engine", "Engine", "step", "engine", "ret"),
    ("raftx.runtime.core", "RaftCore", "_append", "core: encode entries, cache, store", "ret"),
    ("raftx.runtime.storage_worker", "StorageWorker", "submit", "storage worker: queued", "call"),
    ("raftx.storage.segmented", "SegmentedLogStore", "try_append", "log: append (pwrite)", "ret"),
    ("raftx.storage.fileio", "FileIO", "fdatasync", "fdatasync", "ret"),
    ("raftx.storage.io_thread", "", "_round", "I/O round (after any sync ahead)", "ret"),
    ("raftx.storage.segmented", "SegmentedLogStore", "_synced", "log: durable (loop thread)", "call"),
    ("raftx.network.raft_rpc", "RpcRaftNetwork", "append_entries", "replicator: send AppendEntries", "done"),
    ("raftx.network.tcp", "FlowControl", "send", "socket write", "call"),
    ("raftx.network.server_conn", "ServerConnection", "data_received", "server: bytes received", "call"),
    ("raftx.network.client", "_ClientConnection", "data_received", "client: bytes received", "call"),
    ("raftx.raft", "Raft", "append_entries", "AppendEntries handler", "done"),
    ("raftx.runtime.apply_worker", "ApplyWorker", "_apply", "apply worker: apply", "call"),
    ("raftx.runtime.pending", "PendingCalls", "settle_applied", "responders settled", "call"),
]

_events: list[tuple[int, int, str]] = []


def _wrap(fn: Callable[..., Any], label: str, kind: str) -> Callable[..., Any]:
    clock, ident, record = time.monotonic_ns, threading.get_ident, _events.append
    if kind == "done":
        @functools.wraps(fn)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            record((clock(), ident(), label))
            try:
                return await fn(*args, **kwargs)
            finally:
                record((clock(), ident(), label + " returns"))
        return traced_async

    if kind == "ret":
        @functools.wraps(fn)
        def traced_ret(*args: Any, **kwargs: Any) -> Any:
            record((clock(), ident(), label))
            try:
                return fn(*args, **kwargs)
            finally:
                record((clock(), ident(), label + " returns"))
        return traced_ret

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        record((clock(), ident(), label))
        return fn(*args, **kwargs)
    return traced


def install(directory: str | os.PathLike[str]) -> None:
    """Wrap `POINTS` in this process and write its events under ``directory``."""
    for module, cls, method, label, kind in POINTS:
        owner = importlib.import_module(module)
        owner = getattr(owner, cls) if cls else owner  # "": a module-level function
        setattr(owner, method, _wrap(getattr(owner, method), label, kind))
    path = Path(directory) / f"trace-{os.getpid()}.tsv"
    main = threading.get_ident()

    def flush() -> None:
        done = 0
        with path.open("a") as f:
            while True:
                time.sleep(0.2)
                n = len(_events)
                for t, tid, label in _events[done:n]:
                    f.write(f"{t}\t{os.getpid()}\t{'loop' if tid == main else 'io'}\t{label}\n")
                f.flush()
                done = n

    threading.Thread(target=flush, name="raftx-bench-trace", daemon=True).start()


def _read(directory: Path) -> list[tuple[int, int, str, str]]:
    events = []
    for f in directory.glob("trace-*.tsv"):
        for line in f.read_text().splitlines():
            t, pid, thread, label = line.split("\t")
            events.append((int(t), int(pid), thread, label))
    events.sort()
    return events


def critical_path(directory: str | os.PathLike[str], leader_pid: int) -> dict[str, Any]:
    """The steps of one write from the traces under ``directory``.

    A write runs from the leader's ``client_write`` call to its return; of the
    followers, the one that answered first is on the critical path (a majority of
    three needs one), so the other's events are left out. Returned: every kind of
    event seen in at least half of the writes (its n-th occurrence in a write
    counted apart) at its median time since the call, in that order."""
    events = _read(Path(directory))
    writes: list[list[tuple[int, int, str]]] = []
    current: list[tuple[int, int, str]] | None = None
    depth = 0  # client_write calls not returned yet; a write overlapping another is left out
    for t, pid, thread, label in events:
        name = label if thread == "loop" else f"{label} ({thread} thread)"
        if pid == leader_pid and label == "client_write":
            current = [(t, pid, name)] if depth == 0 else None
            depth += 1
        elif pid == leader_pid and label == "client_write returns":
            depth -= 1
            if current is not None and depth == 0:
                current.append((t, pid, name))
                writes.append(current)
            current = None
        elif current is not None:
            current.append((t, pid, name))
    writes = writes[len(writes) // 10:]  # the first writes warm caches and connections
    paths: list[list[tuple[int, str]]] = []
    for w in writes:
        first = next((pid for _, pid, name in w if pid != leader_pid
                      and name == "AppendEntries handler returns"), None)
        paths.append([(t, ("leader: " if pid == leader_pid else "follower: ") + name)
                      for t, pid, name in w if pid in (leader_pid, first)])
    if not paths:
        return {"writes": 0, "steps": [], "p50_us": 0.0}
    # Each event of a write, keyed by what it is and its how-many-th occurrence in the
    # write, at its median offset from the write's start (robust where the order of
    # two events varies from write to write, as the nodes run in parallel).
    offsets: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        t0, seen = path[0][0], Counter[str]()
        for t, name in path[1:]:
            seen[name] += 1
            key = name if seen[name] == 1 else f"{name} #{seen[name]}"
            offsets[key].append((t - t0) / 1000)
    steps: list[dict[str, Any]] = sorted(
        ({"step": k, "at_us": statistics.median(v), "share": len(v) / len(paths)}
         for k, v in offsets.items() if len(v) >= len(paths) / 2), key=lambda d: float(d["at_us"]))
    return {"writes": len(paths), "steps": steps,
            "p50_us": statistics.median((p[-1][0] - p[0][0]) / 1000 for p in paths)}


def run_critical_path(base: Path, *, nodes: int, duration: float, value_bytes: int, fsync: bool, loop: str,
                      progress: Callable[[str], None]) -> dict[str, Any]:
    """One write at a time inside the leader of ``nodes`` traced node processes; the
    level's figures and `critical_path` of its writes."""
    from raftx.bench.runs import run_in_process

    traces = base / "trace"
    traces.mkdir(parents=True)
    run = run_in_process(base / "inproc", nodes=nodes, inflight=[1], duration=duration, max_writes=1_000_000_000,
                         value_bytes=value_bytes, fsync=fsync, progress=progress, loop=loop,
                         env={TRACE_ENV: str(traces)})
    stats = json.loads((base / "inproc" / f"stats-node{run['leader']}.json").read_text())
    return {"level": run["levels"][0], "critical_path": critical_path(traces, int(stats["pid"]))}


def print_critical_path(out: dict[str, Any], write: Callable[[str], Any], extra: Iterable[str] = ()) -> None:
    """Print `critical_path`'s result: each step at its median time since the call."""
    write(f"critical path of one write ({out['writes']} traced writes; each step at its median time since "
          f"client_write was called, and the median gap from the step before)\n")
    for line in extra:
        write(line + "\n")
    write(f"  {'at us':>8}  {'+us':>6}  step\n")
    before = 0.0
    for s in out["steps"]:
        share = "" if s["share"] > 0.95 else f"   (in {s['share']:.0%} of the writes)"
        write(f"  {s['at_us']:8.1f}  {s['at_us'] - before:6.1f}  {s['step']}{share}\n")
        before = s["at_us"]
    write(f"  median write: {out['p50_us']:.1f} us\n")
