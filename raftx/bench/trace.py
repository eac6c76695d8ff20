"""Where one write's time goes: ``raftx bench --critical-path`` (issue 15).

Each node process of an in-process run (`raftx.bench.node`) started with
``RAFTX_BENCH_TRACE=DIR`` wraps a fixed list of production methods (`POINTS`)
with a recorder of ``(CLOCK_MONOTONIC ns, label)``; the clock is the
same in every process of the machine, so the nodes' events merge into one
timeline. A writer thread appends them to ``DIR/trace-<pid>.tsv``. With one
write in flight, the leader's ``client_write`` call and return bound each write;
`critical_path` cuts the merged timeline into writes and follows each along
`MILESTONES` (leader, the follower that answered first, leader again), reporting the
median time of each phase.

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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["MILESTONES", "POINTS", "critical_path", "install", "print_critical_path", "run_critical_path"]

#: The environment variable that makes `raftx.bench.node` call `install`.
TRACE_ENV = "RAFTX_BENCH_TRACE"

#: (module, class, method, label, kind): what `MILESTONES` are made of. Kind "call"
#: records when the method is called, "done" also when an async method's coroutine
#: returns, "ret" also when a plain method returns.
POINTS: list[tuple[str, str, str, str, str]] = [
    ("raftx.raft", "Raft", "client_write", "client_write", "done"),
    ("raftx.runtime.core", "RaftCore", "_drain_writes", "core: drain writes, engine step", "call"),
    ("raftx.runtime.core", "RaftCore", "_append", "core: encode entries, cache, store", "ret"),
    ("raftx.storage.segmented", "SegmentedLogStore", "_synced", "log: durable (loop thread)", "call"),
    ("raftx.runtime.replication", "Replicator", "_answered", "replicator: answer taken", "call"),
    ("raftx.network.tcp", "FlowControl", "send", "socket write", "call"),
    ("raftx.network.server_conn", "ServerConnection", "data_received", "server: bytes received", "call"),
    ("raftx.network.client", "_ClientConnection", "data_received", "client: bytes received", "call"),
    ("raftx.raft", "Raft", "start_append_entries", "AppendEntries started", "call"),
    ("raftx.network.server_conn", "ServerConnection", "_answer", "server: answer", "call"),
    ("raftx.runtime.apply_worker", "ApplyWorker", "_apply", "apply worker: apply", "call"),
    ("raftx.runtime.pending", "PendingCalls", "settle_applied", "responders settled", "call"),
]

_events: list[tuple[int, str]] = []


def _wrap(fn: Callable[..., Any], label: str, kind: str) -> Callable[..., Any]:
    clock, record = time.monotonic_ns, _events.append
    if kind == "done":
        @functools.wraps(fn)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            record((clock(), label))
            try:
                return await fn(*args, **kwargs)
            finally:
                record((clock(), label + " returns"))
        return traced_async

    if kind == "ret":
        @functools.wraps(fn)
        def traced_ret(*args: Any, **kwargs: Any) -> Any:
            record((clock(), label))
            try:
                return fn(*args, **kwargs)
            finally:
                record((clock(), label + " returns"))
        return traced_ret

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        record((clock(), label))
        return fn(*args, **kwargs)
    return traced


def install(directory: str | os.PathLike[str]) -> None:
    """Wrap `POINTS` in this process and write its events under ``directory``."""
    for module, cls, method, label, kind in POINTS:
        owner = getattr(importlib.import_module(module), cls)
        setattr(owner, method, _wrap(getattr(owner, method), label, kind))
    path = Path(directory) / f"trace-{os.getpid()}.tsv"

    def flush() -> None:
        done = 0
        with path.open("a") as f:
            while True:
                time.sleep(0.2)
                n = len(_events)
                for t, label in _events[done:n]:
                    f.write(f"{t}\t{os.getpid()}\t{label}\n")
                f.flush()
                done = n

    threading.Thread(target=flush, name="raftx-bench-trace", daemon=True).start()


def _read(directory: Path) -> list[tuple[int, int, str]]:
    events = []
    for f in directory.glob("trace-*.tsv"):
        for line in f.read_text().splitlines():
            t, pid, label = line.split("\t")
            events.append((int(t), int(pid), label))
    events.sort()
    return events


#: The critical path of one write, milestone by milestone: (whose, event). Each is
#: looked up as its first occurrence after the milestone before it, so the phases
#: between them follow the write's causal chain through the leader and the follower
#: that answered first (a majority of three needs one answer).
MILESTONES: list[tuple[str, str]] = [
    ("leader", "core: drain writes, engine step"),
    ("leader", "core: encode entries, cache, store returns"),
    ("leader", "socket write"),
    ("follower", "server: bytes received"),
    ("follower", "AppendEntries started"),
    ("follower", "core: encode entries, cache, store returns"),
    ("follower", "log: durable (loop thread)"),
    ("follower", "server: answer"),
    ("follower", "socket write"),
    ("leader", "client: bytes received"),
    ("leader", "replicator: answer taken"),
    ("leader", "apply worker: apply"),
    ("leader", "responders settled"),
    ("leader", "client_write returns"),
]


def _cut_writes(events: list[tuple[int, int, str]], leader_pid: int) -> list[list[tuple[int, int, str]]]:
    """The events of each write (leader's ``client_write`` call to return), alone in flight."""
    writes: list[list[tuple[int, int, str]]] = []
    current: list[tuple[int, int, str]] | None = None
    depth = 0  # client_write calls not returned yet; a write overlapping another is left out
    for t, pid, label in events:
        if pid == leader_pid and label == "client_write":
            current = [(t, pid, label)] if depth == 0 else None
            depth += 1
        elif pid == leader_pid and label == "client_write returns":
            depth -= 1
            if current is not None and depth == 0:
                current.append((t, pid, label))
                writes.append(current)
            current = None
        elif current is not None:
            current.append((t, pid, label))
    return writes[len(writes) // 10:]  # the first writes warm caches and connections


def critical_path(directory: str | os.PathLike[str], leader_pid: int) -> dict[str, Any]:
    """Where one write's time goes, from the traces under ``directory``: for every write
    that reached each of `MILESTONES` in order, the microseconds between two milestones;
    returned as the median of each phase (``steps``), and the median write (``p50_us``)."""
    writes = _cut_writes(_read(Path(directory)), leader_pid)
    phases: list[list[float]] = [[] for _ in MILESTONES]
    totals = []
    for w in writes:
        first = next((pid for _, pid, label in w
                      if pid != leader_pid and label == "server: answer"), None)
        t_prev, k, times = w[0][0], 0, []
        for t, pid, label in w:
            if k == len(MILESTONES):
                break
            who, want = MILESTONES[k]
            if label == want and pid == (leader_pid if who == "leader" else first):
                times.append(t)
                k += 1
        if k < len(MILESTONES):
            continue  # a write that took another way (a retry, a leader change)
        for n, t in enumerate(times):
            phases[n].append((t - t_prev) / 1000)
            t_prev = t
        totals.append((times[-1] - w[0][0]) / 1000)
    if not totals:
        return {"writes": len(writes), "complete": 0, "steps": [], "p50_us": 0.0}
    steps = [{"step": f"{who}: {label}", "us": statistics.median(v)} for (who, label), v in zip(MILESTONES, phases)]
    return {"writes": len(writes), "complete": len(totals), "steps": steps, "p50_us": statistics.median(totals)}


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
    """Print `critical_path`'s result: the median time of each phase of one write."""
    write(f"critical path of one write ({out['complete']} of {out['writes']} traced writes took every step; "
          f"median us from the step before)\n")
    for line in extra:
        write(line + "\n")
    write("            leader: client_write called\n")
    for s in out["steps"]:
        write(f"  {s['us']:8.1f}  {s['step']}\n")
    write(f"  {sum(s['us'] for s in out['steps']):8.1f}  sum of the medians (median write: {out['p50_us']:.1f} us)\n")
