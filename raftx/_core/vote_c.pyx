# cython: language_level=3
"""Vote, LeaderId and LogId ordering, and the log up-to-date check (compiled twin).

The spec, with the full docstrings, is ``raftx._core.vote_py``; this module has the
same public names, signatures and behaviour. Fields are signed 64-bit C ints;
``node_id=None`` is modelled by a flag.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport Py_EQ, Py_GE, Py_GT, Py_LE, Py_LT, Py_NE
from libc.stdint cimport int64_t

import logging
import warnings

logger = logging.getLogger(__name__)

#: The largest term, index or node id (signed 64-bit). See ``vote_py.U63_MAX``.
U63_MAX = 2**63 - 1

cdef enum:
    INCOMPARABLE = 2  # _leader_cmp's answer when the leader ids are incomparable


cdef inline int64_t _check(str what, object value, int64_t low=0) except? -1:
    """``value`` as an int64 in ``low .. U63_MAX``; TypeError / ValueError otherwise."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < low:
        raise ValueError(f"{what} must be in [{low}, 2**63-1], not {value}")
    return v


cdef inline int _leader_cmp(int64_t term_a, bint has_a, int64_t node_a,
                            int64_t term_b, bint has_b, int64_t node_b) noexcept:
    """-1, 0, 1, or INCOMPARABLE (same term, different nodes; §5.2)."""
    if term_a != term_b:
        return -1 if term_a < term_b else 1
    if has_a and has_b:
        return 0 if node_a == node_b else INCOMPARABLE
    if has_a == has_b:
        return 0  # both None
    return 1 if has_a else -1


cdef inline object _richcmp_result(int c, int op):
    """The rich comparison ``op`` given a partial-order comparison result ``c``."""
    if op == Py_LT:
        return c == -1
    if op == Py_LE:
        return c == -1 or c == 0
    if op == Py_EQ:
        return c == 0
    if op == Py_NE:
        return c != 0
    if op == Py_GT:
        return c == 1
    return c == 1 or c == 0  # Py_GE


cdef class _LeaderFields:
    """The fields `LeaderId` and `Vote` share: a term and an optional node id (a flag)."""

    cdef readonly int64_t term
    cdef int64_t _node_id
    cdef bint _has_node

    cdef int _set_leader(self, object term, object node_id) except -1:
        self.term = _check("term", term)
        if node_id is None:
            self._has_node = False
            self._node_id = 0
        else:
            self._node_id = _check("node_id", node_id)
            self._has_node = True
        return 0

    cdef inline void _copy_leader(self, _LeaderFields other) noexcept:
        self.term = other.term
        self._node_id = other._node_id
        self._has_node = other._has_node

    @property
    def node_id(self):
        return self._node_id if self._has_node else None


cdef class LeaderId(_LeaderFields):
    """See ``vote_py.LeaderId``."""

    def __init__(self, term, node_id=None):
        self._set_leader(term, node_id)

    def __reduce__(self):
        return (LeaderId, (self.term, self.node_id))

    def __repr__(self):
        return f"LeaderId({self.term}, {self.node_id!r})"

    def __hash__(self):
        return hash((self.term, self.node_id))

    def __richcmp__(self, other, int op):
        if not isinstance(other, LeaderId):
            if op == Py_EQ or op == Py_NE:
                return NotImplemented
            raise TypeError(f"cannot compare LeaderId with {type(other).__name__}")
        cdef LeaderId o = <LeaderId>other
        return _richcmp_result(
            _leader_cmp(self.term, self._has_node, self._node_id, o.term, o._has_node, o._node_id), op
        )


