"""Hypothesis tests: `_core.logindex.LogIndex` (both twins) against a naive oracle.

The oracle is a plain list of ``(index, term, segment, offset, length)`` tuples with
the rules of the ``logindex_py`` docstring written out the obvious way.
"""

from __future__ import annotations

from array import array
from types import SimpleNamespace
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from raftx.errors import LogIndexError

MAX_INDEX = 2**63 - 2
Entry = tuple[int, int, int, int, int]  # (index, term, segment, offset, length)


class Oracle:
    """The log index as a list of entries; O(n) everything."""

    def __init__(self) -> None:
        self.first = 0
        self.entries: list[Entry] = []

    @property
    def last(self) -> int:
        return self.first + len(self.entries) - 1

    def _get(self, i: int) -> Entry:
        if not self.first <= i <= self.last:
            raise IndexError(i)
        return self.entries[i - self.first]

    def term_at(self, i: int) -> int:
        return self._get(i)[1]

    def locate(self, i: int) -> tuple[int, int, int]:
        return self._get(i)[2:]

    def first_index_of_term(self, t: int) -> int | None:
        return next((e[0] for e in self.entries if e[1] == t), None)

    def last_index_of_term(self, t: int) -> int | None:
        return next((e[0] for e in reversed(self.entries) if e[1] == t), None)

    def term_runs(self) -> list[tuple[int, int]]:
        return [(e[0], e[1]) for k, e in enumerate(self.entries) if k == 0 or self.entries[k - 1][1] != e[1]]

    def segments(self) -> list[tuple[int, int, int]]:
        out: list[list[int]] = []
        for e in self.entries:
            if out and out[-1][0] == e[2]:
                out[-1][2] = e[0]
            else:
                out.append([e[2], e[0], e[0]])
        return [(s, f, la) for s, f, la in out]

    def extend(self, first_index: int, batch: list[tuple[int, int, int, int]]) -> None:
        """``batch`` is ``[(term, segment, offset, length), ...]``."""
        if not batch:
            return
        if self.entries and first_index != self.last + 1:
            raise LogIndexError("does not follow")
        if first_index + len(batch) - 1 > MAX_INDEX:
            raise LogIndexError("past MAX_INDEX")
        prev = self.entries[-1][1] if self.entries else 0
        for term, *_ in batch:
            if term < prev:
                raise LogIndexError("term decreases")
            prev = term
        if not self.entries:
            self.first = first_index
        self.entries += [(first_index + k, *b) for k, b in enumerate(batch)]

    def truncate_after(self, i: int) -> None:
        if i < self.first - 1:
            raise LogIndexError("purged")
        self.entries = [e for e in self.entries if e[0] <= i]

    def purge_upto(self, i: int) -> None:
        if i < self.first:
            return
        if i > MAX_INDEX:
            raise LogIndexError("above MAX_INDEX")
        self.entries = [e for e in self.entries if e[0] > i]
        self.first = i + 1


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """``("ok", result)`` or ``("raise", exception type)`` for comparing both sides."""
    try:
        return ("ok", fn(*args))
    except (IndexError, LogIndexError) as exc:
        return ("raise", LogIndexError if isinstance(exc, LogIndexError) else IndexError)


terms_step = st.integers(0, 2)  # how much the term rises from one entry to the next
values = st.tuples(st.sampled_from([0, 1, 2, 7, 2**64 - 1]), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))


