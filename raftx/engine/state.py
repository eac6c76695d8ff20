"""`EngineState`: what a node knows, whatever its role (openraft ``RaftState``).

The shadow of the durable state (vote, log ids, commit index, membership, snapshot
meta), the I/O progress, the clock and election timer, and the client responders
waiting for their entries. The per-role state (leader, candidate) is in
`raftx.engine.roles`; the commands of a step are collected in
`raftx.engine.output`. Handlers are given the parts they may touch.

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
from typing import Any, Iterable, Iterator, Protocol, Sequence

from raftx.config import Config
from raftx.engine.commands import Condition
from raftx.engine.log_view import LogView
from raftx.engine.membership_state import MembershipState
from raftx.errors import ForwardToLeader
from raftx.types import LogId, SnapshotMeta, Vote

__all__ = ["EngineState", "ElectionTimer", "IOProgress", "Random", "RefusalCounters", "ResponderQueue",
           "each_responder"]


class Random(Protocol):
    """What the engine needs from its injected random source (a `random.Random`)."""

    def random(self) -> float: ...

    def randrange(self, start: int, stop: int) -> int: ...


class ElectionTimer:
    """When the election timer fires (ms), randomized per §5.2 from the injected rng."""

    __slots__ = ("deadline", "_rng", "_config")

    def __init__(self, rng: Random, config: Config) -> None:
        self.deadline = 0
        self._rng = rng
        self._config = config

    def reset(self, now: int) -> None:
        """Pick a new election timeout in [min, max) after ``now`` (§5.2)."""
        c = self._config
        self.deadline = now + self._rng.randrange(c.election_timeout_min, c.election_timeout_max)


@dataclass(slots=True)
class RefusalCounters:
    """Peer requests refused without touching state (monotonic counters,
    `raftx.engine.peer_check`)."""

    #: The sender is no member / not the leader, or the request names another node.
    unauthorized: int = 0
    #: Malformed or out-of-range content (`ProtocolError` answers of request checks).
    invalid: int = 0
    _logged_at: dict[str, int] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)


class EngineState:
    """A node's Raft state apart from its role (see the module docstring)."""

    __slots__ = (
        "id", "config", "now", "vote", "log", "committed", "applied", "apply_submitted", "snapshot",
        "snapshot_building", "membership", "io", "installing", "responders", "timer", "leader_seen_at",
        "leader_committed", "transfer_pending", "transfer_exempt", "refusals", "log_reversions",
    )

    def __init__(self, node_id: int, config: Config, rng: Random, vote: Vote, log: LogView,
                 committed: LogId | None, applied: LogId | None, snapshot: SnapshotMeta | None,
                 membership: MembershipState) -> None:
        self.id = node_id
        #: Read-only configuration (`raftx.config.Config`).
        self.config = config
        #: The latest time seen (ms, from `Tick`).
        self.now = 0
        #: currentTerm + votedFor (openraft Vote; committed once a quorum granted it).
        self.vote: Vote = vote
        #: Log ids of the accepted log.
        self.log = log
        #: Highest log id known committed (§5.3). Invariant: committed <= last log id.
        self.committed: LogId | None = committed
        #: Highest log id the state machine reported applied.
        self.applied: LogId | None = applied
        #: Highest log id handed to `Apply` (or covered by an installed snapshot).
        self.apply_submitted: LogId | None = applied
        #: The latest snapshot (§7), and whether one is being built.
        self.snapshot: SnapshotMeta | None = snapshot
        self.snapshot_building = False
        self.membership = membership
        self.io = IOProgress(vote, log.last_log_id)
        #: install io id -> snapshot last log id (applied once that io is durable).
        self.installing: dict[int, LogId | None] = {}
        #: Client responders waiting for their entries to be applied.
        self.responders = ResponderQueue()
        self.timer = ElectionTimer(rng, config)
        #: When this node last heard from a leader (ms); basis of the leader lease.
        self.leader_seen_at: int | None = None
        #: The highest commit index a current leader told this node (-1: none yet); a
        #: follower's own ``committed`` stops at its log's end (§5.3), this does not.
        self.leader_committed = -1
        #: A transfer request this node must act on once its log caught up.
        self.transfer_pending: Any = None
        #: (leader vote, candidate) the leader lease does not apply to (a transfer).
        self.transfer_exempt: tuple[Vote, int] | None = None
        #: Peer requests refused before any state change (`raftx.engine.peer_check`).
        self.refusals = RefusalCounters()
        #: Rejections of acknowledged entries seen as leader (`raftx.engine.reversion`).
        self.log_reversions = 0

    @property
    def current_leader(self) -> int | None:
        """The leader this node knows of (its committed vote's node), if any."""
        return self.vote.node_id if self.vote.committed else None

    def is_voter(self) -> bool:
        return self.membership.effective.membership.is_voter(self.id)

    def forward_to_leader(self) -> ForwardToLeader:
        """The error for an API call that needs the leader (openraft ``ForwardToLeader``)."""
        leader = self.current_leader
        if leader == self.id:
            return ForwardToLeader(None, None)
        node = None if leader is None else self.membership.effective.membership.get_node(leader)
        return ForwardToLeader(leader, node)

    def flushed_condition(self) -> Condition | None:
        """"After every storage write emitted so far is durable" (None if already)."""
        return None if self.io.all_flushed() else Condition.flushed(self.io.submitted)

    def reset_election_timer(self) -> None:
        """Pick a new election timeout from the injected rng (§5.2)."""
        self.timer.reset(self.now)


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


