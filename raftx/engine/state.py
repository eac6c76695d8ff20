"""Small state holders of the engine: I/O progress, pending client responders, and
the per-role state of a leader and of a candidate.

Log pointers (openraft ``log_pointers``), all inclusive log ids:
``purged <= snapshot <= applied <= committed <= flushed <= submitted <= accepted``
where *accepted* is the engine's own view (`raftx.engine.log_view.LogView`),
*submitted* is every storage command emitted so far (io id ``IOProgress.submitted``)
and *flushed* what the runtime reported durable (`IOProgress.flushed`). A leader
counts its own log toward commit only up to *flushed* (§5.4.2 with durability).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from raftx import _core
from raftx.engine.progress import Progress, SendTimes
from raftx.types import LogId, Membership, Vote

__all__ = ["CandidateState", "IOProgress", "LeaderState", "PendingChange", "PendingRead", "ResponderQueue",
           "each_responder"]


class IOProgress:
    """Storage writes emitted (``submitted``) and reported durable (``flushed``)."""

    __slots__ = ("submitted", "flushed", "flushed_log_id", "flushed_vote", "_pending")

    def __init__(self, vote: Vote, last_log_id: LogId | None) -> None:
        #: The io id of the last storage command emitted (-1: none yet).
        self.submitted = -1
        #: The last io id reported durable. Invariant: flushed <= submitted.
        self.flushed = -1
        #: The log's last id / the vote as of the last durable io.
        self.flushed_log_id: LogId | None = last_log_id
        self.flushed_vote: Vote = vote
        #: (io_id, vote, last_log_id) after each io not yet durable, oldest first.
        self._pending: deque[tuple[int, Vote, LogId | None]] = deque()

    def submit(self, vote: Vote, last_log_id: LogId | None) -> int:
        """Allocate the next io id for a write that leaves this vote and last log id."""
        self.submitted += 1
        self._pending.append((self.submitted, vote, last_log_id))
        return self.submitted

    def flush(self, io_id: int) -> bool:
        """Every io ``<= io_id`` is durable; True if anything new became durable."""
        moved = False
        pending = self._pending
        while pending and pending[0][0] <= io_id:
            _, self.flushed_vote, self.flushed_log_id = pending.popleft()
            moved = True
        if io_id > self.flushed:
            self.flushed = min(io_id, self.submitted)
        return moved

    def all_flushed(self) -> bool:
        return self.flushed >= self.submitted


class ResponderQueue:
    """Client responders waiting for their entries to be applied, by log index."""

    __slots__ = ("_batches",)

    def __init__(self) -> None:
        #: (first_index, responders) per client batch, in log order.
        self._batches: deque[tuple[int, Sequence[Any]]] = deque()

    def __len__(self) -> int:
        return sum(len(r) for _, r in self._batches)

    def push(self, first_index: int, responders: Sequence[Any]) -> None:
        if responders:
            self._batches.append((first_index, responders))

    def take_upto(self, index: int) -> list[tuple[int, Sequence[Any]]]:
        """Remove and return the responder runs of every entry ``<= index``: ``(first,
        responders)``, ``responders[k]`` answering entry ``first + k`` (None: no one)."""
        out: list[tuple[int, Sequence[Any]]] = []
        batches = self._batches
        while batches and batches[0][0] <= index:
            first, rs = batches.popleft()
            n = index - first + 1
            if n < len(rs):
                batches.appendleft((first + n, rs[n:]))
                rs = rs[:n]
            out.append((first, rs))
        return out

    def take_from(self, index: int) -> list[tuple[int, Sequence[Any]]]:
        """Remove and return the responder runs of entries ``>= index`` (they were truncated)."""
        out: list[tuple[int, Sequence[Any]]] = []
        batches = self._batches
        while batches and batches[-1][0] + len(batches[-1][1]) - 1 >= index:
            first, rs = batches.pop()
            keep = max(0, index - first)
            out.insert(0, (first + keep, rs[keep:]))
            if keep:
                batches.append((first, rs[:keep]))
                break
        return out


def each_responder(runs: Iterable[tuple[int, Sequence[Any]]]) -> Iterator[tuple[int, Any]]:
    """``(index, responder)`` for every responder of ``runs`` (`ResponderQueue.take_upto`)."""
    for first, rs in runs:
        for p, r in enumerate(rs):
            if r is not None:
                yield first + p, r


@dataclass(slots=True)
class CandidateState:
    """An election in progress (§5.2), or a pre-vote round (thesis §9.6)."""

    vote: Vote
    pre_vote: bool
    tracker: Any  # _core.quorum.VoteTracker


@dataclass(slots=True)
class PendingRead:
    """A linearizable read waiting for one quorum round (§6.4 / thesis §6.4)."""

    send_id: int
    read_log_id: LogId | None
    responder: Any
    started_at: int


@dataclass(slots=True)
class PendingChange:
    """A membership change between its joint and its uniform entry (thesis §4.3)."""

    target: Membership
    retain: bool
    responder: Any


@dataclass(slots=True)
class LeaderState:
    """Everything only a leader has (§5.3): progress per target and the commit tracker."""

    vote: Vote
    #: The first entry of this leader's term (the blank entry, §8).
    noop_log_id: LogId
    progress: dict[int, Progress] = field(default_factory=dict)
    tracker: Any = None  # _core.quorum.ProgressTracker over the effective voters
    #: The last send id used; ids keep growing across this node's leaderships, so an
    #: answer to an earlier term's request is never taken for one of this term's.
    next_send_id: int = 0
    #: When each request was sent (`raftx.engine.progress.SendTimes`); set by `become_leader`.
    send_times: SendTimes = field(default_factory=lambda: SendTimes(0))
    reads: list[PendingRead] = field(default_factory=list)
    #: When the request a quorum answered most recently was sent (leader lease).
    last_quorum_acked: int = 0
    #: The same from answers to this leader's requests only (not the election): the
    #: basis of the read lease (`raftx.engine.reads.read_lease_end`); -1: none yet.
    lease_acked: int = -1
    #: A leadership transfer began this term: no lease reads for the rest of it.
    lease_void: bool = False
    change: PendingChange | None = None
    #: Leadership transfer target (thesis §3.10), when it began, whether it was sent.
    transfer_to: int | None = None
    transfer_started_at: int = 0
    transfer_sent: bool = False
    #: A leader removed from the voters (`raftx.engine.membership.step_down_if_removed`):
    #: when it next acts (hands over, then steps down), and whether it handed over.
    removed_step_at: int | None = None
    removed_handed_over: bool = False
    #: Average size of the payloads this leader appended (inflight byte estimate).
    entry_bytes: float = 64.0

    def new_tracker(self, membership: Membership) -> None:
        """Track commit over ``membership``'s voters (joint aware, thesis §4.3)."""
        configs = membership.configs
        old = configs[0] if configs else ()
        new = configs[1] if len(configs) > 1 else ()
        tracker = _core.quorum.ProgressTracker(sorted(old), sorted(new))
        for node_id, p in self.progress.items():
            tracker.update(node_id, p.matching_index)
        self.tracker = tracker
