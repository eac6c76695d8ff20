"""Table tests of ``_core.vote`` (both twins): LeaderId / Vote / LogId order, grants, §5.4.1.

The partial order is openraft's std leader-id mode (``leader_id_std``): within a term a
vote for nobody is below a vote for anyone, and votes for two different nodes are
incomparable (§5.2: at most one vote per term). A vote is granted iff the incoming
vote is ``>=`` the one held (openraft ``docs/data/vote.md``).
"""

from __future__ import annotations

import copy
import operator
import os
import pickle
from types import SimpleNamespace

import pytest

from raftx import _core

BIG = 2**63 - 1

# (a, b, relation of a to b): "<", "=", ">" or "||" (incomparable)
LEADER_ID_ORDER = [
    ((1, None), (1, None), "="),
    ((1, 2), (1, 2), "="),
    ((1, None), (1, 2), "<"),  # no vote yet < a vote cast in the same term
    ((1, 2), (1, 3), "||"),  # two candidates of one term: neither wins
    ((1, 3), (2, None), "<"),  # a higher term wins, whatever the node
    ((2, 1), (1, 9), ">"),
    ((0, None), (0, 0), "<"),
    ((0, 0), (0, 1), "||"),
    ((BIG, BIG), (BIG, None), ">"),
    ((BIG - 1, BIG), (BIG, 0), "<"),
]

# (a, b, relation): Vote(term, node_id, committed)
VOTE_ORDER = [
    ((1, 2, False), (1, 2, False), "="),
    ((1, 2, False), (1, 2, True), "<"),  # the committed (established) vote is greater
    ((1, None, False), (1, 2, False), "<"),
    ((1, None, True), (1, 2, False), "<"),  # leader id decides before committed
    ((1, 2, True), (1, 3, False), ">"),  # incomparable ids: the elected leader wins (openraft)
    ((1, 2, False), (1, 3, False), "||"),
    ((1, 2, True), (1, 3, True), "||"),
    ((2, None, False), (1, 5, True), ">"),
    ((0, None, False), (0, None, False), "="),
    ((BIG, 1, False), (BIG, 1, True), "<"),
]

# (leader_id, index) pairs: a total order by (term, index), §5.4.1
LOG_ID_ORDER = [
    ((1, 5), (1, 5), "="),
    ((1, 5), (1, 6), "<"),
    ((1, 9), (2, 1), "<"),  # the term decides first
    ((3, 0), (2, 100), ">"),
    ((0, 0), (0, 0), "="),
    ((BIG, BIG), (BIG, BIG - 1), ">"),
]

# (current, incoming, grant?) as Vote(term, node_id, committed)
GRANT_CASES = [
    ((0, None, False), (0, None, False), True),  # pristine node
    ((0, None, False), (1, 2, False), True),
    ((1, 2, False), (1, 2, False), True),  # the same candidate asks again (retry)
    ((1, 2, False), (1, 3, False), False),  # already voted for another node this term
    ((1, 2, False), (2, 3, False), True),  # a higher term
    ((1, 2, False), (0, 5, False), False),  # a stale term
    ((1, 2, False), (1, 2, True), True),  # the candidate we voted for became leader
    ((1, 2, False), (1, 3, True), True),  # voted for a losing candidate; 3 won the term
    ((1, 3, True), (1, 2, False), False),  # a candidate can't undo the term's leader
    ((1, None, False), (1, 3, False), True),  # term seen, no vote cast yet
    ((1, 2, True), (1, 2, False), False),  # an established leader is not undone
    ((1, 2, True), (1, 2, True), True),
    ((1, 2, True), (1, 3, True), False),  # two leaders in one term: refuse
    ((1, 2, True), (2, None, False), True),
    ((5, 1, True), (4, 1, True), False),
]

# (last_term, last_index, cand_term, cand_index, up_to_date?) -- §5.4.1
UP_TO_DATE_CASES = [
    (0, 0, 0, 0, True),  # two empty logs
    (0, -1, 0, -1, True),  # empty as log_id_index(None)
    (0, -1, 1, 0, True),
    (1, 0, 0, -1, False),
    (2, 5, 2, 5, True),  # equal logs
    (2, 5, 2, 6, True),  # same last term, longer wins
    (2, 5, 2, 4, False),  # same last term, shorter loses
    (2, 5, 3, 1, True),  # later last term wins even if shorter
    (3, 1, 2, 100, False),  # earlier last term loses even if longer
    (BIG, BIG, BIG, BIG, True),
    (BIG - 1, BIG, BIG, 0, True),
]


def _check_relation(a: object, b: object, rel: str) -> None:
    """All six comparisons of ``a`` and ``b`` agree with ``rel``, in both directions."""
    assert (a < b) == (rel == "<")
    assert (a <= b) == (rel in ("<", "="))
    assert (a == b) == (rel == "=")
    assert (a != b) == (rel != "=")
    assert (a > b) == (rel == ">")
    assert (a >= b) == (rel in (">", "="))
    flipped = {"<": ">", ">": "<"}.get(rel, rel)
    assert (b < a) == (flipped == "<")
    assert (b <= a) == (flipped in ("<", "="))
    assert (b > a) == (flipped == ">")
    assert (b >= a) == (flipped in (">", "="))


