"""Vote, LeaderId and LogId ordering, and the log up-to-date check (pure-Python twin).

raftx follows openraft's *standard* leader-id mode (``leader_id_std``): at most one
leader per term, so a committed leader id is just the term.

* `LeaderId(term, node_id)`: the candidate or leader a vote was cast for. Ordered by
  term; within a term, ``node_id=None`` (no vote cast yet) is below any node, equal
  node ids are equal, and two *different* nodes are **incomparable** (a node that
  voted for A in term 5 must not also vote for B in term 5, §5.2).
* `Vote(term, node_id, committed)`: openraft's vote: a leader id plus whether a
  quorum granted it (``committed=True`` once the node is the established leader).
  Ordered by leader id, then ``committed`` (False < True). When the leader ids are
  incomparable, a committed vote is greater than an uncommitted one (both can't be
  granted by a quorum in one term); otherwise they are incomparable. A node grants an incoming vote iff ``incoming >= current``
  (`vote_can_grant`).
* `LogId(term, index)`: the id of a log entry. ``term`` is the term of the leader
  that created it (openraft's ``CommittedLeaderId`` in std mode, which openraft names
  ``leader_id``: the deprecated alias `LogId.leader_id` warns). Totally ordered by
  ``(term, index)`` (§5.4.1).

All three are immutable, hashable and picklable. ``None`` stands for "no log id"
and sorts below every `LogId` in `log_id_lt` / `log_id_max`.

Terms, indexes and node ids are ints in ``0 .. 2**63 - 1`` (they are 64-bit on disk,
on the wire and in the compiled twin); anything else raises `TypeError` (not an int)
or `ValueError` (out of range) in both twins. Comparing with an object of another
class raises `TypeError`.
"""

from __future__ import annotations

import warnings
from operator import index as _as_int
from typing import Any

#: The largest term, index or node id (signed 64-bit).
U63_MAX = 2**63 - 1


def _check(what: str, value: int, low: int = 0) -> int:
    """``value`` as an int in ``low .. U63_MAX``; TypeError / ValueError otherwise."""
    value = _as_int(value)
    if value < low or value > U63_MAX:
        raise ValueError(f"{what} must be in [{low}, 2**63-1], not {value}")
    return value


def _check_node_id(node_id: int | None) -> int | None:
    """``None`` (no vote cast) or a valid node id."""
    return None if node_id is None else _check("node_id", node_id)


def _leader_cmp(a: Any, b: Any) -> int | None:
    """Compare the leader ids of two `LeaderId`/`Vote`: -1, 0, 1, or None if incomparable.

    Ordered by term; within a term ``node_id=None`` is below any node and two
    different nodes are incomparable (§5.2: one vote per term).
    """
    if a.term != b.term:
        return -1 if a.term < b.term else 1
    if a.node_id == b.node_id:
        return 0
    if a.node_id is None:
        return -1
    if b.node_id is None:
        return 1
    return None


class LeaderId:
    """Who a vote is for in a term; see the module docstring for the partial order."""

    __slots__ = ("term", "node_id")

    term: int
    node_id: int | None

    def __init__(self, term: int, node_id: int | None = None) -> None:
        object.__setattr__(self, "term", _check("term", term))
        object.__setattr__(self, "node_id", _check_node_id(node_id))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (LeaderId, (self.term, self.node_id))

    def __repr__(self) -> str:
        return f"LeaderId({self.term}, {self.node_id!r})"

    def __hash__(self) -> int:
        return hash((self.term, self.node_id))

    def _cmp(self, other: LeaderId) -> int | None:
        """-1, 0, 1, or None when incomparable (same term, different nodes)."""
        if not isinstance(other, LeaderId):
            raise TypeError(f"cannot compare LeaderId with {type(other).__name__}")
        return _leader_cmp(self, other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LeaderId):
            return NotImplemented
        return self.term == other.term and self.node_id == other.node_id

    def __lt__(self, other: LeaderId) -> bool:
        return self._cmp(other) == -1

    def __le__(self, other: LeaderId) -> bool:
        return self._cmp(other) in (-1, 0)

    def __gt__(self, other: LeaderId) -> bool:
        return self._cmp(other) == 1

    def __ge__(self, other: LeaderId) -> bool:
        return self._cmp(other) in (1, 0)


