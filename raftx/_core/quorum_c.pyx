# cython: language_level=3
"""Quorum arithmetic: committed index and vote tallies, majority and joint (compiled twin).

The spec, with the full docstrings, is ``raftx._core.quorum_py``; this module has the
same public names, signatures and behaviour. Matched indexes live in C arrays of
int64; clusters have a few dozen voters at most, so a small insertion sort (or an
insertion step per update in the trackers) beats anything cleverer.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_ITEM, PySequence_Fast_GET_SIZE
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport qsort

import logging

logger = logging.getLogger(__name__)

#: See ``quorum_py.INDEX_MAX``.
INDEX_MAX = 2**63 - 1
#: See ``quorum_py.MATCHED_NONE``.
MATCHED_NONE = -1
#: See ``quorum_py.VOTE_PENDING`` and friends (etcd's values).
VOTE_PENDING = 1
VOTE_LOST = 2
VOTE_WON = 3

cdef enum:
    _PENDING = 1
    _LOST = 2
    _WON = 3
    # committed_index sorts up to this many values on the stack, more via qsort.
    _STACK_VOTERS = 64


cdef inline int64_t _check(str what, object value, int64_t low) except? -1:
    """``value`` as an int64 in ``low .. INDEX_MAX``; TypeError / ValueError otherwise."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < low:
        raise ValueError(f"{what} must be in [{low}, {INDEX_MAX}], not {value}")
    return v


