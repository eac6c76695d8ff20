"""Property tests of ``_core.quorum`` (both twins) against naive oracles.

The analogue of etcd-io/raft ``quorum/quick_test.go``: the optimised code must agree
with a deliberately simple alternative on random inputs.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

INDEX_MAX = 2**63 - 1

matched_values = st.integers(min_value=-1, max_value=INDEX_MAX)
small_matched = st.integers(min_value=-1, max_value=20)  # many ties
node_ids = st.integers(min_value=0, max_value=12)


def oracle_committed(matched: list[int]) -> int:
    """The largest index m such that a majority of voters has matched >= m."""
    if not matched:
        return INDEX_MAX
    majority = len(matched) // 2 + 1
    return max(m for m in matched if sum(1 for x in matched if x >= m) >= majority)


def oracle_vote(q: SimpleNamespace, n: int, granted: int, rejected: int) -> int:
    """Won if a majority granted; lost if even all missing grants cannot make one."""
    majority = n // 2 + 1
    if granted >= majority:
        return q.VOTE_WON
    if granted + (n - granted - rejected) < majority:
        return q.VOTE_LOST
    return q.VOTE_PENDING


@settings(max_examples=300, deadline=None)
@given(matched=st.lists(st.one_of(matched_values, small_matched), max_size=80))
def test_committed_index_matches_oracle(core: SimpleNamespace, matched: list[int]) -> None:
    assert core.quorum.committed_index(matched) == oracle_committed(matched)


@settings(max_examples=300, deadline=None)
@given(old=st.lists(small_matched, max_size=9), new=st.lists(small_matched, max_size=9))
def test_joint_committed_is_min_and_symmetric(core: SimpleNamespace, old: list[int], new: list[int]) -> None:
    q = core.quorum
    got = q.joint_committed_index(old, new)
    want = oracle_committed(old) if not new else min(oracle_committed(old), oracle_committed(new))
    assert got == want
    assert q.joint_committed_index(new, old) == got  # swapping halves changes nothing


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(min_value=0, max_value=50))
def test_vote_result_matches_counting_oracle(core: SimpleNamespace, data: st.DataObject, n: int) -> None:
    q = core.quorum
    granted = data.draw(st.integers(min_value=0, max_value=n))
    rejected = data.draw(st.integers(min_value=0, max_value=n - granted))
    want = q.VOTE_WON if n == 0 else oracle_vote(q, n, granted, rejected)
    assert q.vote_result(n, granted, rejected) == want


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n_old=st.integers(0, 9), n_new=st.integers(0, 9))
def test_joint_vote_result_symmetric(core: SimpleNamespace, data: st.DataObject, n_old: int, n_new: int) -> None:
    q = core.quorum
    g_old = data.draw(st.integers(0, n_old))
    r_old = data.draw(st.integers(0, n_old - g_old))
    g_new = data.draw(st.integers(0, n_new))
    r_new = data.draw(st.integers(0, n_new - g_new))
    a, b = q.vote_result(n_old, g_old, r_old), q.vote_result(n_new, g_new, r_new)
    want = q.VOTE_LOST if q.VOTE_LOST in (a, b) else (q.VOTE_WON if a == b == q.VOTE_WON else q.VOTE_PENDING)
    assert q.joint_vote_result(n_old, g_old, r_old, n_new, g_new, r_new) == want
    assert q.joint_vote_result(n_new, g_new, r_new, n_old, g_old, r_old) == want


tracker_ops = st.lists(
    st.tuples(st.sampled_from(["update", "reset"]), node_ids, small_matched), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(
    voters=st.lists(node_ids, max_size=7),
    voters_new=st.lists(node_ids, max_size=7),
    ops=tracker_ops,
)
def test_progress_tracker_equals_recount(
    core: SimpleNamespace, voters: list[int], voters_new: list[int], ops: list[tuple[str, int, int]]
) -> None:
    """After any sequence of acks, the tracker's committed index is a full recount's."""
    q = core.quorum
    tracker = q.ProgressTracker(voters, voters_new)
    swapped = q.ProgressTracker(voters_new, voters)
    members = set(voters) | set(voters_new)
    model = {n: -1 for n in members}
    for op, node_id, value in ops:
        got = getattr(tracker, op)(node_id, value)
        getattr(swapped, op)(node_id, value)
        if node_id in members and (op == "reset" or value > model[node_id]):
            model[node_id] = value
        old = [model[n] for n in set(voters)]
        new = [model[n] for n in set(voters_new)]
        want = oracle_committed(old) if not new else min(oracle_committed(old), oracle_committed(new))
        assert got == want == tracker.committed
        assert swapped.committed == want
    for n in members:
        assert tracker.matched(n) == model[n]


@settings(max_examples=300, deadline=None)
@given(
    voters=st.lists(node_ids, max_size=7),
    voters_new=st.lists(node_ids, max_size=7),
    responses=st.lists(st.tuples(node_ids, st.booleans()), max_size=30),
)
def test_vote_tracker_equals_recount(
    core: SimpleNamespace, voters: list[int], voters_new: list[int], responses: list[tuple[int, bool]]
) -> None:
    """The tracker's result equals a recount of each voter's first response."""
    q = core.quorum
    tracker = q.VoteTracker(voters, voters_new)
    first: dict[int, bool] = {}
    old, new = set(voters), set(voters_new)
    for node_id, granted in responses:
        got = tracker.record(node_id, granted)
        if node_id in old | new:
            first.setdefault(node_id, granted)

        def tally(half: set[int]) -> tuple[int, int, int]:
            votes = [first[n] for n in half if n in first]
            return len(half), votes.count(True), votes.count(False)

        assert got == q.joint_vote_result(*tally(old), *tally(new)) == tracker.result

