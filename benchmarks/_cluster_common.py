"""Shared pieces of the cluster benchmark harnesses (raftx and PySyncObj): latency
percentiles and the result table. Not a pytest file (no ``bench_`` prefix)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["latency_summary", "percentile", "print_table"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest rank; NaN if empty."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max latency in milliseconds of per-write latencies in seconds."""
    s = sorted(latencies)
    return {
        "p50_ms": percentile(s, 0.50) * 1e3,
        "p99_ms": percentile(s, 0.99) * 1e3,
        "max_ms": (s[-1] * 1e3) if s else float("nan"),
    }


def print_table(title: str, levels: Sequence[dict[str, Any]], out: TextIO = sys.stdout) -> None:
    """One row per in-flight level: writes/s, p50, p99, failed."""
    out.write(f"\n{title}\n")
    out.write(f"{'in-flight':>10} {'writes':>9} {'writes/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'failed':>7}\n")
    for r in levels:
        out.write(f"{r['inflight']:>10} {r['writes']:>9} {r['writes_per_s']:>11,.0f} "
                  f"{r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['failed']:>7}\n")