cdef inline void _insertion_sort(int64_t* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef int64_t x
    for i in range(1, n):
        x = a[i]
        j = i
        while j > 0 and a[j - 1] > x:
            a[j] = a[j - 1]
            j -= 1
        a[j] = x


cdef int _cmp_int64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0]
    cdef int64_t y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef inline Py_ssize_t _quorum_pos(Py_ssize_t n) noexcept nogil:
    """Where, in ``n`` ascending values, the one a majority has reached sits (-1: none)."""
    return n - (n // 2 + 1)


cdef Py_ssize_t _pick(object seq, Py_ssize_t n, int64_t* vals, int64_t* srt, int64_t* value) except -1:
    """Index in ``seq`` (a PySequence_Fast of n >= 1 items) of the committed index (§5.3).

    ``vals`` and ``srt`` are scratch arrays of ``n``; the value is stored in ``value``.
    """
    cdef Py_ssize_t i
    for i in range(n):
        vals[i] = srt[i] = _check("matched index", <object>PySequence_Fast_GET_ITEM(seq, i), -1)
    if n > _STACK_VOTERS:
        qsort(srt, n, sizeof(int64_t), _cmp_int64)
    else:
        _insertion_sort(srt, n)
    value[0] = srt[_quorum_pos(n)]
    i = 0
    while vals[i] != value[0]:
        i += 1
    return i


cdef object _committed_item(object matched, int64_t* value):
    """The committed index of ``matched`` as a Python int (``None`` when empty), and its value.

    Returns the caller's own int object where it can: no allocation on the hot path.
    """
    cdef object seq = PySequence_Fast(matched, "matched must be iterable")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(seq)
    cdef int64_t vals[_STACK_VOTERS]
    cdef int64_t srt[_STACK_VOTERS]
    cdef int64_t* heap
    cdef Py_ssize_t i
    if n == 0:
        value[0] = INT64_MAX
        return None
    if n <= _STACK_VOTERS:
        i = _pick(seq, n, vals, srt, value)
    else:
        heap = <int64_t*>PyMem_Malloc(2 * n * sizeof(int64_t))
        if heap == NULL:
            raise MemoryError()
        try:
            i = _pick(seq, n, heap, heap + n, value)
        finally:
            PyMem_Free(heap)
    item = <object>PySequence_Fast_GET_ITEM(seq, i)
    return item if PyLong_CheckExact(item) else value[0]  # bools and int subclasses: a plain int


def committed_index(matched):
    """See ``quorum_py.committed_index`` (§5.3); empty → ``INDEX_MAX``."""
    cdef int64_t value
    item = _committed_item(matched, &value)
    return INDEX_MAX if item is None else item


def joint_committed_index(matched_old, matched_new):
    """See ``quorum_py.joint_committed_index`` (thesis §4.3)."""
    cdef int64_t old_value, new_value
    old = _committed_item(matched_old, &old_value)
    if len(matched_new) == 0:
        return INDEX_MAX if old is None else old
    new = _committed_item(matched_new, &new_value)
    if old_value <= new_value:
        return INDEX_MAX if old is None else old
    return new


cdef inline int _tally(int64_t n, int64_t granted, int64_t rejected) noexcept nogil:
    """vote_result on checked counts (§5.2)."""
    if n == 0:
        return _WON
    cdef int64_t majority = n // 2 + 1
    if granted >= majority:
        return _WON
    if rejected > n - majority:
        return _LOST
    return _PENDING


cdef inline int _joint(int old, int new) noexcept nogil:
    """Combine two halves' results (thesis §4.3)."""
    if old == new:
        return old
    if old == _LOST or new == _LOST:
        return _LOST
    return _PENDING


cdef int _vote_result(object n_voters, object granted, object rejected) except -1:
    cdef int o_n = 0, o_g = 0, o_r = 0
    cdef int64_t n = PyLong_AsLongLongAndOverflow(n_voters, &o_n)
    cdef int64_t g = PyLong_AsLongLongAndOverflow(granted, &o_g)
    cdef int64_t r = PyLong_AsLongLongAndOverflow(rejected, &o_r)
    # n >= g + r with g, r >= 0 also rules out negative n; g + r cannot overflow here.
    if o_n != 0 or o_g != 0 or o_r != 0 or g < 0 or r < 0 or g > n or r > n - g:
        raise ValueError(f"invalid tally: n_voters={n_voters} granted={granted} rejected={rejected}")
    return _tally(n, g, r)


def vote_result(n_voters, granted, rejected):
    """See ``quorum_py.vote_result`` (§5.2)."""
    return _vote_result(n_voters, granted, rejected)


def joint_vote_result(n_old, granted_old, rejected_old, n_new, granted_new, rejected_new):
    """See ``quorum_py.joint_vote_result`` (thesis §4.3)."""
    return _joint(_vote_result(n_old, granted_old, rejected_old), _vote_result(n_new, granted_new, rejected_new))


cdef tuple _unique_ids(object ids):
    """Validated node ids, duplicates dropped, first-seen order kept."""
    return tuple(dict.fromkeys([_check("node id", i, 0) for i in ids]))


cdef class _Config:
    """A tracker's voters in one C array: old half then new half (thesis §4.3)."""

    cdef tuple _voters
    cdef tuple _voters_new
    cdef Py_ssize_t _n_old
    cdef Py_ssize_t _n
    cdef int64_t* _ids

    def __cinit__(self, *args, **kwargs):
        self._ids = NULL

    cdef int _init_config(self, object voters, object voters_new) except -1:
        self._voters = _unique_ids(voters)
        self._voters_new = _unique_ids(voters_new)
        self._n_old = len(self._voters)
        self._n = self._n_old + len(self._voters_new)
        PyMem_Free(self._ids)  # __init__ called again
        self._ids = NULL
        self._ids = <int64_t*>PyMem_Malloc((self._n if self._n > 0 else 1) * sizeof(int64_t))
        if self._ids == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i, node_id in enumerate(self._voters + self._voters_new):
            self._ids[i] = node_id
        return 0

    def __dealloc__(self):
        PyMem_Free(self._ids)

    @property
    def voters(self):
        return self._voters

    @property
    def voters_new(self):
        return self._voters_new


cdef inline void _move(int64_t* srt, Py_ssize_t n, int64_t old, int64_t new) noexcept nogil:
    """Replace one ``old`` by ``new`` in ascending ``srt``, keeping it sorted (one insertion step)."""
    cdef Py_ssize_t j = 0
    while srt[j] != old:  # ``old`` is present: it is some voter's current value
        j += 1
    if new > old:
        while j + 1 < n and srt[j + 1] < new:
            srt[j] = srt[j + 1]
            j += 1
    else:
        while j > 0 and srt[j - 1] > new:
            srt[j] = srt[j - 1]
            j -= 1
    srt[j] = new


cdef class ProgressTracker(_Config):
    """See ``quorum_py.ProgressTracker`` (§5.3, thesis §4.3)."""

    cdef int64_t* _matched  # parallel to _ids
    cdef int64_t* _sorted   # old half's values ascending, then the new half's
    cdef int64_t _committed

    def __cinit__(self, *args, **kwargs):
        self._matched = NULL
        self._sorted = NULL

    def __init__(self, voters, voters_new=()):
        self._init_config(voters, voters_new)
        cdef Py_ssize_t size = (self._n if self._n > 0 else 1) * sizeof(int64_t)
        PyMem_Free(self._matched)  # __init__ called again
        PyMem_Free(self._sorted)
        self._matched = self._sorted = NULL
        self._matched = <int64_t*>PyMem_Malloc(size)
        self._sorted = <int64_t*>PyMem_Malloc(size)
        if self._matched == NULL or self._sorted == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(self._n):
            self._matched[i] = -1
            self._sorted[i] = -1
        self._committed = self._compute()

    def __dealloc__(self):
        PyMem_Free(self._matched)
        PyMem_Free(self._sorted)

    @property
    def committed(self):
        return self._committed

    def matched(self, node_id):
        """See ``quorum_py.ProgressTracker.matched``."""
        cdef int64_t nid = _check("node id", node_id, 0)
        cdef Py_ssize_t i
        for i in range(self._n):
            if self._ids[i] == nid:
                return self._matched[i]
        raise KeyError(nid)

    cdef inline int64_t _compute(self) noexcept:
        cdef Py_ssize_t n_new = self._n - self._n_old
        cdef int64_t old = INT64_MAX
        cdef int64_t new
        if self._n_old > 0:
            old = self._sorted[_quorum_pos(self._n_old)]
        if n_new == 0:
            return old
        new = self._sorted[self._n_old + _quorum_pos(n_new)]
        return old if old < new else new

    cdef int64_t _set(self, int64_t nid, int64_t value, bint backwards) noexcept:
        cdef Py_ssize_t i
        cdef int64_t current
        cdef bint changed = False
        for i in range(self._n):
            if self._ids[i] != nid:
                continue
            current = self._matched[i]
            if value > current or (backwards and value != current):
                self._matched[i] = value
                if i < self._n_old:
                    _move(self._sorted, self._n_old, current, value)
                else:
                    _move(self._sorted + self._n_old, self._n - self._n_old, current, value)
                changed = True
        if changed:
            self._committed = self._compute()
        return self._committed

    def update(self, node_id, matched):
        """See ``quorum_py.ProgressTracker.update``."""
        return self._set(_check("node id", node_id, 0), _check("matched index", matched, -1), False)

    def reset(self, node_id, matched):
        """See ``quorum_py.ProgressTracker.reset``."""
        return self._set(_check("node id", node_id, 0), _check("matched index", matched, -1), True)

    def __repr__(self):
        return f"ProgressTracker(voters={self._voters!r}, voters_new={self._voters_new!r}, committed={self._committed})"


cdef class VoteTracker(_Config):
    """See ``quorum_py.VoteTracker`` (§5.2, thesis §4.3)."""

    cdef signed char* _votes  # parallel to _ids: -1 no response yet, 0 rejected, 1 granted
    cdef int64_t _counts[4]   # granted_old, rejected_old, granted_new, rejected_new
    cdef int _result

    def __cinit__(self, *args, **kwargs):
        self._votes = NULL

    def __init__(self, voters, voters_new=()):
        self._init_config(voters, voters_new)
        PyMem_Free(self._votes)  # __init__ called again
        self._votes = <signed char*>PyMem_Malloc(self._n if self._n > 0 else 1)
        if self._votes == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(self._n):
            self._votes[i] = -1
        for i in range(4):
            self._counts[i] = 0
        self._result = self._compute()

    def __dealloc__(self):
        PyMem_Free(self._votes)

    @property
    def result(self):
        return self._result

    cdef inline int _compute(self) noexcept:
        return _joint(
            _tally(self._n_old, self._counts[0], self._counts[1]),
            _tally(self._n - self._n_old, self._counts[2], self._counts[3]),
        )

    def record(self, node_id, granted):
        """See ``quorum_py.VoteTracker.record``."""
        cdef int64_t nid = _check("node id", node_id, 0)
        cdef signed char vote = 1 if granted else 0
        cdef Py_ssize_t i
        cdef bint hit = False
        for i in range(self._n):
            if self._ids[i] != nid:
                continue
            if self._votes[i] != -1:
                return self._result  # a repeated response counts once
            self._votes[i] = vote
            self._counts[(0 if i < self._n_old else 2) + (0 if vote else 1)] += 1
            hit = True
        if hit:
            self._result = self._compute()
        return self._result

    def __repr__(self):
        return f"VoteTracker(voters={self._voters!r}, voters_new={self._voters_new!r}, result={self._result})"
