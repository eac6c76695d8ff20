# cython: language_level=3, auto_pickle=False
"""The in-memory index of the Raft log (compiled twin).

Same names, signatures, rules and errors as `raftx._core.logindex_py`, which is the
spec and carries the docstrings. Layout: growable C buffers allocated with
``PyMem_*`` (so ``tracemalloc`` sees them): per entry a ``uint64`` offset and a
``uint32`` length; terms and segments as runs ``(first index, value)``. Each buffer
keeps a start offset so purging the front is O(1); the live region is moved to the
front lazily (when the dead prefix is at least half the live data and the buffer is
full) and the buffer shrinks when it falls below a quarter full. One Python int per
*term run* is kept as well, so `term_at` returns a shared object instead of
allocating one (bench_logindex::test_lookup_random[c-term_at]).
"""

import logging
import operator
import sys

cimport cython
from cpython.list cimport PyList_GET_ITEM
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from array import array

from raftx.errors import LogIndexError

__all__ = ["LogIndex", "MAX_INDEX"]

logger = logging.getLogger(__name__)

MAX_INDEX = 9223372036854775806  # 2**63 - 2, as in logindex_py

cdef int64_t C_MAX_INDEX = 9223372036854775806
cdef object _U64 = 18446744073709551616  # 2**64
cdef object _U32 = 4294967296  # 2**32
cdef object _as_int = operator.index
cdef Py_ssize_t MIN_CAP = 16


# -- argument conversion (same messages as logindex_py._check_int / _column) --------


cdef object _int_arg(object value, str name):
    if type(value) is int:
        return value
    try:
        return _as_int(value)
    except TypeError:
        raise LogIndexError(f"{name} must be an int, not {type(value).__name__}") from None


cdef uint64_t _u64(object value, str name) except? 0xFFFFFFFFFFFFFFFF:
    value = _int_arg(value, name)
    if value < 0 or value >= _U64:
        raise LogIndexError(f"{name} {value} is out of range [0, {_U64})")
    return value


cdef uint32_t _u32(object value, str name) except? 0xFFFFFFFF:
    value = _int_arg(value, name)
    if value < 0 or value >= _U32:
        raise LogIndexError(f"{name} {value} is out of range [0, {_U32})")
    return value


cdef int64_t _index_arg(object value, str name) except? -1:
    value = _int_arg(value, name)
    if value < 0 or value > MAX_INDEX:
        raise LogIndexError(f"{name} {value} is out of range [0, {MAX_INDEX + 1})")
    return value


cdef object _column(str typecode, object values, str name):
    if isinstance(values, array) and values.typecode == typecode:
        return values
    try:
        return array(typecode, values)
    except (TypeError, OverflowError, ValueError):
        bits = 64 if typecode == "Q" else 32
        raise LogIndexError(f"{name} must be a sequence of ints in [0, 2**{bits})") from None


# -- growable two-column buffers ------------------------------------------------------


cdef int _resize(void** a, size_t asz, void** b, size_t bsz,
                 Py_ssize_t* start, Py_ssize_t count, Py_ssize_t* cap,
                 Py_ssize_t newcap) except -1:
    """Move the live rows ``[*start, *start+count)`` to the front (``*start = 0``),
    then reallocate both columns to ``newcap >= count`` rows. ``*cap`` is always the
    capacity both columns really have, also when MemoryError is raised."""
    cdef void* p
    if start[0] > 0 and count > 0:
        memmove(a[0], <char*>a[0] + start[0] * asz, count * asz)
        memmove(b[0], <char*>b[0] + start[0] * bsz, count * bsz)
    start[0] = 0
    if newcap == cap[0]:
        return 0
    p = PyMem_Realloc(a[0], newcap * asz)
    if p == NULL:
        raise MemoryError()
    a[0] = p
    p = PyMem_Realloc(b[0], newcap * bsz)
    if p == NULL:
        # column a now holds newcap rows, column b still cap rows
        cap[0] = min(newcap, cap[0])
        raise MemoryError()
    b[0] = p
    cap[0] = newcap
    return 0


