"""Benchmarks of ``_core.vote``, both twins on the same inputs in one run.

    python -m pytest benchmarks/bench_vote.py --benchmark-only -q
    python benchmarks/report.py bench_vote.py       # calls/s and compiled/pure ratios

Vote and LogId comparisons run on every Raft message (§5.1 term checks, §5.3
consistency checks, §5.4.1 election restriction); these measure one call each.
"""

from __future__ import annotations

import operator
from types import SimpleNamespace
from typing import Any

import pytest

# min_time: calibrate to >= 100 us per round, so that sub-microsecond calls are
# amortised over many iterations (the timer call itself costs ~50 ns).
pytestmark = pytest.mark.benchmark(group="vote", min_time=0.0001)


def test_vote_can_grant(benchmark: Any, core: SimpleNamespace) -> None:
    V = core.vote.Vote
    assert benchmark(core.vote.vote_can_grant, V(7, 2), V(7, 2, True)) is True


def test_vote_ge(benchmark: Any, core: SimpleNamespace) -> None:
    V = core.vote.Vote
    assert benchmark(operator.ge, V(8, 3), V(7, 2, True)) is True


def test_vote_lt_incomparable(benchmark: Any, core: SimpleNamespace) -> None:
    V = core.vote.Vote
    assert benchmark(operator.lt, V(7, 3), V(7, 2)) is False


def test_vote_eq(benchmark: Any, core: SimpleNamespace) -> None:
    V = core.vote.Vote
    assert benchmark(operator.eq, V(7, 3, True), V(7, 3, True)) is True


def test_vote_construct(benchmark: Any, core: SimpleNamespace) -> None:
    assert benchmark(core.vote.Vote, 7, 3, True).committed


def test_log_id_lt(benchmark: Any, core: SimpleNamespace) -> None:
    L = core.vote.LogId
    assert benchmark(operator.lt, L(5, 1000), L(5, 1001)) is True


def test_log_id_eq(benchmark: Any, core: SimpleNamespace) -> None:
    L = core.vote.LogId
    assert benchmark(operator.eq, L(5, 1000), L(5, 1000)) is True


def test_log_id_max(benchmark: Any, core: SimpleNamespace) -> None:
    L = core.vote.LogId
    b = L(6, 3)
    assert benchmark(core.vote.log_id_max, L(5, 1000), b) is b


def test_log_id_construct(benchmark: Any, core: SimpleNamespace) -> None:
    assert benchmark(core.vote.LogId, 5, 1000).index == 1000


def test_log_id_hash(benchmark: Any, core: SimpleNamespace) -> None:
    L = core.vote.LogId
    assert benchmark(hash, L(5, 1000)) == hash(L(5, 1000))


def test_is_log_up_to_date(benchmark: Any, core: SimpleNamespace) -> None:
    assert benchmark(core.vote.is_log_up_to_date, 5, 1000, 5, 1001) is True