@pytest.mark.parametrize("a, b, rel", LEADER_ID_ORDER)
def test_leader_id_order(core: SimpleNamespace, a: tuple, b: tuple, rel: str) -> None:
    _check_relation(core.vote.LeaderId(*a), core.vote.LeaderId(*b), rel)


@pytest.mark.parametrize("a, b, rel", VOTE_ORDER)
def test_vote_order(core: SimpleNamespace, a: tuple, b: tuple, rel: str) -> None:
    _check_relation(core.vote.Vote(*a), core.vote.Vote(*b), rel)


@pytest.mark.parametrize("a, b, rel", LOG_ID_ORDER)
def test_log_id_order(core: SimpleNamespace, a: tuple, b: tuple, rel: str) -> None:
    _check_relation(core.vote.LogId(*a), core.vote.LogId(*b), rel)


@pytest.mark.parametrize("current, incoming, grant", GRANT_CASES)
def test_vote_can_grant(core: SimpleNamespace, current: tuple, incoming: tuple, grant: bool) -> None:
    V = core.vote.Vote
    assert core.vote.vote_can_grant(V(*current), V(*incoming)) is grant


@pytest.mark.parametrize("last_term, last_index, cand_term, cand_index, ok", UP_TO_DATE_CASES)
def test_is_log_up_to_date(
    core: SimpleNamespace, last_term: int, last_index: int, cand_term: int, cand_index: int, ok: bool
) -> None:
    assert core.vote.is_log_up_to_date(last_term, last_index, cand_term, cand_index) is ok


def test_log_id_helpers(core: SimpleNamespace) -> None:
    v = core.vote
    a, b = v.LogId(1, 5), v.LogId(2, 3)
    assert v.log_id_lt(None, a) and not v.log_id_lt(a, None) and not v.log_id_lt(None, None)
    assert v.log_id_lt(a, b) and not v.log_id_lt(b, a) and not v.log_id_lt(a, v.LogId(1, 5))
    assert v.log_id_max(a, b) is b and v.log_id_max(b, a) is b
    assert v.log_id_max(None, a) is a and v.log_id_max(a, None) is a and v.log_id_max(None, None) is None
    assert v.log_id_index(None) == -1 and v.log_id_index(b) == 3


def test_fields_defaults_and_aliases(core: SimpleNamespace) -> None:
    v = core.vote
    assert (v.LeaderId(3).term, v.LeaderId(3).node_id) == (3, None)
    vote = v.Vote()
    assert (vote.term, vote.node_id, vote.committed) == (0, None, False)
    vote = v.Vote(7, 2)
    assert vote.leader_id == v.LeaderId(7, 2) and isinstance(vote.leader_id, v.LeaderId)
    assert not vote.is_committed()
    committed = vote.commit()
    assert committed == v.Vote(7, 2, True) and committed.is_committed() and committed.committed is True
    assert vote.committed is False  # commit() returns a new vote
    assert v.Vote(1, None, committed=1).committed is True
    log_id = v.LogId(4, 9)
    assert (log_id.term, log_id.index) == (4, 9)


def test_log_id_leader_id_is_a_deprecated_alias_of_term(core: SimpleNamespace) -> None:
    log_id = core.vote.LogId(4, 9)
    with pytest.warns(DeprecationWarning, match="LogId.term"):
        assert log_id.leader_id == 4
    with pytest.raises(ValueError, match="term"):
        core.vote.LogId(-1, 0)


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda v: v.LeaderId(5), "LeaderId(5, None)"),
        (lambda v: v.LeaderId(5, 3), "LeaderId(5, 3)"),
        (lambda v: v.Vote(), "Vote(0, None, committed=False)"),
        (lambda v: v.Vote(2, 1, True), "Vote(2, 1, committed=True)"),
        (lambda v: v.LogId(3, 10), "LogId(3, 10)"),
        (lambda v: v.LogId(BIG, BIG), f"LogId({BIG}, {BIG})"),
    ],
)
def test_repr(core: SimpleNamespace, make, text: str) -> None:  # type: ignore[no-untyped-def]
    assert repr(make(core.vote)) == text


ALL_VALUES = [
    ("LeaderId", (1, None)),
    ("LeaderId", (1, 2)),
    ("LeaderId", (BIG, BIG)),
    ("Vote", (0, None, False)),
    ("Vote", (3, 2, True)),
    ("Vote", (BIG, 0, False)),
    ("LogId", (0, 0)),
    ("LogId", (BIG, 7)),
]


