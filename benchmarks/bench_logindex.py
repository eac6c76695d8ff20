"""`_core.logindex.LogIndex` benchmarks, both twins on the same inputs in one run.

    python -m pytest benchmarks/bench_logindex.py --benchmark-only
    python benchmarks/report.py bench_logindex.py      # prints compiled / pure ratios

* ``term_at`` / ``locate`` on 10,000 random indexes of a 1M-entry index with 400
  term runs and 10 segment runs (the engine's §5.3 consistency check and the
  replication reader's record lookup);
* ``extend`` with 1,000-entry batches (what the storage layer does per write);
* building a 1M-entry index from the typed arrays ``scan_records`` returns (opening
  a 1M-entry log must take <= 1 s; this is the index's share).
"""

from __future__ import annotations

import random
from array import array
from collections import deque
from itertools import accumulate
from types import SimpleNamespace
from typing import Any

import pytest

N = 1_000_000
PROBES = 10_000
BATCH = 1_000
BATCHES = 100


@pytest.fixture(scope="module")
def columns() -> tuple[array[int], array[int], array[int]]:
    """1M entries: 400 term runs, records of 100..355 bytes laid end to end."""
    terms = array("Q", (1 + i // 2_500 for i in range(N)))
    lengths = array("I", (100 + i % 256 for i in range(N)))
    offsets = array("Q", accumulate(lengths, initial=0))
    del offsets[-1]
    return terms, offsets, lengths


@pytest.fixture(scope="module")
def probes() -> list[int]:
    rng = random.Random(20240601)
    return [rng.randrange(N) for _ in range(PROBES)]


@pytest.fixture(scope="module")
def segments(columns: tuple[array[int], array[int], array[int]]) -> list[tuple[int, array[int], array[int], array[int]]]:
    """The 1M entries cut into 10 segments of 100k, as ``scan_records`` returns them."""
    terms, offsets, lengths = columns
    bounds = [(seg * N // 10, (seg + 1) * N // 10) for seg in range(10)]
    return [(lo, terms[lo:hi], offsets[lo:hi], lengths[lo:hi]) for lo, hi in bounds]


def million(core: SimpleNamespace, segments: list[tuple[int, array[int], array[int], array[int]]]) -> Any:
    """A fresh 1M-entry index: one extend per segment."""
    li = core.logindex.LogIndex()
    for seg, (first, terms, offsets, lengths) in enumerate(segments):
        li.extend(first, terms, seg, offsets, lengths)
    return li


@pytest.mark.parametrize("method", ["term_at", "locate"])
def test_lookup_random(
    benchmark: Any, core: SimpleNamespace, columns: Any, segments: Any, probes: list[int], method: str
) -> None:
    """``term_at`` or ``locate`` of 10,000 random indexes (units: lookups)."""
    li = million(core, segments)
    lookup = getattr(li, method)
    benchmark.extra_info["units"] = PROBES
    benchmark(lambda: deque(map(lookup, probes), maxlen=0))
    terms, offsets, lengths = columns

    def want(i: int) -> Any:
        return terms[i] if method == "term_at" else (i * 10 // N, offsets[i], lengths[i])

    assert [lookup(i) for i in probes[:100]] == [want(i) for i in probes[:100]]


def test_extend_1000_entry_batches(benchmark: Any, core: SimpleNamespace, columns: Any) -> None:
    """100 batches of 1,000 entries into a fresh index (units: entries)."""
    terms, offsets, lengths = columns
    batches = [(k * BATCH, terms[k * BATCH : (k + 1) * BATCH], offsets[k * BATCH : (k + 1) * BATCH],
                lengths[k * BATCH : (k + 1) * BATCH]) for k in range(BATCHES)]

    def run() -> Any:
        li = core.logindex.LogIndex()
        for first, t, o, ln in batches:
            li.extend(first, t, 0, o, ln)
        return li

    benchmark.extra_info["units"] = BATCHES * BATCH
    li = benchmark(run)
    assert len(li) == BATCHES * BATCH


def test_build_1m(benchmark: Any, core: SimpleNamespace, segments: Any) -> None:
    """A 1M-entry index from typed arrays, one extend per 100k-entry segment (units: entries)."""
    benchmark.extra_info["units"] = N
    li = benchmark(million, core, segments)
    assert len(li) == N and len(li.term_runs()) == 400
