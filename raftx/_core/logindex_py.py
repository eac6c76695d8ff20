"""The in-memory index of the Raft log (pure-Python twin; this module is the spec).

`LogIndex` maps every log index in ``[first_index, last_index]`` to

* its **term** (the term of the leader that created the entry, §5.3), and
* its **locator** ``(segment, offset, length)``: which segment file holds the
  record, at which byte offset, and how many bytes it takes.

It is owned by the segmented file log, rebuilt on recovery from
`raftx._core.codec.scan_records`, and read by the engine (``term_at`` for the
AppendEntries consistency check, ``first_index_of_term`` / ``last_index_of_term``
for fast conflict backtracking, §5.3).

Layout (a million entries must fit in under 24 bytes each):

* per entry: ``offsets`` (``array('Q')``, 8 bytes) and ``lengths`` (``array('I')``,
  4 bytes): no Python object per entry;
* terms and segments change rarely, so both are stored as **runs**: parallel arrays
  of ``(first index of the run, value)``; a lookup is a binary search over the runs.
  Term runs have strictly increasing terms (terms never decrease along the log);
  segment runs merge consecutive entries of the same segment.

Rules, identical in both twins:

* An empty index starts with ``first_index = 0`` (raftx logs may start at index 0).
  `append` / `extend` on an *empty* index may start at any index, which becomes
  ``first_index``; on a non-empty index the new entry must be ``last_index + 1``.
* Terms never decrease along the log (§5.3): a term below `last_term` is refused.
* Indexes lie in ``[0, MAX_INDEX]``; terms, segments and offsets in ``[0, 2**64)``;
  lengths in ``[0, 2**32)``.
* `truncate_after(i)` keeps the entries ``<= i`` (``i = first_index - 1`` clears
  the index); `purge_upto(i)` drops the entries ``<= i``; past ``last_index`` it
  leaves an empty index with ``first_index = i + 1``.
* Invalid changes raise `raftx.errors.LogIndexError` (a `ValueError`) and leave
  the index untouched; `term_at` / `locate` outside ``[first_index, last_index]``
  raise `IndexError`; a non-integer argument raises `TypeError`.
"""

from __future__ import annotations

import logging
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import compress, islice
from operator import index as _as_int
from operator import lt, ne

from raftx.errors import LogIndexError

__all__ = ["LogIndex", "MAX_INDEX"]

logger = logging.getLogger(__name__)

#: Largest log index the index accepts (so that ``MAX_INDEX + 1`` fits in an int64).
MAX_INDEX = 2**63 - 2

_U64 = 2**64
_U32 = 2**32


def _check_int(value: object, name: str, upper: int) -> int:
    """``value`` as an int in ``[0, upper)``, else `LogIndexError`."""
    try:
        v = _as_int(value)  # type: ignore[arg-type]
    except TypeError:
        raise LogIndexError(f"{name} must be an int, not {type(value).__name__}") from None
    if v < 0 or v >= upper:
        raise LogIndexError(f"{name} {v} is out of range [0, {upper})")
    return v


def _check_index(value: object, name: str = "index") -> int:
    """A log index in ``[0, MAX_INDEX]``, else `LogIndexError`."""
    return _check_int(value, name, MAX_INDEX + 1)


def _column(typecode: str, values: object, name: str) -> array[int]:
    """``values`` as an ``array(typecode)`` (no copy if it already is one)."""
    if isinstance(values, array) and values.typecode == typecode:
        return values
    try:
        column: array[int] = array(typecode, values)  # type: ignore[call-overload]
        return column
    except (TypeError, OverflowError, ValueError):
        bits = 64 if typecode == "Q" else 32
        raise LogIndexError(f"{name} must be a sequence of ints in [0, 2**{bits})") from None