@pytest.mark.parametrize("cls, args", ALL_VALUES)
def test_hash_eq_pickle_copy(core: SimpleNamespace, cls: str, args: tuple) -> None:
    make = getattr(core.vote, cls)
    a, b = make(*args), make(*args)
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert len({a, b}) == 1
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(a, protocol))
        assert type(clone) is type(a) and clone == a and hash(clone) == hash(a) and repr(clone) == repr(a)
    assert copy.copy(a) == a and copy.deepcopy(a) == a


def test_distinct_values_are_unequal(core: SimpleNamespace) -> None:
    values = [getattr(core.vote, cls)(*args) for cls, args in ALL_VALUES]
    values += [core.vote.LeaderId(1, 3), core.vote.Vote(3, 2, False), core.vote.LogId(0, 1)]
    assert len(set(values)) == len(values)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (a == b) == (i == j)


@pytest.mark.parametrize("cls, args, field", [("LeaderId", (1, 2), "term"), ("Vote", (1, 2), "committed"), ("Vote", (1, 2), "node_id"), ("LogId", (1, 2), "index")])
def test_immutable(core: SimpleNamespace, cls: str, args: tuple, field: str) -> None:
    obj = getattr(core.vote, cls)(*args)
    with pytest.raises(AttributeError):
        setattr(obj, field, 9)
    with pytest.raises(AttributeError):
        obj.extra = 1  # no __dict__
    assert obj == getattr(core.vote, cls)(*args)


@pytest.mark.parametrize(
    "cls, args, error",
    [
        ("LeaderId", (-1,), ValueError),
        ("LeaderId", (2**63,), ValueError),
        ("LeaderId", (1, -1), ValueError),
        ("LeaderId", (1, 2**63), ValueError),
        ("LeaderId", (1.0,), TypeError),
        ("LeaderId", ("1",), TypeError),
        ("LeaderId", (None,), TypeError),
        ("LeaderId", (1, 2.5), TypeError),
        ("Vote", (-1,), ValueError),
        ("Vote", (1, -5), ValueError),
        ("Vote", (2**64, 1), ValueError),
        ("Vote", (1.5,), TypeError),
        ("LogId", (-1, 0), ValueError),
        ("LogId", (0, -1), ValueError),
        ("LogId", (0, 2**63), ValueError),
        ("LogId", (0, 1.0), TypeError),
        ("LogId", (None, 1), TypeError),
    ],
)
def test_invalid_args(core: SimpleNamespace, cls: str, args: tuple, error: type) -> None:
    with pytest.raises(error):
        getattr(core.vote, cls)(*args)


@pytest.mark.parametrize(
    "args, error",
    [
        ((-1, 0, 0, 0), ValueError),
        ((0, 0, -1, 0), ValueError),
        ((0, -2, 0, 0), ValueError),
        ((0, 0, 0, -2), ValueError),
        ((2**63, 0, 0, 0), ValueError),
        ((0, 0, 0, 2**63), ValueError),
        ((0, 0.5, 0, 0), TypeError),
        ((None, 0, 0, 0), TypeError),
    ],
)
def test_is_log_up_to_date_rejects_bad_args(core: SimpleNamespace, args: tuple, error: type) -> None:
    with pytest.raises(error):
        core.vote.is_log_up_to_date(*args)


def test_foreign_comparisons(core: SimpleNamespace) -> None:
    """Ordering against another class is a TypeError; equality is simply False."""
    v = core.vote
    pairs = [(v.LeaderId(1, 2), v.Vote(1, 2)), (v.Vote(1), (1, None, False)), (v.LogId(1, 2), (1, 2)), (v.LogId(1, 2), None)]
    for a, b in pairs:
        assert a != b and not (a == b)
        for op in (operator.lt, operator.le, operator.gt, operator.ge):
            with pytest.raises(TypeError):
                op(a, b)
            with pytest.raises(TypeError):
                op(b, a)


def test_function_args_type_checked(core: SimpleNamespace) -> None:
    v = core.vote
    with pytest.raises(TypeError):
        v.vote_can_grant(v.Vote(1), None)
    with pytest.raises(TypeError):
        v.vote_can_grant(None, v.Vote(1))
    with pytest.raises(TypeError):
        v.vote_can_grant(v.LeaderId(1), v.Vote(1))
    with pytest.raises(TypeError):
        v.log_id_lt((1, 2), v.LogId(1, 2))
    with pytest.raises(TypeError):
        v.log_id_max(v.LogId(1, 2), 5)
    with pytest.raises(TypeError):
        v.log_id_index((1, 2))


@pytest.mark.skipif(os.environ.get("RAFTX_NO_EXTENSIONS") == "1", reason="compiled twins not built")
def test_twins_do_not_mix() -> None:
    """Each twin compares only with its own classes; equal fields, equal hashes, same repr."""
    c, py = _core.load("c")["vote"], _core.load("py")["vote"]
    for cls, args in ALL_VALUES:
        a, b = getattr(c, cls)(*args), getattr(py, cls)(*args)
        assert a != b
        assert hash(a) == hash(b) and repr(a) == repr(b)
        with pytest.raises(TypeError):
            a < b  # noqa: B015
