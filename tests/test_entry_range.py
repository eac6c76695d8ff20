"""`EntryRange`: the ``Sequence[Entry]`` the node passes to `RaftStateMachine.apply`."""

from __future__ import annotations

import pytest

from raftx.types import Entry, EntryRange, LogId, Membership

MEMBERSHIP = Membership.new({1, 2, 3})
ENTRIES = [Entry(LogId(2, 5), None), Entry(LogId(2, 6), b"a"), Entry(LogId(3, 7), MEMBERSHIP),
           Entry(LogId(3, 8), b"b")]


def test_behaves_as_the_list_of_its_entries() -> None:
    r = EntryRange(5, [2, 2, 3, 3], [None, b"a", MEMBERSHIP, b"b"])
    assert len(r) == 4 and bool(r)
    assert list(r) == ENTRIES
    assert [r[i] for i in range(-4, 4)] == ENTRIES + ENTRIES
    assert [r.log_id(i) for i in range(4)] == [e.log_id for e in ENTRIES]
    assert list(r[1:3]) == ENTRIES[1:3] and r[1:3].first_index == 6
    assert list(r[3:1]) == [] and list(r[:]) == ENTRIES
    assert r.index(ENTRIES[2]) == 2 and ENTRIES[3] in r
    for bad in (4, -5):
        with pytest.raises(IndexError):
            r[bad]
    with pytest.raises(ValueError):
        r[::2]


def test_of_round_trips_consecutive_entries_only() -> None:
    r = EntryRange.of(ENTRIES)
    assert (r.first_index, list(r.terms), list(r.payloads)) == (5, [2, 2, 3, 3], [None, b"a", MEMBERSHIP, b"b"])
    assert EntryRange.of(r) is r and len(EntryRange.of([])) == 0
    with pytest.raises(ValueError):
        EntryRange.of([ENTRIES[0], ENTRIES[2]])


def test_terms_and_payloads_must_match() -> None:
    with pytest.raises(ValueError):
        EntryRange(1, [1, 1], [b"x"])