class LogIndexMachine(RuleBasedStateMachine):
    """Random appends, batches, truncations, purges and lookups, checked step by step."""

    module: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.li = self.module.LogIndex()
        self.oracle = Oracle()

    # -- choosing arguments near the interesting edges ------------------------------

    def _near(self, delta: int) -> int:
        """An index around the current range: ``first_index + delta``."""
        return self.oracle.first + delta

    def _next_term(self, step: int) -> int:
        o = self.oracle
        base = o.entries[-1][1] if o.entries else 0
        return max(0, base + step)

    # -- rules ----------------------------------------------------------------------

    @rule(skip=st.sampled_from([0, 0, 0, 1, -1, 5]), step=st.integers(-1, 2), v=values)
    def append(self, skip: int, step: int, v: tuple[int, int, int]) -> None:
        index = max(0, self.oracle.last + 1 + skip)
        term = self._next_term(step)
        seg, off, ln = v
        got = outcome(self.li.append, index, term, seg, off, ln)
        want = outcome(self.oracle.extend, index, [(term, seg, off, ln)])
        assert got == want, (got, want)

    @rule(
        skip=st.sampled_from([0, 0, 0, 1, -1]),
        steps=st.lists(st.integers(-1, 2), max_size=40),
        seg=st.sampled_from([0, 1, 2, 3, 2**64 - 1]),
        use_arrays=st.booleans(),
        data=st.data(),
    )
    def extend(self, skip: int, steps: list[int], seg: int, use_arrays: bool, data: Any) -> None:
        o = self.oracle
        index = max(0, o.last + 1 + skip)
        term = o.entries[-1][1] if o.entries else 0
        terms = []
        for s in steps:
            term = max(0, term + s)
            terms.append(term)
        n = len(terms)
        offsets = data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n))
        lengths = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n))
        args: tuple[Any, ...] = (terms, offsets, lengths)
        if use_arrays:
            args = (array("Q", terms), array("Q", offsets), array("I", lengths))
        got = outcome(self.li.extend, index, args[0], seg, args[1], args[2])
        want = outcome(o.extend, index, [(t, seg, off, ln) for t, off, ln in zip(terms, offsets, lengths)])
        assert got == want, (got, want)

    @rule(where=st.integers(-3, 45))
    def truncate_after(self, where: int) -> None:
        i = self._near(where)
        assert outcome(self.li.truncate_after, i) == outcome(self.oracle.truncate_after, i)

    @rule(where=st.integers(-3, 45))
    def purge_upto(self, where: int) -> None:
        i = self._near(where)
        assert outcome(self.li.purge_upto, i) == outcome(self.oracle.purge_upto, i)

    @rule(where=st.integers(-3, 45))
    def lookups(self, where: int) -> None:
        i = self._near(where)
        assert outcome(self.li.term_at, i) == outcome(self.oracle.term_at, i)
        assert outcome(self.li.locate, i) == outcome(self.oracle.locate, i)

    @rule(term=st.integers(-1, 40))
    def term_bounds(self, term: int) -> None:
        assert self.li.first_index_of_term(term) == self.oracle.first_index_of_term(term)
        assert self.li.last_index_of_term(term) == self.oracle.last_index_of_term(term)

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def same_shape(self) -> None:
        o = self.oracle
        assert (self.li.first_index, self.li.last_index, len(self.li)) == (o.first, o.last, len(o.entries))
        assert self.li.last_term == (o.entries[-1][1] if o.entries else None)
        assert self.li.term_runs() == o.term_runs()
        assert self.li.segments() == o.segments()


def test_logindex_state_machine(core: SimpleNamespace) -> None:
    machine = type("Machine", (LogIndexMachine,), {"module": core.logindex})
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=150, stateful_step_count=40, deadline=None, database=None),
    )


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.integers(0, 2**40),
    runs=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 30)), min_size=1, max_size=30),
    probes=st.lists(st.integers(0, 500), max_size=30),
)
def test_term_runs_lookup_matches_expansion(
    core: SimpleNamespace, first: int, runs: list[tuple[int, int]], probes: list[int]
) -> None:
    """A log built from term runs answers term_at / *_index_of_term like the expanded list."""
    terms: list[int] = []
    term = 0
    for rise, length in runs:
        term += rise
        terms += [term] * length
    li = core.logindex.LogIndex()
    li.extend(first, array("Q", terms), 0, array("Q", range(len(terms))), array("I", [1] * len(terms)))
    oracle = Oracle()
    oracle.extend(first, [(t, 0, k, 1) for k, t in enumerate(terms)])
    for p in probes:
        i = first + p
        assert outcome(li.term_at, i) == outcome(oracle.term_at, i)
        assert li.first_index_of_term(p % 40) == oracle.first_index_of_term(p % 40)
        assert li.last_index_of_term(p % 40) == oracle.last_index_of_term(p % 40)
