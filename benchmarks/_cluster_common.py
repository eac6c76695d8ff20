"""Shared pieces of the cluster benchmark harnesses, now in `raftx.bench.stats` (kept so
existing imports work). Not a pytest file (no ``bench_`` prefix)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # raftx from a checkout

from raftx.bench.stats import latency_summary, percentile, print_table  # noqa: E402

__all__ = ["latency_summary", "percentile", "print_table"]
