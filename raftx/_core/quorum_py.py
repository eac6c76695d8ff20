"""Quorum arithmetic: committed index and vote tallies, majority and joint (pure-Python twin).

This is the readable spec of ``raftx._core.quorum``; the compiled twin ``quorum_c``
has the same names, signatures and behaviour. The maths follows etcd-io/raft's
``quorum`` package:

* A **majority** of ``n`` voters is ``n // 2 + 1``.
* `committed_index`: the largest log index that a majority of voters has matched
  (§5.3, §5.4.2 -- the caller still checks that the entry is from the current term).
  Sort the matched indexes and pick the one a majority has reached. The empty
  configuration commits "everything" (`INDEX_MAX`), so that a joint configuration
  with an empty half behaves like its other half.
* `joint_committed_index`: during joint consensus (thesis §4.3) an entry is committed
  only when *both* the old and the new configuration have a majority: the minimum of
  the two. An empty new half means "not joint".
* `vote_result`: an election is won with a majority of grants, lost once a majority
  can no longer be reached (§5.2); an empty configuration wins its elections.
  `joint_vote_result`: lost if either half lost, won if both won, pending otherwise.

Learners never count: callers pass only voters' values, and the trackers ignore ids
that are not voters.

Matched indexes are ints in ``-1 .. INDEX_MAX`` where ``-1`` means "nothing matched
yet" (``log_id_index(None)``); node ids are ints in ``0 .. INDEX_MAX``. Anything else
raises `TypeError` (not an int) or `ValueError` (out of range), in both twins.

`ProgressTracker` and `VoteTracker` are the incremental forms the leader / candidate
uses per response, so that each acknowledgement costs a few operations instead of a
full recount.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, insort
from operator import index as _as_int
from typing import Iterable, Sequence

__all__ = [
    "INDEX_MAX",
    "MATCHED_NONE",
    "VOTE_PENDING",
    "VOTE_LOST",
    "VOTE_WON",
    "committed_index",
    "joint_committed_index",
    "vote_result",
    "joint_vote_result",
    "ProgressTracker",
    "VoteTracker",
]

logger = logging.getLogger(__name__)

#: The committed index of an empty configuration ("everything"), etcd's convention.
INDEX_MAX: int = 2**63 - 1
#: The matched index of a voter that has matched nothing yet (``log_id_index(None)``).
MATCHED_NONE: int = -1

#: Outcomes of a vote tally (values as in etcd's ``quorum.VoteResult``).
VOTE_PENDING: int = 1
VOTE_LOST: int = 2
VOTE_WON: int = 3


def _check_matched(value: int) -> int:
    """``value`` as an int, or TypeError / ValueError if it is no valid matched index."""
    value = _as_int(value)
    if value < MATCHED_NONE or value > INDEX_MAX:
        raise ValueError(f"matched index must be in [-1, {INDEX_MAX}], not {value}")
    return value


def _check_node_id(node_id: int) -> int:
    """``node_id`` as an int, or TypeError / ValueError if it is no valid node id."""
    node_id = _as_int(node_id)
    if node_id < 0 or node_id > INDEX_MAX:
        raise ValueError(f"node id must be in [0, {INDEX_MAX}], not {node_id}")
    return node_id


def committed_index(matched: Sequence[int]) -> int:
    """The largest index matched by a majority of voters (§5.3); empty → `INDEX_MAX`.

    ``matched`` holds one matched index per voter (learners excluded). With the
    indexes sorted ascending, a majority (``n // 2 + 1`` voters) has reached the one
    at position ``n - (n // 2 + 1)``.
    """
    srt = sorted(map(_as_int, matched))
    n = len(srt)
    if n == 0:
        return INDEX_MAX
    if srt[0] < MATCHED_NONE or srt[-1] > INDEX_MAX:
        bad = srt[0] if srt[0] < MATCHED_NONE else srt[-1]
        raise ValueError(f"matched index must be in [-1, {INDEX_MAX}], not {bad}")
    return srt[n - (n // 2 + 1)]


def joint_committed_index(matched_old: Sequence[int], matched_new: Sequence[int]) -> int:
    """The index committed in a joint configuration: both majorities (thesis §4.3).

    The minimum of the two halves' committed indexes. An empty new half means the
    configuration is not joint, so only the old half counts.
    """
    old = committed_index(matched_old)
    if len(matched_new) == 0:
        return old
    new = committed_index(matched_new)
    return old if old < new else new


def vote_result(n_voters: int, granted: int, rejected: int) -> int:
    """Tally an election among ``n_voters`` voters (§5.2).

    `VOTE_WON` once ``granted`` reaches a majority, `VOTE_LOST` once the rejections
    leave too few voters to reach one, else `VOTE_PENDING`. Zero voters win.
    Raises `ValueError` if a count is negative, ``granted + rejected > n_voters`` or
    ``n_voters > INDEX_MAX``.
    """
    n_voters, granted, rejected = _as_int(n_voters), _as_int(granted), _as_int(rejected)
    if n_voters > INDEX_MAX or granted < 0 or rejected < 0 or granted + rejected > n_voters:
        raise ValueError(f"invalid tally: n_voters={n_voters} granted={granted} rejected={rejected}")
    if n_voters == 0:
        return VOTE_WON
    majority = n_voters // 2 + 1
    if granted >= majority:
        return VOTE_WON
    if rejected > n_voters - majority:
        return VOTE_LOST
    return VOTE_PENDING


def joint_vote_result(
    n_old: int, granted_old: int, rejected_old: int, n_new: int, granted_new: int, rejected_new: int
) -> int:
    """Tally an election in a joint configuration (thesis §4.3): both halves must win.

    Lost if either half lost, won if both won, pending otherwise. An empty half wins,
    so an empty new half leaves just the old half's result.
    """
    old = vote_result(n_old, granted_old, rejected_old)
    new = vote_result(n_new, granted_new, rejected_new)
    if old == new:
        return old
    if old == VOTE_LOST or new == VOTE_LOST:
        return VOTE_LOST
    return VOTE_PENDING


def _unique_ids(ids: Iterable[int]) -> tuple[int, ...]:
    """Validated node ids, duplicates dropped, first-seen order kept."""
    return tuple(dict.fromkeys(_check_node_id(i) for i in ids))


class _Half:
    """One majority configuration of a tracker: matched index per voter, kept sorted."""

    __slots__ = ("matched", "sorted", "pos")

    def __init__(self, voters: tuple[int, ...]) -> None:
        self.matched = dict.fromkeys(voters, MATCHED_NONE)
        self.sorted = [MATCHED_NONE] * len(voters)
        n = len(voters)
        self.pos = n - (n // 2 + 1)  # position of the committed index; -1 when empty

    def set(self, node_id: int, value: int) -> None:
        old = self.matched[node_id]
        self.matched[node_id] = value
        srt = self.sorted
        del srt[bisect_left(srt, old)]
        insort(srt, value)

    def committed(self) -> int:
        return self.sorted[self.pos] if self.pos >= 0 else INDEX_MAX


class _Config:
    """A tracker's configuration: the voters, and the new half when joint (thesis §4.3)."""

    __slots__ = ("_voters", "_voters_new")

    def __init__(self, voters: Iterable[int], voters_new: Iterable[int]) -> None:
        self._voters = _unique_ids(voters)
        self._voters_new = _unique_ids(voters_new)

    @property
    def voters(self) -> tuple[int, ...]:
        """The (old) voter ids, duplicates dropped."""
        return self._voters

    @property
    def voters_new(self) -> tuple[int, ...]:
        """The new half's voter ids; empty when the configuration is not joint."""
        return self._voters_new


class ProgressTracker(_Config):
    """The leader's incremental committed index over voters' matched indexes (§5.3).

    ``ProgressTracker(voters, voters_new=())``: every voter starts at `MATCHED_NONE`.
    `update` records an acknowledgement and returns the new committed index, which is
    joint aware (thesis §4.3: the minimum over both halves when ``voters_new`` is not
    empty). A node in both halves counts in both. Ids that are not voters (learners,
    removed nodes) are ignored. A matched index never moves backwards through
    `update` (stale or reordered acks are ignored); `reset` sets it explicitly, e.g.
    after a follower's log was truncated.
    """

    __slots__ = ("_old", "_new", "_joint", "_committed")

    def __init__(self, voters: Iterable[int], voters_new: Iterable[int] = ()) -> None:
        super().__init__(voters, voters_new)
        self._old = _Half(self._voters)
        self._new = _Half(self._voters_new)
        self._joint = len(self._voters_new) > 0
        self._committed = self._compute()

    @property
    def committed(self) -> int:
        """The index a majority (of both halves, if joint) has matched."""
        return self._committed

    def matched(self, node_id: int) -> int:
        """The matched index of voter ``node_id``; KeyError if it is not a voter."""
        node_id = _check_node_id(node_id)
        value = self._old.matched.get(node_id)
        if value is None:
            value = self._new.matched.get(node_id)
            if value is None:
                raise KeyError(node_id)
        return value

    def _compute(self) -> int:
        old = self._old.committed()
        if not self._joint:
            return old
        new = self._new.committed()
        return old if old < new else new

    def _set(self, node_id: int, value: int, backwards: bool) -> int:
        hit = False
        for half in (self._old, self._new):
            current = half.matched.get(node_id)
            if current is None:
                continue
            hit = True
            if value > current or (backwards and value != current):
                half.set(node_id, value)
        if hit:
            self._committed = self._compute()
        return self._committed

    def update(self, node_id: int, matched: int) -> int:
        """Record that ``node_id`` has matched the log up to ``matched``; return committed.

        Ignored when ``node_id`` is not a voter or ``matched`` is below its current
        value (an out-of-order acknowledgement).
        """
        return self._set(_check_node_id(node_id), _check_matched(matched), False)

    def reset(self, node_id: int, matched: int) -> int:
        """Set ``node_id``'s matched index, even backwards; return the committed index."""
        return self._set(_check_node_id(node_id), _check_matched(matched), True)

    def __repr__(self) -> str:
        return f"ProgressTracker(voters={self._voters!r}, voters_new={self._voters_new!r}, committed={self._committed})"


class VoteTracker(_Config):
    """A candidate's incremental election tally (§5.2), joint aware (thesis §4.3).

    ``VoteTracker(voters, voters_new=())``; `record` notes one voter's response and
    returns the result (`VOTE_PENDING` / `VOTE_LOST` / `VOTE_WON`). A node's first
    response counts; repeats (retransmissions) are ignored, as in etcd. Ids that are
    not voters are ignored.
    """

    __slots__ = ("_old_set", "_new_set", "_votes", "_counts", "_result")

    def __init__(self, voters: Iterable[int], voters_new: Iterable[int] = ()) -> None:
        super().__init__(voters, voters_new)
        self._old_set = frozenset(self._voters)
        self._new_set = frozenset(self._voters_new)
        self._votes: dict[int, bool] = {}
        # granted_old, rejected_old, granted_new, rejected_new
        self._counts = [0, 0, 0, 0]
        self._result = self._compute()

    @property
    def result(self) -> int:
        """`VOTE_PENDING`, `VOTE_LOST` or `VOTE_WON` for the responses so far."""
        return self._result

    def _compute(self) -> int:
        c = self._counts
        return joint_vote_result(len(self._voters), c[0], c[1], len(self._voters_new), c[2], c[3])

    def record(self, node_id: int, granted: bool) -> int:
        """Count ``node_id``'s response (its first only); return the election result."""
        node_id = _check_node_id(node_id)
        if node_id in self._votes:
            return self._result
        in_old = node_id in self._old_set
        in_new = node_id in self._new_set
        if not (in_old or in_new):
            return self._result
        granted = bool(granted)
        self._votes[node_id] = granted
        slot = 0 if granted else 1
        if in_old:
            self._counts[slot] += 1
        if in_new:
            self._counts[2 + slot] += 1
        self._result = self._compute()
        return self._result

    def __repr__(self) -> str:
        return f"VoteTracker(voters={self._voters!r}, voters_new={self._voters_new!r}, result={self._result})"
