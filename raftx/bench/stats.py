"""Latency percentiles and the result tables of the cluster benchmark."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["cpu_us_per_write", "latency_summary", "percentile", "print_table"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest rank; NaN if empty."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / p99.9 / max latency in milliseconds of per-write latencies in seconds."""
    s = sorted(latencies)
    return {
        "p50_ms": percentile(s, 0.50) * 1e3,
        "p99_ms": percentile(s, 0.99) * 1e3,
        "p999_ms": percentile(s, 0.999) * 1e3,
        "max_ms": (s[-1] * 1e3) if s else float("nan"),
    }


def _cpu_text(level: dict[str, Any]) -> str:
    cpu = level.get("cpu_percent")
    if not cpu:
        return "-"
    names = sorted(cpu, key=lambda n: (n == "client", n))  # node1/node2/.../client
    return " ".join(f"{n}={cpu[n]:.0f}" for n in names)


def cpu_us_per_write(level: dict[str, Any]) -> float | None:
    """CPU microseconds per committed write, summed over the node processes (not the client)."""
    cpu = level.get("cpu_percent")
    if not cpu or not level.get("writes_per_s"):
        return None
    nodes = sum(float(v) for n, v in cpu.items() if n != "client")
    return nodes / 100 / float(level["writes_per_s"]) * 1e6


def print_table(title: str, levels: Sequence[dict[str, Any]], out: TextIO | None = None) -> None:
    """One row per in-flight level: writes/s, p50 / p99 / p99.9 latency, failed writes,
    fsyncs per second, CPU µs per write (all nodes) and CPU per process (% of one core);
    then, for levels with failed writes, the exception types they failed with."""
    out = out if out is not None else sys.stdout
    out.write(f"\n{title}\n")
    out.write(f"{'in-flight':>10} {'writes':>9} {'writes/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9} "
              f"{'failed':>7} {'fsync/s':>9} {'cpu us/w':>9}  cpu % per process\n")
    for r in levels:
        fsyncs = r.get("fsyncs_per_s")
        us = cpu_us_per_write(r)
        out.write(f"{r['inflight']:>10} {r['writes']:>9} {r['writes_per_s']:>11,.0f} {r['p50_ms']:>9.2f} "
                  f"{r['p99_ms']:>9.2f} {r.get('p999_ms', float('nan')):>9.2f} {r['failed']:>7} "
                  f"{'-' if fsyncs is None else f'{fsyncs:,.0f}':>9} {'-' if us is None else f'{us:,.1f}':>9}"
                  f"  {_cpu_text(r)}\n")
    for r in levels:
        if r.get("errors"):
            kinds = ", ".join(f"{name} x{n}" for name, n in sorted(r["errors"].items()))
            out.write(f"{'':>10} in-flight {r['inflight']}: writes failed with {kinds}\n")
