"""CPU time and fsync counts of benchmark processes, sampled through small files.

Each benchmark node process runs a `StatsWriter`: a daemon thread that rewrites
``stats-<name>.json`` (atomically) every ``interval`` seconds with its pid, CPU
seconds used so far (user + system, ``os.times``) and how many fsync/fdatasync
calls the raftx log made (`count_log_fsyncs` wraps `raftx.storage.FileIO`,
the store's I/O object, with a counter; PySyncObj makes none). Whoever drives a
load level reads every file before and after it (`read_stats`) and turns the
difference into CPU % of one core per process and fsyncs per second (`usage`).
The figures are as fine as the sampling interval (default 50 ms) over a level of
a few seconds.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["StatsWriter", "count_log_fsyncs", "fsync_count", "read_stats", "usage"]

_lock = threading.Lock()
_fsyncs = 0
_patched = False


def fsync_count() -> int:
    """fsync + fdatasync calls of the raftx log in this process: through its `FileIO`,
    and those its I/O threads made ahead (`raftx.storage.io_thread.synced_ahead`)."""
    from raftx.storage.io_thread import synced_ahead

    return _fsyncs + synced_ahead()


def count_log_fsyncs() -> None:
    """Count every ``FileIO.fsync`` / ``FileIO.fdatasync`` in this process (idempotent)."""
    global _patched
    from raftx.storage.fileio import FileIO

    if _patched:
        return
    _patched = True
    for name in ("fsync", "fdatasync"):
        original = getattr(FileIO, name)

        def counted(self: Any, fd: int, _original: Any = original) -> None:
            global _fsyncs
            _original(self, fd)
            with _lock:
                _fsyncs += 1

        setattr(FileIO, name, counted)


class StatsWriter:
    """Rewrites ``path`` with this process's CPU seconds and fsync count every ``interval`` s."""

    def __init__(self, path: str | os.PathLike[str], interval: float = 0.05) -> None:
        self.path = Path(path)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raftx-bench-stats", daemon=True)

    def start(self) -> StatsWriter:
        self.write()
        self._thread.start()
        return self

    def write(self) -> None:
        t = os.times()
        doc = {"pid": os.getpid(), "cpu_s": t.user + t.system, "fsyncs": fsync_count(), "t": time.time()}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError:  # the benchmark directory is going away
                return

    def stop(self) -> None:
        self._stop.set()


def read_stats(paths: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """The last sample of each named stats file (missing or half-written files are skipped)."""
    out = {}
    for name, path in paths.items():
        try:
            out[name] = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
    return out


def usage(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], seconds: float,
          extra_cpu: Iterable[tuple[str, float]] = ()) -> dict[str, Any]:
    """CPU % of one core per process and fsyncs/s over ``seconds`` between two samples.

    ``extra_cpu``: ``(name, cpu_seconds)`` measured directly (e.g. the client process).
    A process that restarted in between (another pid) is left out.
    """
    seconds = max(seconds, 1e-9)
    cpu: dict[str, float] = {}
    fsyncs = 0
    for name, a in after.items():
        b = before.get(name)
        if b is None or b.get("pid") != a.get("pid"):
            continue
        cpu[name] = 100.0 * (a["cpu_s"] - b["cpu_s"]) / seconds
        fsyncs += a["fsyncs"] - b["fsyncs"]
    for name, cpu_s in extra_cpu:
        cpu[name] = 100.0 * cpu_s / seconds
    return {"cpu_percent": cpu, "fsyncs_per_s": fsyncs / seconds}
