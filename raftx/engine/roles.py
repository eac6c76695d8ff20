"""The role objects: what only a leader, or only a candidate, has (openraft ``Leader``
/ ``Candidate``), and `Roles`, which holds the current one.

A handler that works for the leader is given its `LeaderState`, taken from
`Roles.leading` (which asserts the role); a handler that may change the role is
given the `Roles`. Roles change in `raftx.engine.server_state` (step down),
`raftx.engine.election` (campaign, lead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raftx import _core
from raftx.engine.progress import Progress, SendTimes
from raftx.types import LogId, Membership, ServerState, Vote

__all__ = ["CandidateState", "LeaderState", "PendingChange", "PendingRead", "Roles"]


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
    #: When each request was sent (`raftx.engine.progress.SendTimes`); set by `raftx.engine.election.lead`.
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
    #: Next heartbeat time (ms).
    next_heartbeat: int = 0

    def new_tracker(self, membership: Membership) -> None:
        """Track commit over ``membership``'s voters (joint aware, thesis §4.3)."""
        configs = membership.configs
        old = configs[0] if configs else ()
        new = configs[1] if len(configs) > 1 else ()
        tracker = _core.quorum.ProgressTracker(sorted(old), sorted(new))
        for node_id, p in self.progress.items():
            tracker.update(node_id, p.matching_index)
        self.tracker = tracker


class Roles:
    """The node's current role (§5.1): a leader's or a candidate's state, or neither."""

    __slots__ = ("server_state", "leader", "candidate", "last_send_id")

    def __init__(self) -> None:
        self.server_state = ServerState.FOLLOWER
        self.leader: LeaderState | None = None
        self.candidate: CandidateState | None = None
        #: The last AppendEntries/snapshot send id of this node's latest leadership
        #: (the next leadership continues after it, `LeaderState.next_send_id`).
        self.last_send_id = 0

    def leading(self) -> LeaderState:
        """The leader's state; only for a caller that knows this node leads."""
        leader = self.leader
        if leader is None:
            raise AssertionError("not the leader")
        return leader

    def refresh(self, is_voter: bool) -> None:
        """Set FOLLOWER / LEARNER (from ``is_voter``) unless leading or campaigning."""
        if self.leader is not None:
            self.server_state = ServerState.LEADER
        elif self.candidate is not None and not self.candidate.pre_vote:
            self.server_state = ServerState.CANDIDATE
        else:
            self.server_state = ServerState.FOLLOWER if is_voter else ServerState.LEARNER
