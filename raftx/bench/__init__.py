"""The cluster benchmark behind ``raftx bench`` (runs from an installed wheel).

* `raftx.bench.cli`: the command (``main(argv)``) and its phases;
* `raftx.bench.report`: the comparisons (ratios, one write at a time) and the report;
* `raftx.bench.runs`: raftx node processes, load inside the leader or through `KVClient`;
* `raftx.bench.pysyncobj_run`: the same workload on PySyncObj (``bench`` extra);
* `raftx.bench.etcd_run`: the same workload on an etcd cluster through `aetcd` (``--vs etcd``);
* `raftx.bench.sweep`, `raftx.bench.scale`, `raftx.bench.plot`: ``--sweep`` (value size,
  cluster size, a large state, a long log) and its charts (``--plot``);
* `raftx.bench.node`: the benchmark node processes;
* `raftx.bench.load`, `raftx.bench.stats`, `raftx.bench.procstats`, `raftx.bench.probes`:
  load generator, latency percentiles and tables, CPU / fsync accounting, machine limits
  and description.
"""

from __future__ import annotations

from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``raftx bench`` (see `raftx.bench.cli`)."""
    from raftx.bench.cli import main as run

    return run(argv)


def __getattr__(name: str) -> Any:  # pragma: no cover - nothing else is exported lazily
    raise AttributeError(name)