class LogIndex:
    """Log index -> term (as runs) and locator ``(segment, offset, length)``.

    See the module docstring for the layout and the rules.
    """

    __slots__ = ("_first", "_offsets", "_lengths", "_run_first", "_run_term", "_seg_first", "_seg_id")

    def __init__(self) -> None:
        self._first = 0
        self._offsets = array("Q")
        self._lengths = array("I")
        self._run_first = array("q")
        self._run_term = array("Q")
        self._seg_first = array("q")
        self._seg_id = array("Q")

    # -- properties ---------------------------------------------------------------

    @property
    def first_index(self) -> int:
        """The index of the first entry (or of the next one to come, when empty)."""
        return self._first

    @property
    def last_index(self) -> int:
        """The index of the last entry; ``first_index - 1`` when empty."""
        return self._first + len(self._offsets) - 1

    @property
    def last_term(self) -> int | None:
        """The term of the last entry, or ``None`` when empty."""
        return self._run_term[-1] if self._run_term else None

    def __len__(self) -> int:
        return len(self._offsets)

    def __repr__(self) -> str:
        return (
            f"LogIndex(first_index={self.first_index}, last_index={self.last_index}, "
            f"term_runs={len(self._run_term)}, segment_runs={len(self._seg_id)})"
        )

    # -- lookups ------------------------------------------------------------------

    def _out_of_range(self, i: int) -> IndexError:
        first, last = self._first, self._first + len(self._offsets) - 1
        empty = " (the log index is empty)" if last < first else ""
        return IndexError(f"log index {i} is outside [{first}, {last}]{empty}")

    def term_at(self, i: int) -> int:
        """The term of the entry at index ``i`` (§5.3 consistency check).

        Raises `IndexError` if ``i`` is outside ``[first_index, last_index]``.
        """
        i = _as_int(i)
        first = self._first
        if i < first or i - first >= len(self._offsets):
            raise self._out_of_range(i)
        return self._run_term[bisect_right(self._run_first, i) - 1]

    def locate(self, i: int) -> tuple[int, int, int]:
        """``(segment, offset, length)`` of the entry at index ``i``.

        Raises `IndexError` if ``i`` is outside ``[first_index, last_index]``.
        """
        i = _as_int(i)
        pos = i - self._first
        if pos < 0 or pos >= len(self._offsets):
            raise self._out_of_range(i)
        segment = self._seg_id[bisect_right(self._seg_first, i) - 1]
        return (segment, self._offsets[pos], self._lengths[pos])

    def first_index_of_term(self, term: int) -> int | None:
        """The first index still held whose term is ``term``, or ``None``.

        A follower that rejects AppendEntries reports this for the conflicting term
        so the leader can skip the whole term at once (§5.3, fast backtracking).
        """
        term = _as_int(term)
        k = bisect_left(self._run_term, term)
        if k == len(self._run_term) or self._run_term[k] != term:
            return None
        return self._run_first[k]

    def last_index_of_term(self, term: int) -> int | None:
        """The last index whose term is ``term``, or ``None`` (§5.3 backtracking)."""
        term = _as_int(term)
        k = bisect_left(self._run_term, term)
        if k == len(self._run_term) or self._run_term[k] != term:
            return None
        if k + 1 < len(self._run_first):
            return self._run_first[k + 1] - 1
        return self.last_index

    def term_runs(self) -> list[tuple[int, int]]:
        """The term runs ``[(first_index, term), ...]`` in log order."""
        return list(zip(self._run_first, self._run_term))

    def segments(self) -> list[tuple[int, int, int]]:
        """The segment runs ``[(segment, first_index, last_index), ...]`` in log order.

        The storage layer deletes a segment file once all its runs lie at or below the
        purge point.
        """
        ends = [*islice(self._seg_first, 1, None), self.last_index + 1]
        return [(seg, first, end - 1) for seg, first, end in zip(self._seg_id, self._seg_first, ends)]

    def first_index_of_segment(self, segment: int) -> int | None:
        """The first index held in ``segment``, or ``None`` if it holds none."""
        segment = _as_int(segment)
        for seg, first in zip(self._seg_id, self._seg_first):
            if seg == segment:
                return first
        return None

    def last_index_of_segment(self, segment: int) -> int | None:
        """The last index held in ``segment``, or ``None`` if it holds none."""
        segment = _as_int(segment)
        for seg, _first, last in reversed(self.segments()):
            if seg == segment:
                return last
        return None

    def memory_bytes(self) -> int:
        """Approximate heap bytes used by the index (object plus its buffers)."""
        arrays = (self._offsets, self._lengths, self._run_first, self._run_term, self._seg_first, self._seg_id)
        return sys.getsizeof(self) + sum(sys.getsizeof(a) for a in arrays)

    # -- changes ------------------------------------------------------------------

    def _check_next(self, index: int) -> None:
        """Refuse ``index`` unless it follows ``last_index`` (any index when empty)."""
        if self._offsets and index != self._first + len(self._offsets):
            raise LogIndexError(f"log index {index} does not follow the last index {self.last_index}")

    def _push_runs(self, index: int, term: int, segment: int) -> None:
        """Start a term run and/or a segment run at ``index`` if the value changes."""
        if not self._run_term or self._run_term[-1] != term:
            self._run_first.append(index)
            self._run_term.append(term)
        if not self._seg_id or self._seg_id[-1] != segment:
            self._seg_first.append(index)
            self._seg_id.append(segment)

    def append(self, index: int, term: int, segment: int, offset: int, length: int) -> None:
        """Add one entry at ``index`` (``last_index + 1``, or any index when empty).

        Raises `LogIndexError` (changing nothing) if ``index`` does not follow, if
        ``term`` is below `last_term` (terms never decrease along a log, §5.3), or if a
        value is out of range.
        """
        index = _check_index(index)
        term = _check_int(term, "term", _U64)
        segment = _check_int(segment, "segment", _U64)
        offset = _check_int(offset, "offset", _U64)
        length = _check_int(length, "length", _U32)
        self._check_next(index)
        if self._run_term and term < self._run_term[-1]:
            raise LogIndexError(f"term {term} at index {index} is below the last term {self._run_term[-1]} (§5.3)")
        if not self._offsets:
            self._first = index
        self._push_runs(index, term, segment)
        self._offsets.append(offset)
        self._lengths.append(length)

    def extend(
        self,
        first_index: int,
        terms: Sequence[int] | array[int],
        segment: int,
        offsets: Sequence[int] | array[int],
        lengths: Sequence[int] | array[int],
        *,
        base_offset: int = 0,
    ) -> None:
        """Add a batch of entries ``first_index, first_index + 1, ...`` all in ``segment``.

        ``terms`` / ``offsets`` / ``lengths`` are equal-length sequences of ints, or the
        typed arrays (``array('Q')``, ``array('Q')``, ``array('I')``) produced by
        `raftx._core.codec.scan_records`. ``base_offset`` is added to every offset:
        the store passes a batch's record offsets (relative to the batch buffer) and
        the file offset where the buffer was written. It must be an int in
        ``[0, 2**64)`` and every shifted offset must stay below ``2**64``.
        The batch is validated as a whole (continuity, term order §5.3, ranges)
        before anything changes. An empty batch changes nothing.
        """
        first_index = _check_index(first_index, "first_index")
        segment = _check_int(segment, "segment", _U64)
        base = _check_int(base_offset, "base_offset", _U64)
        t = _column("Q", terms, "terms")
        o = _column("Q", offsets, "offsets")
        ln = _column("I", lengths, "lengths")
        n = len(t)
        if len(o) != n or len(ln) != n:
            raise LogIndexError(f"batch columns differ in length: terms {n}, offsets {len(o)}, lengths {len(ln)}")
        if n == 0:
            return
        if base:
            try:
                o = array("Q", [x + base for x in o])
            except OverflowError:
                raise LogIndexError(f"offsets shifted by base_offset {base} pass 2**64") from None
        self._check_next(first_index)
        if first_index + n - 1 > MAX_INDEX:
            raise LogIndexError(f"batch of {n} entries from {first_index} passes MAX_INDEX {MAX_INDEX}")
        if self._run_term and t[0] < self._run_term[-1]:
            raise LogIndexError(
                f"term {t[0]} at index {first_index} is below the last term {self._run_term[-1]} (§5.3)"
            )
        if any(map(lt, islice(t, 1, None), t)):
            k = next(compress(range(1, n), map(lt, islice(t, 1, None), t)))
            raise LogIndexError(f"term {t[k]} at index {first_index + k} is below the term {t[k - 1]} before it (§5.3)")
        if not self._offsets:
            self._first = first_index
        self._push_runs(first_index, t[0], segment)
        for k in compress(range(1, n), map(ne, islice(t, 1, None), t)):
            self._run_first.append(first_index + k)
            self._run_term.append(t[k])
        self._offsets.extend(o)
        self._lengths.extend(ln)

    def truncate_after(self, i: int) -> None:
        """Keep only the entries ``<= i``: drop a conflicting suffix (§5.3).

        ``i = first_index - 1`` clears the index; ``i >= last_index`` is a no-op.
        Raises `LogIndexError` for ``i < first_index - 1`` (those entries were purged).
        """
        i = _as_int(i)
        first = self._first
        if i < first - 1:
            raise LogIndexError(f"cannot truncate after {i}: entries before first_index {first} are purged")
        keep = i - first + 1
        if keep >= len(self._offsets):
            return
        del self._offsets[keep:]
        del self._lengths[keep:]
        k = bisect_right(self._run_first, i)
        del self._run_first[k:]
        del self._run_term[k:]
        k = bisect_right(self._seg_first, i)
        del self._seg_first[k:]
        del self._seg_id[k:]

    def purge_upto(self, i: int) -> None:
        """Drop the entries ``<= i`` (they are in a snapshot, §7).

        ``i < first_index`` is a no-op; ``i >= last_index`` leaves an empty index with
        ``first_index = i + 1``. Raises `LogIndexError` if ``i > MAX_INDEX``.
        """
        i = _as_int(i)
        if i < self._first:
            return
        if i > MAX_INDEX:
            raise LogIndexError(f"purge index {i} is above MAX_INDEX {MAX_INDEX}")
        new_first = i + 1
        if i >= self.last_index:
            for a in (self._offsets, self._lengths, self._run_first, self._run_term, self._seg_first, self._seg_id):
                del a[:]
            self._first = new_first
            return
        drop = new_first - self._first
        del self._offsets[:drop]
        del self._lengths[:drop]
        self._first = new_first
        for starts, values in ((self._run_first, self._run_term), (self._seg_first, self._seg_id)):
            k = bisect_right(starts, new_first) - 1
            del starts[:k]
            del values[:k]
            starts[0] = new_first
