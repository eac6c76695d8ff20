"""Table tests of ``_core.quorum`` (both twins): etcd's quorum testdata, re-expressed as tables.

The cases come from etcd-io/raft ``quorum/testdata/{majority,joint}_commit.txt`` and
raft-rs ``src/quorum/testdata/{majority,joint}_vote.txt``. A case names the voters
(``cfg``), the new half of a joint configuration (``cfgj``, ``None`` = not joint) and
one value per voter of the sorted union of both halves: a matched index (``_`` is
etcd's unknown = 0) or a vote (``y`` granted, ``n`` rejected, ``_`` no response yet).
Each case is checked three ways: the stateless functions, the incremental tracker fed
the same values, and (etcd's datadriven invariant) with the two halves swapped.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

# (cfg, cfgj, idx, committed) -- majority_commit.txt and joint_commit.txt
COMMIT_CASES = [
    # majority
    ((), None, "", "INDEX_MAX"),  # the empty quorum commits "everything"
    ((1,), None, "_", 0),
    ((1,), None, "12", 12),
    ((1, 2), None, "_,_", 0),
    ((1, 2), None, "12,_", 0),
    ((1, 2), None, "12,5", 5),
    ((1, 2, 3), None, "_,_,_", 0),
    ((1, 2, 3), None, "12,_,_", 0),
    ((1, 2, 3), None, "12,5,_", 5),
    ((1, 2, 3), None, "12,5,6", 6),
    ((1, 2, 3), None, "12,5,4", 5),
    ((1, 2, 3), None, "5,5,_", 5),
    ((1, 2, 3), None, "5,5,12", 5),
    ((1, 2, 3), None, "100,101,103", 101),
    ((1, 2, 3, 4, 5), None, "101,104,103,103,_", 103),
    ((1, 2, 3, 4, 5), None, "101,102,103,103,_", 102),
    # joint
    ((1, 2, 3), (), "100,101,99", 100),  # joint with an empty half = majority
    ((1,), (2,), "_,_", 0),
    ((1,), (2,), "100,_", 0),
    ((1,), (2,), "13,100", 13),
    ((1,), (1,), "_", 0),
    ((1,), (1,), "100", 100),
    ((1, 3), (2,), "_,_,_", 0),
    ((1, 3), (2,), "100,_,_", 0),
    ((1, 3), (2,), "100,_,50", 0),
    ((1, 3), (2,), "100,45,50", 45),
    ((1, 2), (2,), "_,_", 0),
    ((1, 2), (2,), "100,_", 0),
    ((1, 2), (2,), "_,100", 0),
    ((1, 2), (2,), "50,100", 50),
    ((1, 2), (2,), "100,50", 50),
    ((1, 2), (3, 4), "50,_,_,_", 0),
    ((1, 2), (3, 4), "50,_,49,_", 0),
    ((1, 2), (3, 4), "50,48,49,_", 0),
    ((1, 2), (3, 4), "50,48,49,47", 47),
    ((1, 2), (2, 3), "_,_,_", 0),
    ((1, 2), (2, 3), "100,_,_", 0),
    ((1, 2), (2, 3), "_,100,_", 0),
    ((1, 2), (2, 3), "_,100,99", 0),
    ((1, 2), (2, 3), "101,100,99", 99),
    ((1, 2), (1, 2), "_,_", 0),
    ((1, 2), (1, 2), "_,40", 0),
    ((1, 2), (1, 2), "41,40", 40),
    ((1, 2, 3), (4, 5, 6), "_,_,_,_,_,_", 0),
    ((1, 2, 3), (4, 5, 6), "100,_,_,_,_,_", 0),
    ((1, 2, 3), (4, 5, 6), "100,_,_,90,_,_", 0),
    ((1, 2, 3), (4, 5, 6), "100,99,_,_,_,_", 0),
    ((1, 2, 3), (4, 5, 6), "_,99,90,97,95,_", 90),
    ((1, 2, 3), (4, 5, 6), "92,99,90,97,95,_", 92),
    ((1, 2, 3), (4, 5, 6), "92,99,90,97,95,77", 92),
    ((1, 2, 3), (1, 4, 5), "_,_,_,_,_", 0),
    ((1, 2, 3), (1, 4, 5), "100,_,_,_,_", 0),
    ((1, 2, 3), (1, 4, 5), "100,101,_,_,_", 0),
    ((1, 2, 3), (1, 4, 5), "100,101,100,_,_", 0),
    ((1, 2, 3), (1, 4, 5), "_,100,_,99,98", 0),
    ((1, 2, 3), (1, 4, 5), "_,100,99,99,98", 98),
    ((1, 2, 3), (1, 4, 5), "1,100,99,99,98", 98),
    ((1, 2, 3), (1, 4, 5), "100,100,99,99,98", 99),
    ((1, 2, 3), (2, 3, 4), "_,_,_,_", 0),
    ((1, 2, 3), (2, 3, 4), "_,100,99,_", 99),
    ((1, 2, 3), (2, 3, 4), "98,100,99,_", 99),
    ((1, 2, 3), (2, 3, 4), "100,100,99,_", 99),
    ((1, 2, 3), (2, 3, 4), "100,100,99,98", 99),
    ((1, 2, 3), (2, 3, 4), "100,_,_,101", 0),
    ((1, 2, 3), (2, 3, 4), "100,99,_,101", 99),
    ((1, 2, 3), (1, 2, 3), "50,45,_", 45),
]

# (cfg, cfgj, votes, result) -- majority_vote.txt and joint_vote.txt
VOTE_CASES = [
    # majority
    ((), None, "", "WON"),  # the empty config wins
    ((1,), None, "_", "PENDING"),
    ((1,), None, "n", "LOST"),
    ((123,), None, "y", "WON"),
    ((4, 8), None, "_,_", "PENDING"),
    ((4, 8), None, "n,_", "LOST"),  # with two voters one rejection loses
    ((4, 8), None, "y,_", "PENDING"),
    ((4, 8), None, "n,y", "LOST"),
    ((4, 8), None, "y,y", "WON"),
    ((2, 4, 7), None, "_,_,_", "PENDING"),
    ((2, 4, 7), None, "n,_,_", "PENDING"),
    ((2, 4, 7), None, "y,_,_", "PENDING"),
    ((2, 4, 7), None, "n,n,_", "LOST"),
    ((2, 4, 7), None, "y,n,_", "PENDING"),
    ((2, 4, 7), None, "y,y,_", "WON"),
    ((2, 4, 7), None, "y,y,n", "WON"),
    ((2, 4, 7), None, "n,y,n", "LOST"),
    ((1, 2, 3, 4, 5, 6, 7), None, "y,y,n,y,_,_,_", "PENDING"),
    ((1, 2, 3, 4, 5, 6, 7), None, "_,y,y,_,n,y,n", "PENDING"),
    ((1, 2, 3, 4, 5, 6, 7), None, "y,y,n,y,_,n,y", "WON"),
    ((1, 2, 3, 4, 5, 6, 7), None, "y,y,_,n,y,n,n", "PENDING"),
    ((1, 2, 3, 4, 5, 6, 7), None, "y,y,n,y,n,n,n", "LOST"),
    # joint
    ((), (), "", "WON"),
    ((1,), (), "_", "PENDING"),
    ((1,), (), "y", "WON"),
    ((1,), (), "n", "LOST"),
    ((1,), (1,), "_", "PENDING"),
    ((1,), (1,), "y", "WON"),
    ((1,), (1,), "n", "LOST"),
    ((1,), (2,), "_,_", "PENDING"),
    ((1,), (2,), "y,_", "PENDING"),
    ((1,), (2,), "y,y", "WON"),
    ((1,), (2,), "y,n", "LOST"),
    ((1,), (2,), "n,_", "LOST"),
    ((1,), (2,), "n,n", "LOST"),
    ((1,), (2,), "n,y", "LOST"),
    ((1, 2), (3, 4), "_,_,_,_", "PENDING"),
    ((1, 2), (3, 4), "y,_,_,_", "PENDING"),
    ((1, 2), (3, 4), "y,y,_,_", "PENDING"),
    ((1, 2), (3, 4), "y,y,n,_", "LOST"),
    ((1, 2), (3, 4), "y,y,n,n", "LOST"),
    ((1, 2), (3, 4), "y,y,y,n", "LOST"),
    ((1, 2), (3, 4), "y,y,y,y", "WON"),
    ((1, 2), (2, 3), "_,_,_", "PENDING"),
    ((1, 2), (2, 3), "_,n,_", "LOST"),
    ((1, 2), (2, 3), "y,y,_", "PENDING"),
    ((1, 2), (2, 3), "y,y,n", "LOST"),
    ((1, 2), (2, 3), "y,y,y", "WON"),
    ((1, 2), (1, 2), "_,_", "PENDING"),
    ((1, 2), (1, 2), "y,_", "PENDING"),
    ((1, 2), (1, 2), "y,n", "LOST"),
    ((1, 2), (1, 2), "n,_", "LOST"),
    ((1, 2), (1, 2), "n,n", "LOST"),
    ((1, 2, 3), (2, 3, 4), "_,_,_,_", "PENDING"),
    ((1, 2, 3), (2, 3, 4), "_,n,_,_", "PENDING"),
    ((1, 2, 3), (2, 3, 4), "_,n,n,_", "LOST"),
    ((1, 2, 3), (2, 3, 4), "_,y,y,_", "WON"),
    ((1, 2, 3), (2, 3, 4), "y,y,_,_", "PENDING"),
    ((1, 2, 3), (2, 3, 4), "y,y,n,_", "PENDING"),
    ((1, 2, 3), (2, 3, 4), "y,y,n,n", "LOST"),
    ((1, 2, 3), (2, 3, 4), "y,y,n,y", "WON"),
]


def _per_voter(cfg: tuple[int, ...], cfgj: tuple[int, ...] | None, text: str) -> dict[int, str]:
    """Map each voter of the sorted union of both halves to its field of ``text``."""
    ids = sorted(set(cfg) | set(cfgj or ()))
    fields = text.split(",") if text else []
    assert len(fields) == len(ids), "malformed table row"
    return dict(zip(ids, fields))


def _commit_id(case: tuple) -> str:
    cfg, cfgj, idx, _ = case
    return f"cfg={cfg}-cfgj={cfgj}-idx=({idx})"


def _expected(q: SimpleNamespace, value: object) -> int:
    return getattr(q, value) if isinstance(value, str) else value  # type: ignore[return-value]


@pytest.mark.parametrize("case", COMMIT_CASES, ids=_commit_id)
def test_committed_table(core: SimpleNamespace, case: tuple) -> None:
    q = core.quorum
    cfg, cfgj, idx, want = case
    want = _expected(q, want)
    matched = {nid: 0 if f == "_" else int(f) for nid, f in _per_voter(cfg, cfgj, idx).items()}
    old = [matched[n] for n in cfg]
    new = [matched[n] for n in cfgj or ()]

    if cfgj is None:
        assert q.committed_index(old) == want
    assert q.joint_committed_index(old, new) == want

    tracker = q.ProgressTracker(cfg, cfgj or ())
    for nid, value in matched.items():
        tracker.update(nid, value)
    assert tracker.committed == want
    assert all(tracker.matched(nid) == value for nid, value in matched.items())

    if cfgj:  # etcd's invariant: swapping the halves changes nothing
        assert q.joint_committed_index(new, old) == want
        swapped = q.ProgressTracker(cfgj, cfg)
        for nid, value in matched.items():
            swapped.update(nid, value)
        assert swapped.committed == want


@pytest.mark.parametrize("case", VOTE_CASES, ids=_commit_id)
def test_vote_table(core: SimpleNamespace, case: tuple) -> None:
    q = core.quorum
    cfg, cfgj, votes, want = case
    want = getattr(q, f"VOTE_{want}")
    per_voter = _per_voter(cfg, cfgj, votes)

    def tally(half: tuple[int, ...]) -> tuple[int, int, int]:
        fields = [per_voter[n] for n in half]
        return len(half), fields.count("y"), fields.count("n")

    old, new = tally(cfg), tally(cfgj or ())
    if cfgj is None:
        assert q.vote_result(*old) == want
    assert q.joint_vote_result(*old, *new) == want

    for halves in [(cfg, cfgj or ()), (cfgj or (), cfg)]:  # swapped halves: same result
        tracker = q.VoteTracker(*halves)
        for nid, field in per_voter.items():
            if field != "_":
                tracker.record(nid, field == "y")
        assert tracker.result == want
    if cfgj:
        assert q.joint_vote_result(*new, *old) == want


def test_constants(core: SimpleNamespace) -> None:
    q = core.quorum
    assert q.INDEX_MAX == 2**63 - 1
    assert q.MATCHED_NONE == -1
    assert len({q.VOTE_PENDING, q.VOTE_LOST, q.VOTE_WON}) == 3


@pytest.mark.parametrize(
    "matched, want",
    [
        ([-1], -1),
        ([-1, -1, 7], -1),
        ([7, -1, 7], 7),
        ([2**63 - 1, 2**63 - 1, 0], 2**63 - 1),
        ((3, 1, 2), 2),  # any sequence
        (range(10), 4),  # 10 voters: majority 6 -> the 5th smallest
        (list(range(200, 0, -1)), 100),  # beyond the compiled twin's stack buffer
        ([True, True, False], 1),  # bools are ints
    ],
)
def test_committed_index_edges(core: SimpleNamespace, matched: list[int], want: int) -> None:
    assert core.quorum.committed_index(matched) == want


@pytest.mark.parametrize(
    "matched, error",
    [
        ([1, -2], ValueError),
        ([2**63], ValueError),
        ([-(2**70)], ValueError),
        ([1, 2.0], TypeError),
        ([None], TypeError),
        (["1"], TypeError),
        (5, TypeError),
    ],
)
def test_committed_index_rejects_bad_input(core: SimpleNamespace, matched: object, error: type) -> None:
    with pytest.raises(error):
        core.quorum.committed_index(matched)
    with pytest.raises(error):
        core.quorum.joint_committed_index([1, 2, 3], matched)


@pytest.mark.parametrize(
    "n, granted, rejected, want",
    [
        (0, 0, 0, "WON"),
        (1, 1, 0, "WON"),
        (1, 0, 1, "LOST"),
        (3, 1, 1, "PENDING"),
        (4, 2, 2, "LOST"),  # majority of 4 is 3
        (4, 2, 1, "PENDING"),
        (4, 3, 0, "WON"),
        (5, 2, 2, "PENDING"),
        (5, 2, 3, "LOST"),
        (2**63 - 1, 2**62, 0, "WON"),
    ],
)
def test_vote_result_edges(core: SimpleNamespace, n: int, granted: int, rejected: int, want: str) -> None:
    q = core.quorum
    assert q.vote_result(n, granted, rejected) == getattr(q, f"VOTE_{want}")


@pytest.mark.parametrize(
    "args, error",
    [
        ((3, 2, 2), ValueError),  # more responses than voters
        ((3, -1, 0), ValueError),
        ((3, 0, -1), ValueError),
        ((-1, 0, 0), ValueError),
        ((2**63, 0, 0), ValueError),
        ((3, 1.0, 0), TypeError),
    ],
)
def test_vote_result_rejects_bad_input(core: SimpleNamespace, args: tuple, error: type) -> None:
    with pytest.raises(error):
        core.quorum.vote_result(*args)
    with pytest.raises(error):
        core.quorum.joint_vote_result(3, 0, 0, *args)


def test_progress_tracker_starts_at_matched_none(core: SimpleNamespace) -> None:
    q = core.quorum
    t = q.ProgressTracker([1, 2, 3])
    assert t.committed == q.MATCHED_NONE
    assert t.matched(2) == q.MATCHED_NONE
    assert q.ProgressTracker([]).committed == q.INDEX_MAX


def test_progress_tracker_ignores_learners_and_stale_acks(core: SimpleNamespace) -> None:
    t = core.quorum.ProgressTracker([1, 2, 3])
    assert t.update(9, 100) == -1  # a learner never counts
    with pytest.raises(KeyError):
        t.matched(9)
    assert t.update(1, 10) == -1
    assert t.update(2, 8) == 8
    assert t.update(2, 5) == 8  # an out-of-order (stale) ack does not move back
    assert t.matched(2) == 8
    assert t.update(3, 12) == 10
    assert t.reset(1, 0) == 8  # reset may move back
    assert t.matched(1) == 0
    assert t.committed == 8


def test_progress_tracker_joint_node_in_both_halves(core: SimpleNamespace) -> None:
    t = core.quorum.ProgressTracker([1, 2, 3], [3, 4, 5])
    assert t.voters == (1, 2, 3) and t.voters_new == (3, 4, 5)
    t.update(1, 10)
    t.update(2, 10)
    assert t.committed == -1  # old half has a majority, the new one has nothing
    t.update(3, 7)  # counts in both halves
    assert t.committed == -1
    assert t.update(4, 9) == 7
    assert t.reset(3, 2) == 2
    assert t.update(5, 9) == 9


def test_progress_tracker_dedupes_voters(core: SimpleNamespace) -> None:
    t = core.quorum.ProgressTracker([1, 1, 2, 3, 2])
    assert t.voters == (1, 2, 3)
    t.update(1, 5)
    assert t.update(2, 5) == 5  # 2 of 3 voters, not 2 of 5


@pytest.mark.parametrize("cls", ["ProgressTracker", "VoteTracker"])
@pytest.mark.parametrize("voters", [[-1], [1, 2.5], [2**63], ["a"]])
def test_trackers_reject_bad_voters(core: SimpleNamespace, cls: str, voters: list) -> None:
    with pytest.raises((TypeError, ValueError)):
        getattr(core.quorum, cls)(voters)
    with pytest.raises((TypeError, ValueError)):
        getattr(core.quorum, cls)([1, 2, 3], voters)


def test_progress_tracker_rejects_bad_args(core: SimpleNamespace) -> None:
    t = core.quorum.ProgressTracker([1, 2, 3])
    for node_id, matched, error in [(-1, 5, ValueError), (1, -2, ValueError), (1, 2**63, ValueError), (1.0, 5, TypeError), (1, None, TypeError)]:
        with pytest.raises(error):
            t.update(node_id, matched)
        with pytest.raises(error):
            t.reset(node_id, matched)
    assert t.committed == -1 and t.matched(1) == -1  # nothing changed


def test_vote_tracker_first_response_counts_once(core: SimpleNamespace) -> None:
    q = core.quorum
    v = q.VoteTracker([1, 2, 3])
    assert v.result == q.VOTE_PENDING
    assert v.record(1, False) == q.VOTE_PENDING
    assert v.record(1, True) == q.VOTE_PENDING  # a changed mind does not count
    assert v.record(2, False) == q.VOTE_LOST
    w = q.VoteTracker([1, 2, 3])
    w.record(1, True)
    assert w.record(1, True) == q.VOTE_PENDING  # a retransmitted grant counts once
    assert w.record(7, True) == q.VOTE_PENDING  # a learner's grant does not count
    assert w.record(3, True) == q.VOTE_WON
    assert q.VoteTracker([]).result == q.VOTE_WON


def test_vote_tracker_rejects_bad_node_id(core: SimpleNamespace) -> None:
    v = core.quorum.VoteTracker([1, 2, 3])
    with pytest.raises(ValueError):
        v.record(-1, True)
    with pytest.raises(TypeError):
        v.record("1", True)
    assert v.result == core.quorum.VOTE_PENDING


def test_trackers_repr(core: SimpleNamespace) -> None:
    q = core.quorum
    assert repr(q.ProgressTracker([1], [2])) == "ProgressTracker(voters=(1,), voters_new=(2,), committed=-1)"
    assert repr(q.VoteTracker([1])) == f"VoteTracker(voters=(1,), voters_new=(), result={q.VOTE_PENDING})"

