"""`Engine`: Raft's protocol logic as a pure state machine (events in, commands out).

The engine holds the in-memory shadow of the node's durable state (vote, log ids,
commit index, membership, snapshot meta) and of its role. `Engine.step` takes one
`raftx.engine.events.Event`, updates that state, and returns the
`raftx.engine.commands.Command` list the runtime must carry out, in order (see
`raftx.engine.commands` for the ordering and condition rules).

The role logic lives in handler modules, one concern each (openraft handler
style): `election` (§5.2, §5.4.1, thesis §9.6), `replication` (leader side, §5.3,
§5.4.2), `following` (follower side, §5.3, §7), `membership` (thesis §4.3),
`reads` (thesis §6.4), `snapshot` (§7) and `transfer` (thesis §3.10). This module
wires them together and owns the shared helpers that emit storage commands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from raftx.config import Config
from raftx.engine import election, following, membership, reads, replication, snapshot, transfer
from raftx.engine import events as ev
from raftx.engine.commands import (
    Apply,
    AppendToLog,
    Command,
    Condition,
    PurgeLog,
    Respond,
    SaveCommitted,
    SaveVote,
    TruncateLog,
)
from raftx.engine.log_view import LogView
from raftx.engine.membership_state import MembershipState
from raftx.engine.state import CandidateState, IOProgress, LeaderState, ResponderQueue, each_responder
from raftx.errors import ForwardToLeader
from raftx.messages import LogEntries
from raftx.types import LogId, ServerState, SnapshotMeta, StoredMembership, Vote

__all__ = ["Engine", "RestoredState", "Random"]

logger = logging.getLogger(__name__)


class Random(Protocol):
    """What the engine needs from its injected random source (a `random.Random`)."""

    def random(self) -> float: ...

    def randrange(self, start: int, stop: int) -> int: ...


@dataclass(slots=True)
class RestoredState:
    """The durable state a node starts from (read from its stores by the runtime).

    ``log_runs`` are ``(first_index, term)`` runs of the entries in the log after
    ``purged`` up to ``last_index``; ``memberships`` the membership entries from
    the last one at or below ``committed`` on (a snapshot's counts).
    """

    vote: Vote = field(default_factory=Vote)
    log_runs: Sequence[tuple[int, int]] = ()
    last_index: int = -1
    purged: LogId | None = None
    committed: LogId | None = None
    applied: LogId | None = None
    snapshot: SnapshotMeta | None = None
    memberships: Sequence[StoredMembership] = ()


class Engine:
    """Raft for one node, without I/O. Build it, call `startup`, then `step` events.

    ``rng`` is a `random.Random`-like object (``random()``, ``randrange()``), the
    engine's only source of randomness (election timeouts, §5.2).
    """

    def __init__(self, node_id: int, config: Config, rng: Random, restored: RestoredState | None = None) -> None:
        r = restored or RestoredState()
        config.validate()
        self.id = node_id
        self.config = config
        self.rng = rng
        #: The latest time seen (ms, from `Tick`).
        self.now = 0
        #: currentTerm + votedFor (openraft Vote; committed once a quorum granted it).
        self.vote: Vote = r.vote
        #: Log ids of the accepted log.
        self.log = LogView(r.log_runs, r.last_index, r.purged)
        #: Highest log id known committed (§5.3). Invariant: committed <= last log id.
        self.committed: LogId | None = r.committed
        #: Highest log id the state machine reported applied.
        self.applied: LogId | None = r.applied
        #: Highest log id handed to `Apply` (or covered by an installed snapshot).
        self.apply_submitted: LogId | None = r.applied
        #: The latest snapshot (§7), and whether one is being built.
        self.snapshot: SnapshotMeta | None = r.snapshot
        self.snapshot_building = False
        mem = list(r.memberships)
        if r.snapshot is not None and r.snapshot.last_membership.log_id is not None:
            snap_sm = r.snapshot.last_membership
            snap_index = r.snapshot.last_membership.log_id.index
            if not mem or (mem[0].log_id is not None and mem[0].log_id.index < snap_index):
                mem = [snap_sm, *[m for m in mem if m.log_id is not None and m.log_id.index > snap_index]]
        self.membership = MembershipState(mem, -1 if r.committed is None else r.committed.index)
        self.io = IOProgress(self.vote, self.log.last_log_id)
        #: install io id -> snapshot last log id (applied once that io is durable).
        self.installing: dict[int, LogId | None] = {}
        self.server_state = ServerState.FOLLOWER
        self.leader: LeaderState | None = None
        self.candidate: CandidateState | None = None
        #: Rejections of acknowledged entries seen as leader (`raftx.engine.reversion`).
        self.log_reversions = 0
        #: When the election timer fires (ms); randomized per §5.2.
        self.election_deadline = 0
        #: When this node last heard from a leader (ms); basis of the leader lease.
        self.leader_seen_at: int | None = None
        #: Next heartbeat time on a leader (ms).
        self.next_heartbeat = 0
        #: A transfer request this node must act on once its log caught up.
        self.transfer_pending: Any = None
        #: (leader vote, candidate) the leader lease does not apply to (a transfer).
        self.transfer_exempt: tuple[Vote, int] | None = None
        self.responders = ResponderQueue()
        # runtime toggles (openraft RuntimeConfig)
        self.enable_tick = config.enable_tick
        self.enable_heartbeat = config.enable_heartbeat
        self.enable_elect = config.enable_elect
        self.enable_pre_vote = config.enable_pre_vote
        self._out: list[Command] = []
        self.refresh_server_state()
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.Tick: self._on_tick,
            ev.VoteRequested: lambda e: election.handle_vote_request(self, e.req, e.responder),
            ev.VoteResponded: lambda e: election.handle_vote_response(self, e.target, e.req_vote, e.resp),
            ev.AppendRequested: lambda e: following.handle_append_entries(self, e.req, e.responder),
            ev.AppendResponded: lambda e: replication.handle_append_response(self, e.target, e.send_id, e.resp),
            ev.ReplicationFailed: lambda e: replication.handle_replication_failed(self, e.target, e.send_id),
            ev.SnapshotReceived: lambda e: following.handle_snapshot(self, e.vote, e.meta, e.responder),
            ev.SnapshotResponded: lambda e: replication.handle_snapshot_response(self, e.target, e.send_id, e.resp),
            ev.TransferLeaderRequested: lambda e: transfer.handle_transfer_leader(self, e.req),
            ev.IOFlushed: self._on_io_flushed,
            ev.Applied: lambda e: snapshot.handle_applied(self, e.log_id),
            ev.SnapshotBuilt: lambda e: snapshot.handle_snapshot_built(self, e.meta),
            ev.Initialize: lambda e: membership.initialize(self, e.membership, e.responder),
            ev.ClientWrite: lambda e: replication.client_write(self, e.payloads, e.responders),
            ev.ChangeMembership: lambda e: membership.change_membership(self, e.changes, e.retain, e.responder),
            ev.AddLearner: lambda e: membership.add_learner(self, e.node_id, e.node, e.responder),
            ev.GetReadLogId: lambda e: reads.get_read_log_id(self, e.responder),
            ev.TriggerElect: lambda e: election.elect(self, pre_vote=e.pre_vote),
            ev.TriggerHeartbeat: lambda e: replication.broadcast_heartbeat(self),
            ev.TriggerSnapshot: lambda e: snapshot.trigger_snapshot(self),
            ev.TriggerPurgeLog: lambda e: snapshot.trigger_purge_log(self, e.upto),
            ev.TriggerTransferLeader: lambda e: transfer.trigger_transfer_leader(self, e.to),
            ev.SetRuntimeConfig: self._on_runtime_config,
        }

    # -- entry points -----------------------------------------------------------------------

    def startup(self, now: int) -> list[Command]:
        """Start the clock at ``now``; re-apply committed entries the state machine lacks."""
        self.now = now
        self.reset_election_timer()
        self.maybe_apply()
        return self.take_output()

    def step(self, event: ev.Event) -> list[Command]:
        """Handle one event; return the commands to carry out, in order."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"not an engine event: {event!r}")
        handler(event)
        return self.take_output()

    def take_output(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    # -- queries ----------------------------------------------------------------------------

    @property
    def current_leader(self) -> int | None:
        """The leader this node knows of (its committed vote's node), if any."""
        return self.vote.node_id if self.vote.committed else None

    @property
    def is_leader(self) -> bool:
        return self.leader is not None

    @property
    def last_log_id(self) -> LogId | None:
        return self.log.last_log_id

    def is_voter(self) -> bool:
        return self.membership.effective.membership.is_voter(self.id)

    def forward_to_leader(self) -> ForwardToLeader:
        """The error for an API call that needs the leader (openraft ``ForwardToLeader``)."""
        leader = self.current_leader
        if leader == self.id:
            return ForwardToLeader(None, None)
        node = None if leader is None else self.membership.effective.membership.get_node(leader)
        return ForwardToLeader(leader, node)

    # -- output helpers ---------------------------------------------------------------------

    def emit(self, cmd: Command) -> None:
        self._out.append(cmd)

    def respond(self, responder: Any, value: Any, when: Condition | None = None) -> None:
        if responder is not None:
            self._out.append(Respond(responder, value, when))

    def flushed_condition(self) -> Condition | None:
        """"After every storage write emitted so far is durable" (None if already)."""
        return None if self.io.all_flushed() else Condition.flushed(self.io.submitted)

    def save_vote(self, vote: Vote) -> None:
        """Adopt and persist ``vote`` (Figure 2: currentTerm/votedFor are persistent)."""
        self.vote = vote
        self.emit(SaveVote(self.io.submit(vote, self.log.last_log_id), vote))

    def append_to_log(self, entries: LogEntries) -> None:
        """Accept ``entries`` after the last entry; memberships take effect now (thesis §4.1)."""
        n = len(entries)
        if n == 0:
            return
        last = entries.log_id_at(n - 1)
        self.log.append(entries.term_runs(), last.index)
        for log_id, m in entries.memberships():
            self.membership.append(log_id, m)
        self.emit(AppendToLog(self.io.submit(self.vote, last), entries))
        if entries.memberships():
            self.on_membership_changed()

    def truncate_after(self, index: int) -> None:
        """Delete the entries after ``index`` (§5.3); fail the client writes among them."""
        if self.committed is not None and index < self.committed.index:
            raise AssertionError(f"truncating committed entries: after {index}, committed {self.committed}")
        after = self.log.log_id_at(index)
        self.log.truncate_after(index)
        self.emit(TruncateLog(self.io.submit(self.vote, after), after))
        for _, responder in each_responder(self.responders.take_from(index + 1)):
            self.respond(responder, self.forward_to_leader())
        if self.membership.truncate(index + 1):
            self.on_membership_changed()

    def purge_upto(self, log_id: LogId) -> None:
        """Delete the entries up to ``log_id`` (a snapshot covers them, §7)."""
        if log_id.index <= self.log.purged_index:
            return
        self.log.purge_upto(log_id)
        self.emit(PurgeLog(self.io.submit(self.vote, self.log.last_log_id), log_id))

    def commit_to(self, index: int) -> None:
        """Advance the commit index to ``index`` (a checked caller, §5.3/§5.4.2) and apply."""
        if self.committed is not None and index <= self.committed.index:
            return
        log_id = self.log.log_id_at(index)
        if log_id is None:
            raise AssertionError(f"commit index {index} is not in the log ({self.log!r})")
        self.committed = log_id
        was_pending = not self.membership.is_effective_committed()
        self.membership.update_committed(index)
        self.maybe_apply()
        if was_pending and self.membership.is_effective_committed():
            membership.on_membership_committed(self)

    def maybe_apply(self) -> None:
        """Hand the newly committed entries to the state machine, in order (§5.3)."""
        committed = self.committed
        if committed is None:
            return
        first = -1 if self.apply_submitted is None else self.apply_submitted.index
        if committed.index <= first:
            return
        self.emit(SaveCommitted(committed))
        self.emit(Apply(first + 1, committed, self.responders.take_upto(committed.index)))
        self.apply_submitted = committed

    # -- roles ----------------------------------------------------------------------------------

    def reset_election_timer(self) -> None:
        """Pick a new election timeout in [min, max) from the injected rng (§5.2)."""
        c = self.config
        self.election_deadline = self.now + self.rng.randrange(c.election_timeout_min, c.election_timeout_max)

    def refresh_server_state(self) -> None:
        """Set FOLLOWER / LEARNER from the effective membership unless leading or campaigning."""
        if self.leader is not None:
            self.server_state = ServerState.LEADER
        elif self.candidate is not None and not self.candidate.pre_vote:
            self.server_state = ServerState.CANDIDATE
        else:
            self.server_state = ServerState.FOLLOWER if self.is_voter() else ServerState.LEARNER

    def become_follower(self) -> None:
        """Leave the leader / candidate role (§5.1); fail what only a leader could finish."""
        if self.leader is not None:
            reads.fail_pending_reads(self, self.forward_to_leader())
            change = self.leader.change
            if change is not None:
                self.respond(change.responder, self.forward_to_leader())
            logger.info("node %s steps down from leader of term %s", self.id, self.leader.vote.term)
        self.leader = None
        self.candidate = None
        self.refresh_server_state()

    def on_membership_changed(self) -> None:
        """The effective membership changed: roles, replication targets and tracker follow."""
        if self.leader is not None:
            replication.rebuild_progress(self)
            transfer.abort_if_target_removed(self)
        self.refresh_server_state()

    # -- small events -----------------------------------------------------------------------------

    def _on_tick(self, event: ev.Tick) -> None:
        if event.now > self.now:
            self.now = event.now
        if not self.enable_tick:
            return
        if self.leader is not None:
            reads.expire_pending_reads(self)
            transfer.expire_transfer(self)
            if self.enable_heartbeat and self.now >= self.next_heartbeat:
                replication.broadcast_heartbeat(self)
            return
        if self.enable_elect and self.now >= self.election_deadline:
            if self.is_voter():
                election.elect(self, pre_vote=self.enable_pre_vote)
            else:
                self.reset_election_timer()

    def _on_io_flushed(self, event: ev.IOFlushed) -> None:
        if not self.io.flush(event.io_id):
            return
        for io_id in [i for i in self.installing if i <= event.io_id]:
            last = self.installing.pop(io_id)
            if last is not None and (self.applied is None or self.applied < last):
                self.applied = last
        if self.leader is not None:
            replication.on_local_flushed(self)

    def _on_runtime_config(self, event: ev.SetRuntimeConfig) -> None:
        if event.tick is not None:
            self.enable_tick = event.tick
        if event.heartbeat is not None:
            self.enable_heartbeat = event.heartbeat
        if event.elect is not None:
            self.enable_elect = event.elect
            if event.elect:
                self.reset_election_timer()
        if event.pre_vote is not None:
            self.enable_pre_vote = event.pre_vote

    def __repr__(self) -> str:
        return (
            f"Engine(id={self.id}, state={self.server_state.value}, vote={self.vote!r}, "
            f"last={self.log.last_log_id!r}, committed={self.committed!r})"
        )
