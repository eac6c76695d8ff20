"""Run many seeds, optionally on several processes, and summarise the findings.

``python -m raftx.testing.simulation --seeds 0:5000 --jobs 2`` is the long sweep;
`sweep` is the same from Python. Each seed is independent and deterministic, so
the processes share nothing and the summary does not depend on ``jobs``.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from raftx.errors import ConfigError
from raftx.testing.simulation.runner import SimOptions, SimResult, run_seed

__all__ = ["SweepSummary", "parse_seeds", "sweep"]


def parse_seeds(text: str) -> list[int]:
    """``"A:B"`` (A inclusive, B exclusive), ``"N"`` or ``"1,5,9"`` -> seeds.

    Raises `ConfigError` for anything else (negative, empty, reversed ranges).
    """
    try:
        if ":" in text:
            lo_s, hi_s = text.split(":", 1)
            lo, hi = int(lo_s), int(hi_s)
            seeds = list(range(lo, hi))
            if lo < 0 or not seeds:
                raise ValueError
            return seeds
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"seeds must look like 0:500, 7 or 1,5,9 (non-negative), not {text!r}") from None
    if any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative: {text!r}")
    return seeds


@dataclass
class SweepSummary:
    """What a sweep found."""

    seeds: int = 0
    failures: list[SimResult] = field(default_factory=list)
    by_invariant: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    operations: int = 0
    acked: int = 0
    unknown: int = 0
    reads: int = 0
    lease_reads: int = 0

    def add(self, r: SimResult) -> None:
        self.seeds += 1
        self.steps += r.steps
        self.operations += r.operations
        self.acked += r.acked
        self.unknown += r.unknown
        self.reads += r.reads
        self.lease_reads += r.lease_reads
        self.faults.update(r.faults)
        if not r.ok:
            self.failures.append(r)
            self.by_invariant[str(r.violation)] += 1

    def describe(self) -> str:
        lines = [
            f"{self.seeds} seeds, {len(self.failures)} failing; {self.steps} steps, {self.operations} client "
            f"operations ({self.acked} writes acknowledged, {self.unknown} with unknown outcome, {self.reads} "
            f"linearizable reads of which {self.lease_reads} lease reads)",
            "faults injected: " + ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())),
        ]
        if self.failures:
            lines.append("violations: " + ", ".join(f"{k}={v}" for k, v in sorted(self.by_invariant.items())))
            lines.append("failing seeds: " + " ".join(str(r.seed) for r in sorted(self.failures, key=lambda r: r.seed)))
        return "\n".join(lines)


def _run(args: tuple[int, SimOptions]) -> SimResult:
    logging.disable(logging.CRITICAL)  # findings are in the result, not the log
    return run_seed(*args)


def sweep(seeds: Iterable[int], jobs: int = 1, options: SimOptions | None = None,
          on_result: Callable[[SimResult], None] | None = None) -> SweepSummary:
    """Run ``seeds`` on ``jobs`` processes; ``on_result`` sees each result as it comes."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an int >= 1, not {jobs!r}")
    opts = (options or SimOptions()).validate()
    work: Sequence[tuple[int, SimOptions]] = [(s, opts) for s in seeds]
    summary = SweepSummary()
    if jobs == 1:
        results: Iterable[SimResult] = map(_run, work)
        for r in results:
            summary.add(r)
            if on_result:
                on_result(r)
        return summary
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for r in pool.imap(_run, work, chunksize=8):
            summary.add(r)
            if on_result:
                on_result(r)
    return summary
