"""Property tests of ``_core.vote`` (both twins) against naive oracles on plain tuples."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

BIG = 2**63 - 1

terms = st.one_of(st.integers(0, 4), st.integers(0, BIG))  # small values collide often
nodes = st.one_of(st.none(), st.integers(0, 3), st.integers(0, BIG))
indexes = st.one_of(st.integers(0, 4), st.integers(0, BIG))
votes = st.tuples(terms, nodes, st.booleans())


def oracle_leader_cmp(a: tuple, b: tuple) -> str:
    """'<', '=', '>' or '||' for (term, node_id) pairs, openraft std mode."""
    (ta, na), (tb, nb) = a, b
    if ta != tb:
        return "<" if ta < tb else ">"
    if na == nb:
        return "="
    if na is None:
        return "<"
    if nb is None:
        return ">"
    return "||"


def oracle_vote_cmp(a: tuple, b: tuple) -> str:
    rel = oracle_leader_cmp(a[:2], b[:2])
    if rel == "||" and a[2] != b[2]:
        return ">" if a[2] else "<"  # the committed vote (an elected leader) wins
    if rel != "=":
        return rel
    return "=" if a[2] == b[2] else ("<" if b[2] else ">")


def relation(a: object, b: object) -> str:
    lt, le, eq, gt, ge = a < b, a <= b, a == b, a > b, a >= b  # type: ignore[operator]
    assert le == (lt or eq) and ge == (gt or eq)  # consistency of the six operators
    assert (a != b) == (not eq)
    return "<" if lt else ">" if gt else "=" if eq else "||"


@settings(max_examples=300, deadline=None)
@given(a=st.tuples(terms, nodes), b=st.tuples(terms, nodes))
def test_leader_id_order_matches_oracle(core: SimpleNamespace, a: tuple, b: tuple) -> None:
    L = core.vote.LeaderId
    assert relation(L(*a), L(*b)) == oracle_leader_cmp(a, b)
    if a == b:
        assert hash(L(*a)) == hash(L(*b))


@settings(max_examples=300, deadline=None)
@given(a=votes, b=votes)
def test_vote_order_and_grant_match_oracle(core: SimpleNamespace, a: tuple, b: tuple) -> None:
    V = core.vote.Vote
    rel = oracle_vote_cmp(a, b)
    assert relation(V(*a), V(*b)) == rel
    # grant iff incoming >= current (openraft docs/data/vote.md)
    assert core.vote.vote_can_grant(V(*a), V(*b)) == (rel in ("<", "="))


@settings(max_examples=300, deadline=None)
@given(a=st.tuples(terms, indexes), b=st.tuples(terms, indexes))
def test_log_id_order_is_tuple_order(core: SimpleNamespace, a: tuple, b: tuple) -> None:
    v = core.vote
    x, y = v.LogId(*a), v.LogId(*b)
    assert relation(x, y) == ("<" if a < b else ">" if a > b else "=")
    assert v.log_id_lt(x, y) == (a < b)
    assert v.log_id_max(x, y) == v.LogId(*max(a, b))


@settings(max_examples=300, deadline=None)
@given(
    last=st.tuples(terms, st.one_of(st.integers(-1, 4), st.integers(-1, BIG))),
    cand=st.tuples(terms, st.one_of(st.integers(-1, 4), st.integers(-1, BIG))),
)
def test_is_log_up_to_date_is_tuple_order(core: SimpleNamespace, last: tuple, cand: tuple) -> None:
    """§5.4.1: compare last terms, then lengths: exactly the lexicographic order."""
    assert core.vote.is_log_up_to_date(*last, *cand) == (cand >= last)