cdef inline Py_ssize_t _grown_cap(Py_ssize_t start, Py_ssize_t count, Py_ssize_t cap, Py_ssize_t extra):
    """The capacity to resize to before adding ``extra`` rows, or -1 if none needed.

    Returning ``cap`` means "compact only": done when the dead prefix is at least half
    the live rows, so compaction is amortised O(1) per row.
    """
    cdef Py_ssize_t need = count + extra
    if start + need <= cap:
        return -1
    if need <= cap and start >= count // 2:
        return cap
    return max(need, cap + cap // 2, MIN_CAP)


cdef inline Py_ssize_t _shrunk_cap(Py_ssize_t count, Py_ssize_t cap):
    """The capacity to shrink to after rows were removed, or -1 to keep ``cap``."""
    if cap > 4 * MIN_CAP and count < cap // 4:
        return max(count + count // 2, MIN_CAP)
    return -1


cdef struct Runs:
    int64_t* first     # first log index of each run
    uint64_t* value    # the run's term or segment id
    Py_ssize_t start
    Py_ssize_t count
    Py_ssize_t cap


cdef int _runs_reserve(Runs* r, Py_ssize_t extra) except -1:
    cdef Py_ssize_t newcap = _grown_cap(r.start, r.count, r.cap, extra)
    if newcap >= 0:
        _resize(<void**>&r.first, sizeof(int64_t), <void**>&r.value, sizeof(uint64_t),
                &r.start, r.count, &r.cap, newcap)
    return 0


cdef inline void _runs_push(Runs* r, int64_t first, uint64_t value):
    """Append a run; capacity must have been reserved."""
    r.first[r.start + r.count] = first
    r.value[r.start + r.count] = value
    r.count += 1


cdef inline Py_ssize_t _runs_find(const Runs* r, int64_t i):
    """Position (relative to start) of the last run whose first index is <= i.

    Requires ``count > 0`` and ``i >= first[start]``. Branch-free halving (the
    conditional move keeps random lookups free of mispredictions; measured by
    bench_logindex::test_term_at_random).
    """
    cdef const int64_t* base = r.first + r.start
    cdef const int64_t* lo = base
    cdef Py_ssize_t n = r.count, half
    while n > 1:
        half = n >> 1
        lo = lo + half if lo[half] <= i else lo
        n -= half
    return lo - base


cdef inline Py_ssize_t _runs_count_upto(const Runs* r, int64_t i):
    """How many runs start at or before index i."""
    if r.count == 0 or r.first[r.start] > i:
        return 0
    return _runs_find(r, i) + 1


cdef int _runs_shrink(Runs* r) except -1:
    cdef Py_ssize_t newcap = _shrunk_cap(r.count, r.cap)
    if newcap >= 0:
        _resize(<void**>&r.first, sizeof(int64_t), <void**>&r.value, sizeof(uint64_t),
                &r.start, r.count, &r.cap, newcap)
    return 0


cdef int _runs_truncate_after(Runs* r, int64_t i) except -1:
    r.count = _runs_count_upto(r, i)
    _runs_shrink(r)
    return 0


cdef int _runs_purge_before(Runs* r, int64_t new_first) except -1:
    """Drop runs wholly before ``new_first``; the remaining first run starts there."""
    cdef Py_ssize_t k = _runs_find(r, new_first)
    r.start += k
    r.count -= k
    r.first[r.start] = new_first
    _runs_shrink(r)
    return 0


cdef void _runs_free(Runs* r):
    PyMem_Free(r.first)
    PyMem_Free(r.value)
    r.first = NULL
    r.value = NULL
    r.start = r.count = r.cap = 0


# no_gc_clear: term_objs holds only ints (no cycles through it), and clearing it would
# leave term_at reading a None list.
@cython.no_gc_clear
cdef class LogIndex:
    """Log index -> term (as runs) and locator. See `raftx._core.logindex_py.LogIndex`."""

    cdef int64_t first
    cdef uint64_t* offsets
    cdef uint32_t* lengths
    cdef Py_ssize_t e_start
    cdef Py_ssize_t e_count
    cdef Py_ssize_t e_cap
    # (tp_alloc zeroes a new object: buffers NULL, counts 0, first_index 0)
    cdef Runs terms
    cdef Runs segs
    cdef list term_objs  # term_objs[k] is the int of the term run at terms.start + k

    def __cinit__(self):
        self.term_objs = []

    def __dealloc__(self):
        PyMem_Free(self.offsets)
        PyMem_Free(self.lengths)
        _runs_free(&self.terms)
        _runs_free(&self.segs)

    # -- properties -----------------------------------------------------------------

    @property
    def first_index(self):
        return self.first

    @property
    def last_index(self):
        return self.first + self.e_count - 1

    @property
    def last_term(self):
        return self.term_objs[-1] if self.term_objs else None

    def __len__(self):
        return self.e_count

    def __repr__(self):
        return (
            f"LogIndex(first_index={self.first_index}, last_index={self.last_index}, "
            f"term_runs={self.terms.count}, segment_runs={self.segs.count})"
        )

    # -- lookups --------------------------------------------------------------------

    cdef object _out_of_range(self, object i):
        first, last = self.first, self.first + self.e_count - 1
        empty = " (the log index is empty)" if last < first else ""
        return IndexError(f"log index {_as_int(i)} is outside [{first}, {last}]{empty}")

    @cython.always_allow_keywords(False)  # METH_O: bench_logindex term_at/locate
    def term_at(self, i):
        cdef int overflow = 0
        cdef long long j = PyLong_AsLongLongAndOverflow(i, &overflow)
        if overflow or j < self.first or j - self.first >= self.e_count:
            raise self._out_of_range(i)
        return <object>PyList_GET_ITEM(self.term_objs, _runs_find(&self.terms, j))

    @cython.always_allow_keywords(False)  # METH_O: bench_logindex term_at/locate
    def locate(self, i):
        cdef int overflow = 0
        cdef long long j = PyLong_AsLongLongAndOverflow(i, &overflow)
        cdef Py_ssize_t pos
        if overflow or j < self.first or j - self.first >= self.e_count:
            raise self._out_of_range(i)
        pos = self.e_start + <Py_ssize_t>(j - self.first)
        return (self.segs.value[self.segs.start + _runs_find(&self.segs, j)],
                self.offsets[pos], self.lengths[pos])

    cdef Py_ssize_t _term_run(self, object term) except -2:
        """Position of the run of ``term``, or -1 if no entry has that term."""
        cdef Py_ssize_t lo = 0, hi = self.terms.count, mid
        cdef const uint64_t* value = self.terms.value + self.terms.start
        cdef uint64_t t
        term = _as_int(term)
        if term < 0 or term >= _U64:
            return -1
        t = term
        while lo < hi:
            mid = (lo + hi) >> 1
            if value[mid] < t:
                lo = mid + 1
            else:
                hi = mid
        if lo == self.terms.count or value[lo] != t:
            return -1
        return lo

    def first_index_of_term(self, term):
        cdef Py_ssize_t k = self._term_run(term)
        if k < 0:
            return None
        return self.terms.first[self.terms.start + k]

    def last_index_of_term(self, term):
        cdef Py_ssize_t k = self._term_run(term)
        if k < 0:
            return None
        if k + 1 < self.terms.count:
            return self.terms.first[self.terms.start + k + 1] - 1
        return self.first + self.e_count - 1

    def term_runs(self):
        cdef Py_ssize_t k, s = self.terms.start
        out = []
        for k in range(self.terms.count):
            out.append((self.terms.first[s + k], self.terms.value[s + k]))
        return out

    def segments(self):
        cdef Py_ssize_t k, s = self.segs.start
        cdef int64_t end
        out = []
        for k in range(self.segs.count):
            end = self.segs.first[s + k + 1] if k + 1 < self.segs.count else self.first + self.e_count
            out.append((self.segs.value[s + k], self.segs.first[s + k], end - 1))
        return out

    def first_index_of_segment(self, segment):
        segment = _as_int(segment)
        for seg, first, _last in self.segments():
            if seg == segment:
                return first
        return None

    def last_index_of_segment(self, segment):
        segment = _as_int(segment)
        for seg, _first, last in reversed(self.segments()):
            if seg == segment:
                return last
        return None

    def memory_bytes(self):
        return (type(self).__basicsize__
                + self.e_cap * (sizeof(uint64_t) + sizeof(uint32_t))
                + (self.terms.cap + self.segs.cap) * (sizeof(int64_t) + sizeof(uint64_t))
                + sys.getsizeof(self.term_objs) + sum([sys.getsizeof(t) for t in self.term_objs]))

    def __sizeof__(self):
        return self.memory_bytes()

    # -- changes --------------------------------------------------------------------

    cdef int _check_next(self, int64_t index) except -1:
        if self.e_count and index != self.first + self.e_count:
            raise LogIndexError(f"log index {index} does not follow the last index {self.last_index}")
        return 0

    cdef int _reserve_entries(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t newcap = _grown_cap(self.e_start, self.e_count, self.e_cap, extra)
        if newcap >= 0:
            _resize(<void**>&self.offsets, sizeof(uint64_t), <void**>&self.lengths,
                    sizeof(uint32_t), &self.e_start, self.e_count, &self.e_cap, newcap)
        return 0

    cdef int _shrink_entries(self) except -1:
        cdef Py_ssize_t newcap = _shrunk_cap(self.e_count, self.e_cap)
        if newcap >= 0:
            _resize(<void**>&self.offsets, sizeof(uint64_t), <void**>&self.lengths,
                    sizeof(uint32_t), &self.e_start, self.e_count, &self.e_cap, newcap)
        return 0

    cdef inline bint _new_term(self, uint64_t term):
        return self.terms.count == 0 or self.terms.value[self.terms.start + self.terms.count - 1] != term

    cdef inline bint _new_segment(self, uint64_t segment):
        return self.segs.count == 0 or self.segs.value[self.segs.start + self.segs.count - 1] != segment

    def append(self, index, term, segment, offset, length):
        cdef int64_t i = _index_arg(index, "index")
        cdef uint64_t t = _u64(term, "term")
        cdef uint64_t seg = _u64(segment, "segment")
        cdef uint64_t off = _u64(offset, "offset")
        cdef uint32_t ln = _u32(length, "length")
        cdef Py_ssize_t pos
        cdef bint new_term = self._new_term(t)
        self._check_next(i)
        if self.terms.count and t < self.terms.value[self.terms.start + self.terms.count - 1]:
            raise LogIndexError(f"term {t} at index {i} is below the last term {self.last_term} (§5.3)")
        # every step that can fail (MemoryError) comes first, so a failure changes nothing
        self._reserve_entries(1)
        _runs_reserve(&self.terms, 1)
        _runs_reserve(&self.segs, 1)
        if new_term:
            self.term_objs.append(t)
        if self.e_count == 0:
            self.first = i
        if new_term:
            _runs_push(&self.terms, i, t)
        if self._new_segment(seg):
            _runs_push(&self.segs, i, seg)
        pos = self.e_start + self.e_count
        self.offsets[pos] = off
        self.lengths[pos] = ln
        self.e_count += 1

    # boundscheck/wraparound off: the loops below only index k in [0, n) or [1, n),
    # n = len(tv) == len(ov) == len(lv) checked above (bench_logindex::test_build_1m).
    @cython.boundscheck(False)
    @cython.wraparound(False)
    def extend(self, first_index, terms, segment, offsets, lengths, *, base_offset=0):
        cdef int64_t first = _index_arg(first_index, "first_index")
        cdef uint64_t seg = _u64(segment, "segment")
        cdef uint64_t base = _u64(base_offset, "base_offset")
        cdef uint64_t top = 0
        t = _column("Q", terms, "terms")
        o = _column("Q", offsets, "offsets")
        ln = _column("I", lengths, "lengths")
        cdef const unsigned long long[::1] tv = t
        cdef const unsigned long long[::1] ov = o
        cdef const unsigned int[::1] lv = ln
        cdef Py_ssize_t n = tv.shape[0], k, changes = 0, pos
        if ov.shape[0] != n or lv.shape[0] != n:
            raise LogIndexError(
                f"batch columns differ in length: terms {n}, offsets {ov.shape[0]}, lengths {lv.shape[0]}")
        if n == 0:
            return
        if base:
            for k in range(n):
                if ov[k] > top:
                    top = ov[k]
            if top > 0xFFFFFFFFFFFFFFFFULL - base:
                raise LogIndexError(f"offsets shifted by base_offset {base} pass 2**64")
        self._check_next(first)
        if first > C_MAX_INDEX - (n - 1):
            raise LogIndexError(f"batch of {n} entries from {first} passes MAX_INDEX {MAX_INDEX}")
        if self.terms.count and tv[0] < self.terms.value[self.terms.start + self.terms.count - 1]:
            raise LogIndexError(
                f"term {tv[0]} at index {first} is below the last term {self.last_term} (§5.3)")
        cdef bint new_term = self._new_term(tv[0])
        new_objs = [tv[0]] if new_term else []
        for k in range(1, n):
            if tv[k] != tv[k - 1]:
                if tv[k] < tv[k - 1]:
                    raise LogIndexError(
                        f"term {tv[k]} at index {first + k} is below the term {tv[k - 1]} before it (§5.3)")
                changes += 1
                new_objs.append(tv[k])
        # every step that can fail (MemoryError) comes first, so a failure changes nothing
        self._reserve_entries(n)
        _runs_reserve(&self.terms, changes + 1)
        _runs_reserve(&self.segs, 1)
        self.term_objs.extend(new_objs)
        if self.e_count == 0:
            self.first = first
        if new_term:
            _runs_push(&self.terms, first, tv[0])
        if self._new_segment(seg):
            _runs_push(&self.segs, first, seg)
        if changes:
            for k in range(1, n):
                if tv[k] != tv[k - 1]:
                    _runs_push(&self.terms, first + k, tv[k])
        pos = self.e_start + self.e_count
        memcpy(self.offsets + pos, &ov[0], n * sizeof(uint64_t))
        if base:
            for k in range(n):
                self.offsets[pos + k] += base
        memcpy(self.lengths + pos, &lv[0], n * sizeof(uint32_t))
        self.e_count += n

    def truncate_after(self, i):
        cdef int overflow = 0
        cdef long long j = PyLong_AsLongLongAndOverflow(i, &overflow)
        cdef Py_ssize_t keep
        if overflow > 0:
            return
        if overflow < 0 or j < self.first - 1:
            raise LogIndexError(
                f"cannot truncate after {_as_int(i)}: entries before first_index {self.first} are purged")
        if j - self.first + 1 >= self.e_count:
            return
        keep = <Py_ssize_t>(j - self.first + 1)
        self.e_count = keep
        _runs_truncate_after(&self.terms, j)
        del self.term_objs[self.terms.count:]
        _runs_truncate_after(&self.segs, j)
        self._shrink_entries()

    def purge_upto(self, i):
        cdef int overflow = 0
        cdef long long j = PyLong_AsLongLongAndOverflow(i, &overflow)
        cdef Py_ssize_t drop, runs = self.terms.count
        if overflow < 0 or (overflow == 0 and j < self.first):
            return
        if overflow > 0 or j > C_MAX_INDEX:
            raise LogIndexError(f"purge index {_as_int(i)} is above MAX_INDEX {MAX_INDEX}")
        if j >= self.first + self.e_count - 1:
            self.e_start = self.e_count = 0
            self.terms.start = self.terms.count = 0
            self.segs.start = self.segs.count = 0
            del self.term_objs[:]
            self.first = j + 1
            self._shrink_entries()
            _runs_shrink(&self.terms)
            _runs_shrink(&self.segs)
            return
        drop = <Py_ssize_t>(j + 1 - self.first)
        self.e_start += drop
        self.e_count -= drop
        self.first = j + 1
        _runs_purge_before(&self.terms, j + 1)
        del self.term_objs[:runs - self.terms.count]
        _runs_purge_before(&self.segs, j + 1)
        self._shrink_entries()
