"""Benchmarks of ``_core.quorum``, both twins on the same inputs in one run.

    python -m pytest benchmarks/bench_quorum.py --benchmark-only -q
    python benchmarks/report.py bench_quorum.py     # calls/s and compiled/pure ratios

Target (the quorum issue): compiled `committed_index` over 5 voters >= 5x the pure
twin. The tracker benchmarks replay the same ack stream (``ACKS`` acks per call, in
``extra_info["units"]``) into a fresh tracker each round.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any, Callable

import pytest

# min_time: calibrate to >= 100 us per round, so that sub-microsecond calls are
# amortised over many iterations (the timer call itself costs ~50 ns).
pytestmark = pytest.mark.benchmark(group="quorum", min_time=0.0001)

VOTERS = (1, 2, 3, 4, 5)
MATCHED_5 = [1012, 998, 1040, 1007, 1001]
ACKS = 1000


def _ack_stream(seed: int = 7) -> list[tuple[int, int]]:
    """Acks as a pipelined leader sees them: each follower's matched index grows,
    sometimes an older (stale) ack arrives after a newer one."""
    rng = random.Random(seed)
    matched = dict.fromkeys(VOTERS, 0)
    out = []
    for _ in range(ACKS):
        node = rng.choice(VOTERS)
        matched[node] += rng.randint(1, 64)
        out.append((node, matched[node] - (rng.randint(1, 32) if rng.random() < 0.1 else 0)))
    return out


ACK_STREAM = _ack_stream()


def _replay() -> Callable[[Any], int]:
    def run(tracker: Any) -> int:
        update = tracker.update
        for node, value in ACK_STREAM:
            update(node, value)
        return tracker.committed

    return run


def test_committed_index_5(benchmark: Any, core: SimpleNamespace) -> None:
    assert benchmark(core.quorum.committed_index, MATCHED_5) == 1007


def test_joint_committed_index_3_3(benchmark: Any, core: SimpleNamespace) -> None:
    assert benchmark(core.quorum.joint_committed_index, MATCHED_5[:3], MATCHED_5[2:]) == 1007


def test_vote_result(benchmark: Any, core: SimpleNamespace) -> None:
    assert benchmark(core.quorum.vote_result, 5, 2, 1) == core.quorum.VOTE_PENDING


def test_progress_tracker_update(benchmark: Any, core: SimpleNamespace) -> None:
    q = core.quorum
    benchmark.extra_info["units"] = ACKS
    want = q.committed_index([max(v for n, v in ACK_STREAM if n == node) for node in VOTERS])
    got = benchmark.pedantic(
        _replay(), setup=lambda: ((q.ProgressTracker(VOTERS),), {}), rounds=200, iterations=1
    )
    assert got == want


def test_progress_tracker_update_joint(benchmark: Any, core: SimpleNamespace) -> None:
    q = core.quorum
    benchmark.extra_info["units"] = ACKS
    got = benchmark.pedantic(
        _replay(), setup=lambda: ((q.ProgressTracker(VOTERS[:3], VOTERS[2:]),), {}), rounds=200, iterations=1
    )
    assert got > 0


def test_vote_tracker_record(benchmark: Any, core: SimpleNamespace) -> None:
    q = core.quorum
    responses = [(2, True), (3, False), (2, True), (4, True), (5, True)]
    benchmark.extra_info["units"] = len(responses)

    def run(tracker: Any) -> int:
        record = tracker.record
        for node, granted in responses:
            record(node, granted)
        return tracker.result

    got = benchmark.pedantic(run, setup=lambda: ((q.VoteTracker(VOTERS),), {}), rounds=2000, iterations=1)
    assert got == q.VOTE_WON
