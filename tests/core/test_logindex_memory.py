"""Memory budget of `_core.logindex.LogIndex`: a million entries in under 24 bytes each.

Measured two ways, for both twins:

* ``tracemalloc``: the compiled twin allocates its buffers with ``PyMem_Realloc``,
  which tracemalloc traces like the pure twin's ``array`` buffers, so the traced
  growth while building the index is an independent measurement for both;
* ``memory_bytes()``: the index's own accounting, checked against tracemalloc.
"""

from __future__ import annotations

import tracemalloc
from array import array
from types import SimpleNamespace

N = 1_000_000
BATCH = 1_000
BUDGET_PER_ENTRY = 24


def test_million_entries_under_24_bytes_each(core: SimpleNamespace) -> None:
    terms = array("Q", (7 + i // 2_500 for i in range(N)))  # 400 term runs
    lengths = array("I", [4096]) * N
    offsets = array("Q", range(0, 4096 * N, 4096))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        li = core.logindex.LogIndex()
        for start in range(0, N, BATCH):  # as the storage layer adds batches: buffers grow
            end = start + BATCH
            li.extend(start, terms[start:end], start // 100_000, offsets[start:end], lengths[start:end])
        traced = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(li) == N and li.term_at(N - 1) == terms[-1] and li.locate(N - 1)[1] == offsets[-1]
    assert len(li.term_runs()) == 400 and len(li.segments()) == 10
    own = li.memory_bytes()
    # 8-byte offset + 4-byte length per entry must be visible to tracemalloc, or the
    # measurement is blind (e.g. buffers allocated with plain malloc)
    assert traced >= 12 * N, f"{core.impl}: tracemalloc saw only {traced} bytes"
    assert traced / N < BUDGET_PER_ENTRY, f"{core.impl}: traced {traced / N:.1f} B/entry"
    assert own / N < BUDGET_PER_ENTRY, f"{core.impl}: memory_bytes {own / N:.1f} B/entry"
    # the index's own accounting must agree with what the allocator saw
    assert 0.8 * traced <= own <= 1.25 * traced, (own, traced)