class Vote:
    """openraft's vote: a `LeaderId` plus ``committed`` (granted by a quorum)."""

    __slots__ = ("term", "node_id", "committed")

    term: int
    node_id: int | None
    committed: bool

    def __init__(self, term: int = 0, node_id: int | None = None, committed: bool = False) -> None:
        object.__setattr__(self, "term", _check("term", term))
        object.__setattr__(self, "node_id", _check_node_id(node_id))
        object.__setattr__(self, "committed", bool(committed))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Vote, (self.term, self.node_id, self.committed))

    @property
    def leader_id(self) -> LeaderId:
        """The leader this vote is for, ``LeaderId(term, node_id)``."""
        return LeaderId(self.term, self.node_id)

    def is_committed(self) -> bool:
        """Whether a quorum granted this vote (the candidate became leader)."""
        return self.committed

    def commit(self) -> Vote:
        """The same vote, marked as granted by a quorum."""
        return Vote(self.term, self.node_id, True)

    def __repr__(self) -> str:
        return f"Vote({self.term}, {self.node_id!r}, committed={self.committed})"

    def __hash__(self) -> int:
        return hash((self.term, self.node_id, self.committed))

    def _cmp(self, other: Vote) -> int | None:
        """-1, 0, 1, or None when incomparable (different nodes of one term, neither or both committed)."""
        if not isinstance(other, Vote):
            raise TypeError(f"cannot compare Vote with {type(other).__name__}")
        c = _leader_cmp(self, other)
        if c is None:
            # Two leader ids of one term can't both be granted by a quorum, so a
            # committed vote (an elected leader) beats an uncommitted one (openraft).
            if self.committed == other.committed:
                return None
            return 1 if self.committed else -1
        if c != 0:
            return c
        if self.committed == other.committed:
            return 0
        return 1 if self.committed else -1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vote):
            return NotImplemented
        return self.term == other.term and self.node_id == other.node_id and self.committed == other.committed

    def __lt__(self, other: Vote) -> bool:
        return self._cmp(other) == -1

    def __le__(self, other: Vote) -> bool:
        return self._cmp(other) in (-1, 0)

    def __gt__(self, other: Vote) -> bool:
        return self._cmp(other) == 1

    def __ge__(self, other: Vote) -> bool:
        return self._cmp(other) in (1, 0)


class LogId:
    """The id of a log entry: the creating leader's term and the index (§5.3)."""

    __slots__ = ("term", "index")

    term: int
    index: int

    def __init__(self, term: int, index: int) -> None:
        object.__setattr__(self, "term", _check("term", term))
        object.__setattr__(self, "index", _check("index", index))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogId, (self.term, self.index))

    @property
    def leader_id(self) -> int:
        """Deprecated alias of `term` (openraft's name: in std leader-id mode the
        leader id of an entry is its term). Warns `DeprecationWarning`."""
        warnings.warn("LogId.leader_id is deprecated: it is the term, use LogId.term", DeprecationWarning,
                      stacklevel=2)
        return self.term

    def __repr__(self) -> str:
        return f"LogId({self.term}, {self.index})"

    def __hash__(self) -> int:
        return hash((self.term, self.index))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogId):
            return NotImplemented
        return self.term == other.term and self.index == other.index

    def __lt__(self, other: LogId) -> bool:
        if not isinstance(other, LogId):
            return NotImplemented
        return (self.term, self.index) < (other.term, other.index)

    def __le__(self, other: LogId) -> bool:
        if not isinstance(other, LogId):
            return NotImplemented
        return (self.term, self.index) <= (other.term, other.index)

    def __gt__(self, other: LogId) -> bool:
        if not isinstance(other, LogId):
            return NotImplemented
        return (self.term, self.index) > (other.term, other.index)

    def __ge__(self, other: LogId) -> bool:
        if not isinstance(other, LogId):
            return NotImplemented
        return (self.term, self.index) >= (other.term, other.index)


def vote_can_grant(current: Vote, incoming: Vote) -> bool:
    """True iff a node holding ``current`` may accept ``incoming`` (``incoming >= current``).

    openraft's rule (docs/data/vote.md): a vote is granted, and a leader is
    accepted, only if it is not smaller than the vote this node holds; an
    incomparable vote (same term, another candidate) is refused (§5.2).
    """
    if not isinstance(incoming, Vote):
        raise TypeError(f"incoming must be a Vote, not {type(incoming).__name__}")
    return incoming._cmp(current) in (0, 1)


def is_log_up_to_date(last_term: int, last_index: int, cand_term: int, cand_index: int) -> bool:
    """True iff the candidate's log is at least as up-to-date as ours (§5.4.1).

    Compare the last entries' terms; the later term wins; with equal terms the longer
    log wins. Equal logs are up to date. Use term 0 / index 0 (or index -1, as
    `log_id_index` gives for ``None``) for an empty log. Terms must be in
    ``0 .. 2**63-1`` and indexes in ``-1 .. 2**63-1`` (ValueError otherwise).
    """
    _check("last_term", last_term)
    _check("cand_term", cand_term)
    _check("last_index", last_index, -1)
    _check("cand_index", cand_index, -1)
    if cand_term != last_term:
        return cand_term > last_term
    return cand_index >= last_index


def log_id_lt(a: LogId | None, b: LogId | None) -> bool:
    """``a < b`` where ``None`` (no log id) is below every `LogId`."""
    _check_optional_log_id(a)
    _check_optional_log_id(b)
    if b is None:
        return False
    if a is None:
        return True
    return a < b


def log_id_max(a: LogId | None, b: LogId | None) -> LogId | None:
    """The larger of two optional log ids (``None`` is smallest)."""
    return b if log_id_lt(a, b) else a


def log_id_index(log_id: LogId | None) -> int:
    """``log_id.index``, or -1 for ``None``: handy for "next index" arithmetic."""
    if log_id is None:
        return -1
    _check_optional_log_id(log_id)
    return log_id.index


def _check_optional_log_id(log_id: object) -> None:
    """TypeError unless ``log_id`` is a `LogId` or ``None``."""
    if log_id is not None and not isinstance(log_id, LogId):
        raise TypeError(f"expected a LogId or None, not {type(log_id).__name__}")
