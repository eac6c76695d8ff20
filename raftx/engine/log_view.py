"""The engine's in-memory shadow of the log ids (openraft ``LogIdList``, term runs).

The engine never holds entries: it needs only which term sits at which index (for
the consistency check and conflict backtracking, §5.3, and for the up-to-date
check, §5.4.1). Terms change rarely along a log, so they are kept as *runs*:
parallel lists ``starts[k]`` (first index of run ``k``) and ``terms[k]``; a lookup
is a binary search over the runs and a group-committed batch adds at most one run.

Indexes start at 0 (``initialize`` writes the first membership entry at index 0);
-1 stands for "no entry". Entries up to ``purged`` have been removed (a snapshot
covers them); the purged log id itself is still known, so ``term_at(purged.index)``
answers.

Invariants: ``purged.index <= last_index``; ``starts`` strictly increasing, all in
``(purged.index, last_index]``; ``terms`` strictly increasing (§5.3: terms never
decrease along a log).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

from raftx.types import LogId

__all__ = ["LogView"]


class LogView:
    """Log ids by index, as term runs; see the module docstring."""

    __slots__ = ("purged", "last_index", "_starts", "_terms")

    def __init__(
        self,
        runs: Sequence[tuple[int, int]] = (),
        last_index: int = -1,
        purged: LogId | None = None,
    ) -> None:
        #: The last purged log id (None: nothing purged).
        self.purged: LogId | None = purged
        #: Index of the last entry (-1: empty log and nothing purged).
        #: Invariant: last_index >= purged.index.
        self.last_index: int = max(last_index, -1 if purged is None else purged.index)
        self._starts: list[int] = []
        self._terms: list[int] = []
        for start, term in runs:
            self._push(start, term)

    # -- queries -----------------------------------------------------------------------

    @property
    def purged_index(self) -> int:
        """Index of the last purged entry, -1 if none."""
        return -1 if self.purged is None else self.purged.index

    @property
    def first_index(self) -> int:
        """Index of the first entry still present (``last_index + 1`` when none)."""
        return self.purged_index + 1

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if absent (purged or beyond the end)."""
        purged = self.purged
        if purged is not None and index == purged.index:
            return purged.term
        if index > self.last_index or index <= self.purged_index or index < 0:
            return None
        k = bisect_right(self._starts, index) - 1
        return self._terms[k] if k >= 0 else None

    def log_id_at(self, index: int) -> LogId | None:
        """The log id at ``index`` (None if absent)."""
        term = self.term_at(index)
        return None if term is None else LogId(term, index)

    @property
    def last_log_id(self) -> LogId | None:
        return self.log_id_at(self.last_index)

    @property
    def last_term(self) -> int:
        """The term of the last entry, -1 when there is none."""
        t = self.term_at(self.last_index)
        return -1 if t is None else t

    def has(self, log_id: LogId | None) -> bool:
        """True iff ``log_id`` is in the log (None, the empty prefix, always is)."""
        return log_id is None or self.term_at(log_id.index) == log_id.term

    def term_runs(self) -> list[tuple[int, int]]:
        """``(first_index, term)`` per run of present entries."""
        return list(zip(self._starts, self._terms))

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest ``i <= index`` whose term is ``<= term``, and that term (§5.3).

        Used for fast backtracking: the follower answers a failed consistency
        check with it, and the leader searches its own log with the follower's
        answer. Returns ``(-1, -1)`` when no entry qualifies.
        """
        index = min(index, self.last_index)
        k = bisect_right(self._starts, index) - 1
        while k >= 0:
            if self._terms[k] <= term:
                return index, self._terms[k]
            index = self._starts[k] - 1
            k -= 1
        purged = self.purged
        if purged is not None and index >= purged.index and purged.term <= term:
            return purged.index, purged.term
        return -1, -1

    # -- changes -----------------------------------------------------------------------

    def _push(self, start: int, term: int) -> None:
        if self._terms and term == self._terms[-1]:
            return
        if self._terms and term < self._terms[-1]:
            raise AssertionError(f"term decreases to {term} at index {start} (last run term {self._terms[-1]})")
        self._starts.append(start)
        self._terms.append(term)

    def append(self, runs: Sequence[tuple[int, int]], last_index: int) -> None:
        """Add entries ``last_index + 1 .. last_index`` (new) given as term runs."""
        if runs and runs[0][0] != self.last_index + 1:
            raise AssertionError(f"append at {runs[0][0]} does not follow last index {self.last_index}")
        for start, term in runs:
            self._push(start, term)
        self.last_index = last_index

    def truncate_after(self, index: int) -> None:
        """Keep the entries ``<= index`` (§5.3 conflict removal)."""
        if index < self.purged_index:
            raise AssertionError(f"truncate after {index} below purged {self.purged}")
        k = bisect_right(self._starts, index)
        del self._starts[k:]
        del self._terms[k:]
        self.last_index = min(self.last_index, index)

    def purge_upto(self, log_id: LogId) -> None:
        """Drop the entries ``<= log_id.index``; past the end, the log restarts after it."""
        if log_id.index <= self.purged_index:
            return
        if log_id.index >= self.last_index:
            self._starts.clear()
            self._terms.clear()
            self.last_index = log_id.index
        else:
            k = bisect_right(self._starts, log_id.index) - 1
            # run k contains the new first index log_id.index + 1
            del self._starts[:k]
            del self._terms[:k]
            self._starts[0] = log_id.index + 1
        self.purged = log_id

    def __repr__(self) -> str:
        return f"LogView(purged={self.purged!r}, last_index={self.last_index}, runs={self.term_runs()!r})"
