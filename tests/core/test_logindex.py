"""Table tests of `_core.logindex.LogIndex`, run against both twins (``core`` fixture)."""

from __future__ import annotations

from array import array
from types import SimpleNamespace
from typing import Any

import pytest

from raftx.errors import LogIndexError, RaftError

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1


def state(li: Any) -> tuple[Any, ...]:
    """Everything observable about an index, for "unchanged" checks."""
    entries = [(i, li.term_at(i), *li.locate(i)) for i in range(li.first_index, li.last_index + 1)]
    return (li.first_index, li.last_index, len(li), li.last_term, li.term_runs(), li.segments(), entries)


def build(core: SimpleNamespace, first: int, terms: list[int], segment: int = 1) -> Any:
    """An index holding ``terms`` from ``first`` on, offsets 100*k, lengths 10+k, in ``segment``."""
    li = core.logindex.LogIndex()
    n = len(terms)
    li.extend(first, terms, segment, [100 * k for k in range(n)], [10 + k for k in range(n)])
    return li


# -- empty ----------------------------------------------------------------------------


def test_empty_index(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    assert (li.first_index, li.last_index, len(li), li.last_term) == (0, -1, 0, None)
    assert li.term_runs() == [] and li.segments() == []
    assert li.first_index_of_term(0) is None and li.last_index_of_term(0) is None
    assert li.first_index_of_segment(0) is None and li.last_index_of_segment(0) is None
    with pytest.raises(IndexError, match=r"^log index 0 is outside \[0, -1\] \(the log index is empty\)$"):
        li.term_at(0)
    with pytest.raises(IndexError, match="the log index is empty"):
        li.locate(0)


def test_errors_are_raft_errors_and_value_errors(core: SimpleNamespace) -> None:
    li = build(core, 1, [1])
    with pytest.raises(LogIndexError) as info:
        li.append(5, 1, 1, 0, 0)
    assert isinstance(info.value, RaftError) and isinstance(info.value, ValueError)


# -- append ---------------------------------------------------------------------------


@pytest.mark.parametrize("first", [0, 1, 7, 2**40])
def test_first_append_sets_first_index(core: SimpleNamespace, first: int) -> None:
    li = core.logindex.LogIndex()
    li.append(first, 3, 9, 4096, 77)
    assert (li.first_index, li.last_index, len(li), li.last_term) == (first, first, 1, 3)
    assert li.term_at(first) == 3
    assert li.locate(first) == (9, 4096, 77)


def test_append_continues_and_merges_runs(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    for index, term, seg in [(0, 0, 1), (1, 1, 1), (2, 1, 1), (3, 1, 2), (4, 4, 2), (5, 4, 3)]:
        li.append(index, term, seg, 10 * index, index + 1)
    assert li.term_runs() == [(0, 0), (1, 1), (4, 4)]
    assert li.segments() == [(1, 0, 2), (2, 3, 4), (3, 5, 5)]
    assert [li.term_at(i) for i in range(6)] == [0, 1, 1, 1, 4, 4]
    assert [li.locate(i) for i in range(6)] == [(1, 0, 1), (1, 10, 2), (1, 20, 3), (2, 30, 4), (2, 40, 5), (3, 50, 6)]


@pytest.mark.parametrize("index", [0, 2, 3, 100])
def test_append_must_follow_last_index(core: SimpleNamespace, index: int) -> None:
    li = build(core, 1, [1, 1])  # holds 1..2; only 3 may come next
    before = state(li)
    if index == 3:
        li.append(index, 1, 1, 0, 0)
        assert li.last_index == 3
        return
    with pytest.raises(LogIndexError, match=f"^log index {index} does not follow the last index 2$"):
        li.append(index, 1, 1, 0, 0)
    assert state(li) == before


def test_append_term_below_last_term_is_refused(core: SimpleNamespace) -> None:
    li = build(core, 1, [2, 3])
    before = state(li)
    with pytest.raises(LogIndexError, match=r"^term 2 at index 3 is below the last term 3 \(§5.3\)$"):
        li.append(3, 2, 1, 0, 0)
    assert state(li) == before
    li.append(3, 3, 1, 0, 0)  # an equal term is fine
    assert li.term_runs() == [(1, 2), (2, 3)]


@pytest.mark.parametrize(
    "args, message",
    [
        ((-1, 1, 1, 0, 0), r"^index -1 is out of range"),
        ((2**63 - 1, 1, 1, 0, 0), r"^index 9223372036854775807 is out of range"),
        ((0, -1, 1, 0, 0), r"^term -1 is out of range \[0, 18446744073709551616\)$"),
        ((0, 2**64, 1, 0, 0), r"^term 18446744073709551616 is out of range"),
        ((0, 1, -2, 0, 0), r"^segment -2 is out of range"),
        ((0, 1, 1, 2**64, 0), r"^offset 18446744073709551616 is out of range"),
        ((0, 1, 1, 0, 2**32), r"^length 4294967296 is out of range \[0, 4294967296\)$"),
        ((0, 1, 1, 0, -1), r"^length -1 is out of range"),
        (("0", 1, 1, 0, 0), r"^index must be an int, not str$"),
        ((0, 1.0, 1, 0, 0), r"^term must be an int, not float$"),
        ((0, 1, None, 0, 0), r"^segment must be an int, not NoneType$"),
    ],
)
def test_append_rejects_out_of_range_values(core: SimpleNamespace, args: tuple[Any, ...], message: str) -> None:
    li = core.logindex.LogIndex()
    with pytest.raises(LogIndexError, match=message):
        li.append(*args)
    assert state(li) == (0, -1, 0, None, [], [], [])


def test_append_accepts_field_maxima(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    m = core.logindex.MAX_INDEX
    li.append(m, U64_MAX, U64_MAX, U64_MAX, U32_MAX)
    assert li.term_at(m) == U64_MAX
    assert li.locate(m) == (U64_MAX, U64_MAX, U32_MAX)
    assert li.first_index_of_term(U64_MAX) == m and li.last_index_of_term(U64_MAX) == m
    with pytest.raises(LogIndexError):
        li.append(m + 1, U64_MAX, 0, 0, 0)


# -- extend ---------------------------------------------------------------------------


def test_extend_from_typed_arrays_and_lists_agree(core: SimpleNamespace) -> None:
    terms, offsets, lengths = [1, 1, 2, 5, 5], [0, 40, 90, 200, 260], [40, 50, 110, 60, 7]
    a = core.logindex.LogIndex()
    a.extend(10, array("Q", terms), 4, array("Q", offsets), array("I", lengths))
    b = core.logindex.LogIndex()
    b.extend(10, terms, 4, tuple(offsets), lengths)
    assert state(a) == state(b)
    assert a.term_runs() == [(10, 1), (12, 2), (13, 5)]
    assert [a.locate(i) for i in range(10, 15)] == [(4, o, n) for o, n in zip(offsets, lengths)]


def test_extend_converts_other_array_typecodes(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    li.extend(0, array("B", [1, 2]), 0, array("L", [5, 6]), array("Q", [7, 8]))
    assert [li.locate(i) for i in (0, 1)] == [(0, 5, 7), (0, 6, 8)]
    assert li.term_runs() == [(0, 1), (1, 2)]


def test_extend_appends_to_existing_runs(core: SimpleNamespace) -> None:
    li = build(core, 0, [1, 1], segment=1)
    li.extend(2, [1, 2], 1, [1, 2], [1, 2])
    li.extend(4, [2, 2], 2, [0, 9], [9, 9])
    assert li.term_runs() == [(0, 1), (3, 2)]
    assert li.segments() == [(1, 0, 3), (2, 4, 5)]


def test_extend_empty_batch_changes_nothing(core: SimpleNamespace) -> None:
    li = build(core, 3, [1])
    before = state(li)
    li.extend(99, [], 1, array("Q"), array("I"))
    assert state(li) == before
    empty = core.logindex.LogIndex()
    empty.extend(5, [], 1, [], [])
    assert (empty.first_index, len(empty)) == (0, 0)


@pytest.mark.parametrize(
    "first_index, terms, offsets, lengths, message",
    [
        (4, [2, 2], [0, 1], [0], r"^batch columns differ in length: terms 2, offsets 2, lengths 1$"),
        (4, [2], [0, 1], [0], r"^batch columns differ in length: terms 1, offsets 2, lengths 1$"),
        (5, [2], [0], [0], r"^log index 5 does not follow the last index 3$"),
        (4, [1, 2], [0, 1], [0, 1], r"^term 1 at index 4 is below the last term 2 \(§5.3\)$"),
        (4, [2, 3, 2], [0, 1, 2], [0, 1, 2], r"^term 2 at index 6 is below the term 3 before it \(§5.3\)$"),
        (4, [2], [0], [2**32], r"^lengths must be a sequence of ints in \[0, 2\*\*32\)$"),
        (4, [2], [-1], [0], r"^offsets must be a sequence of ints in \[0, 2\*\*64\)$"),
        (4, [2**64], [0], [0], r"^terms must be a sequence of ints in \[0, 2\*\*64\)$"),
        (4, ["x"], [0], [0], r"^terms must be a sequence of ints"),
        (4, 7, [0], [0], r"^terms must be a sequence of ints"),
        (-4, [2], [0], [0], r"^first_index -4 is out of range"),
    ],
)
def test_extend_rejects_bad_batches_atomically(
    core: SimpleNamespace, first_index: int, terms: Any, offsets: Any, lengths: Any, message: str
) -> None:
    li = build(core, 2, [1, 2])  # holds 2..3, last term 2
    before = state(li)
    with pytest.raises(LogIndexError, match=message):
        li.extend(first_index, terms, 1, offsets, lengths)
    assert state(li) == before


def test_extend_past_max_index_is_refused(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    m = core.logindex.MAX_INDEX
    with pytest.raises(LogIndexError, match="passes MAX_INDEX"):
        li.extend(m - 1, [1, 1, 1], 0, [0, 0, 0], [0, 0, 0])
    assert len(li) == 0
    li.extend(m - 1, [1, 1], 0, [0, 0], [0, 0])
    assert li.last_index == m


def test_extend_lengths_of_typed_array_above_u32_are_refused(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    with pytest.raises(LogIndexError, match="lengths"):
        li.extend(0, [1], 0, [0], array("Q", [2**32]))


@pytest.mark.parametrize("as_arrays", [False, True])
def test_extend_base_offset_shifts_every_offset(core: SimpleNamespace, as_arrays: bool) -> None:
    offsets, lengths = [0, 40, 90], [40, 50, 7]
    o: Any = array("Q", offsets) if as_arrays else offsets
    li = build(core, 2, [1, 2])
    li.extend(4, [2, 2, 3], 6, o, lengths, base_offset=1000)
    assert [li.locate(i) for i in (4, 5, 6)] == [(6, 1000, 40), (6, 1040, 50), (6, 1090, 7)]
    assert li.term_runs() == [(2, 1), (3, 2), (6, 3)]
    assert list(o) == offsets  # the caller's column is not changed in place


def test_extend_base_offset_defaults_to_zero(core: SimpleNamespace) -> None:
    a, b = core.logindex.LogIndex(), core.logindex.LogIndex()
    a.extend(0, [1, 1], 0, [5, 9], [4, 4])
    b.extend(0, [1, 1], 0, [5, 9], [4, 4], base_offset=0)
    assert state(a) == state(b) and a.locate(1) == (0, 9, 4)


def test_extend_base_offset_up_to_u64_max(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    li.extend(0, [1, 1], 0, [0, 1], [1, 1], base_offset=U64_MAX - 1)
    assert [li.locate(i)[1] for i in (0, 1)] == [U64_MAX - 1, U64_MAX]


@pytest.mark.parametrize(
    "base, offsets, exc, message",
    [
        (-1, [0], LogIndexError, r"^base_offset -1 is out of range \[0, 18446744073709551616\)$"),
        (2**64, [0], LogIndexError, r"^base_offset 18446744073709551616 is out of range"),
        ("3", [0], LogIndexError, r"^base_offset must be an int, not str$"),
        (2, [0, U64_MAX - 1, 5], LogIndexError, r"^offsets shifted by base_offset 2 pass 2\*\*64$"),
        (2**63, [2**63, 0], LogIndexError, r"^offsets shifted by base_offset 9223372036854775808 pass 2\*\*64$"),
    ],
)
def test_extend_bad_base_offset_changes_nothing(
    core: SimpleNamespace, base: Any, offsets: list[int], exc: type[Exception], message: str
) -> None:
    li = build(core, 2, [1, 2])
    before = state(li)
    with pytest.raises(exc, match=message):
        li.extend(4, [2] * len(offsets), 1, offsets, [1] * len(offsets), base_offset=base)
    assert state(li) == before


def test_extend_base_offset_is_keyword_only(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    with pytest.raises(TypeError):
        li.extend(0, [1], 0, [0], [1], 5)  # type: ignore[misc]
    assert len(li) == 0


# -- lookups --------------------------------------------------------------------------


@pytest.mark.parametrize("i", [-1, 4, 9, 2**63, 2**80, -(2**70)])
def test_lookups_outside_the_range_raise_index_error(core: SimpleNamespace, i: int) -> None:
    li = build(core, 5, [1, 1, 2, 3])  # 5..8
    with pytest.raises(IndexError, match=rf"^log index {i} is outside \[5, 8\]$"):
        li.term_at(i)
    with pytest.raises(IndexError, match=rf"^log index {i} is outside \[5, 8\]$"):
        li.locate(i)


def test_lookups_reject_non_integers(core: SimpleNamespace) -> None:
    li = build(core, 0, [1])
    for bad in (0.0, "0", None):
        with pytest.raises(TypeError):
            li.term_at(bad)
        with pytest.raises(TypeError):
            li.locate(bad)


def test_single_entry(core: SimpleNamespace) -> None:
    li = build(core, 0, [7], segment=3)
    assert li.term_at(0) == 7 and li.locate(0) == (3, 0, 10)
    assert (li.first_index_of_term(7), li.last_index_of_term(7)) == (0, 0)
    assert li.segments() == [(3, 0, 0)]


def test_first_and_last_index_of_term(core: SimpleNamespace) -> None:
    li = build(core, 1, [1, 1, 1, 3, 3, 6, 6, 6, 6, 9])  # 1..10
    table = {0: (None, None), 1: (1, 3), 2: (None, None), 3: (4, 5), 6: (6, 9), 9: (10, 10), 10: (None, None)}
    for term, expected in table.items():
        assert (li.first_index_of_term(term), li.last_index_of_term(term)) == expected, term
    assert li.first_index_of_term(-5) is None and li.last_index_of_term(2**70) is None


def test_term_at_binary_search_over_many_runs(core: SimpleNamespace) -> None:
    terms = [t for t in range(1, 301) for _ in range(t % 7 + 1)]
    li = build(core, 0, terms)
    assert [li.term_at(i) for i in range(len(terms))] == terms
    assert len(li.term_runs()) == 300


# -- truncate_after -------------------------------------------------------------------


def test_truncate_after_middle_of_a_run(core: SimpleNamespace) -> None:
    li = build(core, 1, [1, 1, 2, 2, 2, 3])  # 1..6
    li.truncate_after(4)
    assert (li.first_index, li.last_index, li.last_term) == (1, 4, 2)
    assert li.term_runs() == [(1, 1), (3, 2)]
    assert li.first_index_of_term(3) is None and li.last_index_of_term(2) == 4
    with pytest.raises(IndexError):
        li.term_at(5)
    li.append(5, 2, 1, 0, 0)  # the run continues
    li.append(6, 5, 1, 0, 0)
    assert li.term_runs() == [(1, 1), (3, 2), (6, 5)]


def test_truncate_at_a_run_boundary_then_lower_term_allowed(core: SimpleNamespace) -> None:
    li = build(core, 1, [1, 1, 4, 4])
    li.truncate_after(2)
    assert li.last_term == 1 and li.term_runs() == [(1, 1)]
    li.append(3, 2, 1, 0, 0)  # a term below the removed run's term is fine now
    assert li.term_runs() == [(1, 1), (3, 2)]


def test_truncate_to_empty_keeps_first_index(core: SimpleNamespace) -> None:
    li = build(core, 5, [1, 2])
    li.truncate_after(4)
    assert (li.first_index, li.last_index, len(li), li.last_term) == (5, 4, 0, None)
    assert li.term_runs() == [] and li.segments() == []
    li.append(9, 1, 1, 0, 0)  # empty: any index may start it
    assert li.first_index == 9


@pytest.mark.parametrize("i", [6, 7, 2**70])
def test_truncate_after_at_or_past_last_is_noop(core: SimpleNamespace, i: int) -> None:
    li = build(core, 5, [1, 2])  # 5..6
    before = state(li)
    li.truncate_after(i)
    assert state(li) == before


@pytest.mark.parametrize("i", [3, -1, -(2**70)])
def test_truncate_into_purged_entries_is_refused(core: SimpleNamespace, i: int) -> None:
    li = build(core, 5, [1, 2])
    before = state(li)
    with pytest.raises(LogIndexError, match=rf"^cannot truncate after {i}: entries before first_index 5 are purged$"):
        li.truncate_after(i)
    assert state(li) == before


def test_truncate_empty_index_at_minus_one(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    li.truncate_after(-1)
    assert (li.first_index, li.last_index) == (0, -1)


# -- purge_upto -----------------------------------------------------------------------


def test_purge_middle_clamps_first_runs(core: SimpleNamespace) -> None:
    li = build(core, 1, [1, 1, 2, 2, 3])  # 1..5
    li.purge_upto(3)
    assert (li.first_index, li.last_index, len(li)) == (4, 5, 2)
    assert li.term_runs() == [(4, 2), (5, 3)]
    assert li.first_index_of_term(2) == 4 and li.first_index_of_term(1) is None
    assert li.locate(4) == (1, 300, 13)
    with pytest.raises(IndexError, match=r"outside \[4, 5\]"):
        li.term_at(3)


@pytest.mark.parametrize("i", [5, 6, 1000])
def test_purge_at_or_beyond_last_empties(core: SimpleNamespace, i: int) -> None:
    li = build(core, 1, [1, 1, 2, 2, 3])  # 1..5
    li.purge_upto(i)
    assert (li.first_index, li.last_index, len(li), li.last_term) == (i + 1, i, 0, None)
    assert li.term_runs() == [] and li.segments() == []


@pytest.mark.parametrize("i", [0, -1, -(2**70)])
def test_purge_below_first_is_noop(core: SimpleNamespace, i: int) -> None:
    li = build(core, 1, [1, 2])
    before = state(li)
    li.purge_upto(i)
    assert state(li) == before


def test_purge_of_empty_index_moves_first_index(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    li.purge_upto(41)
    assert (li.first_index, li.last_index) == (42, 41)
    li.purge_upto(10)
    assert li.first_index == 42


def test_purge_above_max_index_is_refused(core: SimpleNamespace) -> None:
    li = build(core, 0, [1])
    before = state(li)
    with pytest.raises(LogIndexError, match=r"^purge index 9223372036854775807 is above MAX_INDEX"):
        li.purge_upto(core.logindex.MAX_INDEX + 1)
    with pytest.raises(LogIndexError, match="above MAX_INDEX"):
        li.purge_upto(2**80)
    assert state(li) == before
    li.purge_upto(core.logindex.MAX_INDEX)
    assert li.first_index == core.logindex.MAX_INDEX + 1 and len(li) == 0


def test_purge_then_append_continues(core: SimpleNamespace) -> None:
    li = build(core, 1, [1, 2, 2])  # 1..3
    li.purge_upto(2)
    with pytest.raises(LogIndexError, match="does not follow"):
        li.append(5, 2, 1, 0, 0)
    li.append(4, 2, 1, 0, 0)
    assert li.term_runs() == [(3, 2)] and li.last_index == 4
    li.purge_upto(10)  # snapshot installed past the log: restart at 11
    li.append(11, 1, 5, 0, 3)  # empty again: any term is accepted
    assert (li.first_index, li.term_at(11), li.locate(11)) == (11, 1, (5, 0, 3))


# -- segments -------------------------------------------------------------------------


def test_segment_runs_and_lookups(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    li.extend(1, [1] * 4, 10, [0, 1, 2, 3], [1] * 4)  # 1..4 in segment 10
    li.extend(5, [1] * 3, 11, [0, 1, 2], [1] * 3)  # 5..7 in 11
    li.append(8, 2, 11, 3, 1)
    li.append(9, 2, 12, 0, 1)
    assert li.segments() == [(10, 1, 4), (11, 5, 8), (12, 9, 9)]
    assert [li.first_index_of_segment(s) for s in (10, 11, 12, 13)] == [1, 5, 9, None]
    assert [li.last_index_of_segment(s) for s in (10, 11, 12, 13)] == [4, 8, 9, None]
    assert li.locate(8) == (11, 3, 1)
    li.purge_upto(5)
    assert li.segments() == [(11, 6, 8), (12, 9, 9)]
    assert li.first_index_of_segment(10) is None
    li.truncate_after(6)
    assert li.segments() == [(11, 6, 6)]
    li.append(7, 3, 13, 0, 1)
    assert li.segments() == [(11, 6, 6), (13, 7, 7)]


def test_segment_reused_after_other_segment(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    for index, seg in enumerate([1, 2, 1]):
        li.append(index, 1, seg, 0, 0)
    assert li.segments() == [(1, 0, 0), (2, 1, 1), (1, 2, 2)]
    assert (li.first_index_of_segment(1), li.last_index_of_segment(1)) == (0, 2)


# -- long churn (exercises buffer growth, lazy compaction and shrinking) --------------


def test_sliding_window_churn(core: SimpleNamespace) -> None:
    """Append batches at the tail while purging the head and now and then truncating
    the tail, like a live log; every surviving entry must keep its term and locator
    through buffer growth, lazy compaction and shrinking."""
    li = core.logindex.LogIndex()
    expected: dict[int, tuple[int, tuple[int, int, int]]] = {}
    nxt = 0
    for step in range(400):
        n = 37 + step % 90
        idx = range(nxt, nxt + n)
        segment = nxt // 1000
        li.extend(nxt, [i // 50 for i in idx], segment, [i * 3 for i in idx], [i % 997 for i in idx])
        expected.update((i, (i // 50, (segment, i * 3, i % 997))) for i in idx)
        nxt += n
        if step % 3 == 2:
            li.purge_upto(nxt - 500 + step % 200)
        if step % 17 == 16:
            li.truncate_after(li.last_index - 20)
            nxt = li.last_index + 1
        for i in range(li.first_index, li.last_index + 1, 7):
            assert (li.term_at(i), li.locate(i)) == expected[i], i
    assert li.first_index > 0 and len(li) > 0
    assert li.memory_bytes() < 200_000  # the purged head was released, not kept


def test_memory_bytes_tracks_growth_and_release(core: SimpleNamespace) -> None:
    li = core.logindex.LogIndex()
    empty = li.memory_bytes()
    li.extend(0, [1] * 100_000, 0, range(100_000), [1] * 100_000)
    full = li.memory_bytes()
    assert full >= empty + 100_000 * 12
    li.purge_upto(99_990)
    assert li.memory_bytes() < full // 10