cdef class Vote(_LeaderFields):
    """See ``vote_py.Vote``."""

    cdef readonly bint committed

    def __init__(self, term=0, node_id=None, committed=False):
        self._set_leader(term, node_id)
        self.committed = bool(committed)

    @property
    def leader_id(self):
        cdef LeaderId lid = LeaderId.__new__(LeaderId)
        lid._copy_leader(self)
        return lid

    def is_committed(self):
        return self.committed

    def commit(self):
        """The same vote, marked as granted by a quorum."""
        cdef Vote v = Vote.__new__(Vote)
        v._copy_leader(self)
        v.committed = True
        return v

    def __reduce__(self):
        return (Vote, (self.term, self.node_id, self.committed))

    def __repr__(self):
        return f"Vote({self.term}, {self.node_id!r}, committed={self.committed})"

    def __hash__(self):
        return hash((self.term, self.node_id, self.committed))

    cdef inline int _cmp(self, Vote other) noexcept:
        """-1, 0, 1, or INCOMPARABLE; see ``vote_py.Vote._cmp``."""
        cdef int c = _leader_cmp(self.term, self._has_node, self._node_id,
                                 other.term, other._has_node, other._node_id)
        if c == INCOMPARABLE:
            if self.committed == other.committed:
                return INCOMPARABLE
            return 1 if self.committed else -1
        if c != 0:
            return c
        if self.committed == other.committed:
            return 0
        return 1 if self.committed else -1

    def __richcmp__(self, other, int op):
        if not isinstance(other, Vote):
            if op == Py_EQ or op == Py_NE:
                return NotImplemented
            raise TypeError(f"cannot compare Vote with {type(other).__name__}")
        return _richcmp_result(self._cmp(<Vote>other), op)


cdef class LogId:
    """See ``vote_py.LogId``."""

    cdef readonly int64_t term
    cdef readonly int64_t index

    def __init__(self, term, index):
        self.term = _check("term", term)
        self.index = _check("index", index)

    @property
    def leader_id(self):
        """Deprecated alias of ``term``; see ``vote_py.LogId.leader_id``."""
        warnings.warn("LogId.leader_id is deprecated: it is the term, use LogId.term", DeprecationWarning,
                      stacklevel=2)
        return self.term

    def __reduce__(self):
        return (LogId, (self.term, self.index))

    def __repr__(self):
        return f"LogId({self.term}, {self.index})"

    def __hash__(self):
        return hash((self.term, self.index))

    def __richcmp__(self, other, int op):
        if not isinstance(other, LogId):
            return NotImplemented
        cdef LogId o = <LogId>other
        cdef int c
        if self.term != o.term:
            c = -1 if self.term < o.term else 1
        elif self.index != o.index:
            c = -1 if self.index < o.index else 1
        else:
            c = 0
        return _richcmp_result(c, op)


cdef inline bint _log_id_lt(LogId a, LogId b) noexcept:
    if b is None:
        return False
    if a is None:
        return True
    if a.term != b.term:
        return a.term < b.term
    return a.index < b.index


def vote_can_grant(current, Vote incoming not None):
    """See ``vote_py.vote_can_grant`` (grant iff ``incoming >= current``)."""
    if not isinstance(current, Vote):
        raise TypeError(f"cannot compare Vote with {type(current).__name__}")
    cdef int c = incoming._cmp(<Vote>current)
    return c == 0 or c == 1


def is_log_up_to_date(last_term, last_index, cand_term, cand_index):
    """See ``vote_py.is_log_up_to_date`` (§5.4.1)."""
    cdef int64_t lt = _check("last_term", last_term)
    cdef int64_t ct = _check("cand_term", cand_term)
    cdef int64_t li = _check("last_index", last_index, -1)
    cdef int64_t ci = _check("cand_index", cand_index, -1)
    if ct != lt:
        return ct > lt
    return ci >= li


def log_id_lt(LogId a, LogId b):
    """See ``vote_py.log_id_lt`` (``None`` is below every LogId)."""
    return _log_id_lt(a, b)


def log_id_max(LogId a, LogId b):
    """See ``vote_py.log_id_max``."""
    return b if _log_id_lt(a, b) else a


def log_id_index(LogId log_id):
    """See ``vote_py.log_id_index`` (-1 for ``None``)."""
    return -1 if log_id is None else log_id.index
