"""Vote, LeaderId and LogId ordering, and the log up-to-date check (pure-Python twin).

raftx follows openraft's *standard* leader-id mode (``leader_id_std``): at most one
leader per term, so a committed leader id is just the term.

* `LeaderId(term, node_id)`: the candidate or leader a vote was cast for. Ordered by
  term; within a term, ``node_id=None`` (no vote cast yet) is below any node, equal
  node ids are equal, and two *different* nodes are **incomparable** (a node that
  voted for A in term 5 must not also vote for B in term 5, §5.2).
* `Vote(term, node_id, committed)`: openraft's vote: a leader id plus whether a
  quorum granted it (``committed=True`` once the node is the established leader).
  Ordered by leader id, then ``committed`` (False < True); incomparable when the
  leader ids are. A node grants an incoming vote iff ``incoming >= current``
  (`vote_can_grant`).
* `LogId(leader_id, index)`: the id of a log entry. ``leader_id`` is the term of the
  leader that created it (openraft's ``CommittedLeaderId`` in std mode); `term` is an
  alias. Totally ordered by ``(term, index)`` (§5.4.1).

All three are immutable, hashable and picklable. ``None`` stands for "no log id"
and sorts below every `LogId` in `log_id_lt` / `log_id_max`.
"""

from __future__ import annotations

from typing import Any


class LeaderId:
    """Who a vote is for in a term; see the module docstring for the partial order."""

    __slots__ = ("term", "node_id")

    term: int
    node_id: int | None

    def __init__(self, term: int, node_id: int | None = None) -> None:
        if term < 0:
            raise ValueError(f"term must be >= 0, not {term}")
        object.__setattr__(self, "term", term)
        object.__setattr__(self, "node_id", node_id)

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
        if self.term != other.term:
            return -1 if self.term < other.term else 1
        if self.node_id == other.node_id:
            return 0
        if self.node_id is None:
            return -1
        if other.node_id is None:
            return 1
        return None

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
        if term < 0:
            raise ValueError(f"term must be >= 0, not {term}")
        object.__setattr__(self, "term", term)
        object.__setattr__(self, "node_id", node_id)
        object.__setattr__(self, "committed", bool(committed))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Vote, (self.term, self.node_id, self.committed))

    @property
    def leader_id(self) -> LeaderId:
        return LeaderId(self.term, self.node_id)

    def is_committed(self) -> bool:
        return self.committed

    def commit(self) -> Vote:
        """The same vote, marked as granted by a quorum."""
        return Vote(self.term, self.node_id, True)

    def __repr__(self) -> str:
        return f"Vote({self.term}, {self.node_id!r}, committed={self.committed})"

    def __hash__(self) -> int:
        return hash((self.term, self.node_id, self.committed))

    def _cmp(self, other: Vote) -> int | None:
        c = LeaderId._cmp(self, other)  # type: ignore[arg-type]  # same fields
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

    __slots__ = ("leader_id", "index")

    leader_id: int
    index: int

    def __init__(self, leader_id: int, index: int) -> None:
        if leader_id < 0 or index < 0:
            raise ValueError(f"LogId fields must be >= 0, not ({leader_id}, {index})")
        object.__setattr__(self, "leader_id", leader_id)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogId, (self.leader_id, self.index))

    @property
    def term(self) -> int:
        return self.leader_id

    def __repr__(self) -> str:
        return f"LogId({self.leader_id}, {self.index})"

    def __hash__(self) -> int:
        return hash((self.leader_id, self.index))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogId):
            return NotImplemented
        return self.leader_id == other.leader_id and self.index == other.index

    def __lt__(self, other: LogId) -> bool:
        return (self.leader_id, self.index) < (other.leader_id, other.index)

    def __le__(self, other: LogId) -> bool:
        return (self.leader_id, self.index) <= (other.leader_id, other.index)

    def __gt__(self, other: LogId) -> bool:
        return (self.leader_id, self.index) > (other.leader_id, other.index)

    def __ge__(self, other: LogId) -> bool:
        return (self.leader_id, self.index) >= (other.leader_id, other.index)


def vote_can_grant(current: Vote, incoming: Vote) -> bool:
    """True iff a node holding ``current`` may accept ``incoming`` (``incoming >= current``)."""
    return incoming._cmp(current) in (0, 1)


def is_log_up_to_date(last_term: int, last_index: int, cand_term: int, cand_index: int) -> bool:
    """True iff the candidate's log is at least as up-to-date as ours (§5.4.1).

    Compare the last entries' terms; the later term wins; with equal terms the longer
    log wins. Equal logs are up to date. Use term 0 / index 0 for an empty log.
    """
    if cand_term != last_term:
        return cand_term > last_term
    return cand_index >= last_index


def log_id_lt(a: LogId | None, b: LogId | None) -> bool:
    """``a < b`` where ``None`` (no log id) is below every `LogId`."""
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
    return -1 if log_id is None else log_id.index
