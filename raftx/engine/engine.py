"""`Engine`: Raft's protocol logic as a pure state machine (events in, commands out).

The engine holds the in-memory shadow of the node's durable state (vote, log ids,
commit index, membership, snapshot meta) and of its role. `Engine.step` takes one
`raftx.engine.events.Event`, updates that state, and returns the
`raftx.engine.commands.Command` list the runtime must carry out, in order (see
`raftx.engine.commands` for the ordering and condition rules).

The state is split as in openraft: `raftx.engine.state.EngineState` (vote, log ids,
commit index, membership, I/O progress, clock), the role objects of
`raftx.engine.roles` (a leader's state comes from `Roles.leading`, which asserts the
role) and the step's `raftx.engine.output.Output`. The logic lives in handler
modules, one concern each, and each handler is given only the parts it may touch:
`election` (§5.2, §5.4.1, thesis §9.6), `replication` (a leader's writes and the
answers, §5.3, §5.4.2), `sending` (what a leader sends each target), `following`
(follower side, §5.3, §7), `membership` (thesis §4.3), `reads` (thesis §6.4),
`snapshot` (§7), `transfer` (thesis §3.10), `server_state` (stepping down, §5.1) and
`log_ops` (the storage commands). The modules form layers without a cycle
(``tests/test_import_cycles.py``); this one dispatches the events to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from raftx.config import Config
from raftx.engine import election, following, log_ops, membership, reads, replication, sending, snapshot, transfer
from raftx.engine import events as ev
from raftx.engine.commands import Command
from raftx.engine.log_view import LogView
from raftx.engine.membership_state import MembershipState
from raftx.engine.output import Output
from raftx.engine.roles import CandidateState, LeaderState, Roles
from raftx.engine.state import EngineState, IOProgress, Random, RefusalCounters, ResponderQueue
from raftx.errors import ForwardToLeader
from raftx.types import LogId, ServerState, SnapshotMeta, StoredMembership, Vote

__all__ = ["Engine", "RestoredState", "Random"]

logger = logging.getLogger(__name__)


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
        mem = list(r.memberships)
        if r.snapshot is not None and r.snapshot.last_membership.log_id is not None:
            snap_sm = r.snapshot.last_membership
            snap_index = r.snapshot.last_membership.log_id.index
            if not mem or (mem[0].log_id is not None and mem[0].log_id.index < snap_index):
                mem = [snap_sm, *[m for m in mem if m.log_id is not None and m.log_id.index > snap_index]]
        #: What the node knows whatever its role (vote, log ids, commit, membership, io).
        self.state = EngineState(node_id, config, rng, r.vote, LogView(r.log_runs, r.last_index, r.purged),
                                 r.committed, r.applied, r.snapshot,
                                 MembershipState(mem, -1 if r.committed is None else r.committed.index))
        #: The current role: a leader's or a candidate's state.
        self.roles = Roles()
        #: The commands of the current step.
        self.output = Output()
        # runtime toggles (openraft RuntimeConfig)
        self.enable_tick = config.enable_tick
        self.enable_heartbeat = config.enable_heartbeat
        self.enable_elect = config.enable_elect
        self.enable_pre_vote = config.enable_pre_vote
        st, roles, out = self.state, self.roles, self.output
        roles.refresh(st.is_voter())
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.Tick: self._on_tick,
            ev.VoteRequested: lambda e: election.handle_vote_request(st, roles, out, e.req, e.responder, e.sender),
            ev.VoteResponded: lambda e: election.handle_vote_response(st, roles, out, e.target, e.req_vote, e.resp),
            ev.AppendRequested: lambda e: following.handle_append_entries(st, roles, out, e.req, e.responder,
                                                                          e.sender),
            ev.AppendResponded: lambda e: replication.handle_append_response(st, roles, out, e.target, e.send_id,
                                                                             e.resp),
            ev.ReplicationFailed: self._on_replication_failed,
            ev.SnapshotReceived: lambda e: following.handle_snapshot(st, roles, out, e.vote, e.meta, e.responder,
                                                                     e.sender),
            ev.SnapshotResponded: lambda e: replication.handle_snapshot_response(st, roles, out, e.target,
                                                                                 e.send_id, e.resp),
            ev.TransferLeaderRequested: self._on_transfer_leader_requested,
            ev.IOFlushed: self._on_io_flushed,
            ev.Applied: lambda e: snapshot.handle_applied(st, out, e.log_id),
            ev.SnapshotBuilt: lambda e: snapshot.handle_snapshot_built(st, roles.leader, out, e.meta),
            ev.Initialize: self._on_initialize,
            ev.ClientWrite: lambda e: replication.client_write(st, roles, out, e.payloads, e.responders,
                                                               e.expected_leader),
            ev.ChangeMembership: lambda e: self._as_leader(e.responder, membership.change_membership, e.changes,
                                                           e.retain, e.responder),
            ev.AddLearner: lambda e: self._as_leader(e.responder, membership.add_learner, e.node_id, e.node,
                                                     e.responder),
            ev.GetReadLogId: lambda e: self._as_leader(e.responder, reads.get_read_log_id, e.responder, e.lease,
                                                       e.now),
            ev.TriggerElect: lambda e: election.elect(st, roles, out, pre_vote=e.pre_vote),
            ev.TriggerHeartbeat: self._on_trigger_heartbeat,
            ev.TriggerSnapshot: lambda e: snapshot.trigger_snapshot(st, out),
            ev.TriggerPurgeLog: lambda e: snapshot.trigger_purge_log(st, out, e.upto),
            ev.TriggerTransferLeader: self._on_trigger_transfer_leader,
            ev.SetRuntimeConfig: self._on_runtime_config,
        }

    # -- entry points -----------------------------------------------------------------------

    def startup(self, now: int) -> list[Command]:
        """Start the clock at ``now``; re-apply committed entries the state machine lacks."""
        st = self.state
        st.now = now
        if st.vote.committed and self.config.enable_leader_lease:
            # The vote lease is not stored: a node that followed a leader when it stopped
            # keeps refusing votes for election_timeout_max after it starts, as if it just
            # heard from it; lease reads rely on it (raftx.engine.reads).
            st.leader_seen_at = now
        st.reset_election_timer()
        log_ops.maybe_apply(st, self.output)
        if (self.config.enable_leader_restore and st.vote.committed and st.vote.node_id == self.id
                and st.is_voter()):
            logger.info("node %s restores its leadership of term %s", self.id, st.vote.term)
            election.lead(st, self.roles, self.output, st.vote)  # Config.enable_leader_restore (openraft)
        return self.output.take()

    def step(self, event: ev.Event) -> list[Command]:
        """Handle one event; return the commands to carry out, in order."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"not an engine event: {event!r}")
        handler(event)
        return self.output.take()

    def take_output(self) -> list[Command]:
        return self.output.take()

    # -- queries (the engine's read-only surface for metrics, tests and invariants) ---------

    @property
    def vote(self) -> Vote:
        return self.state.vote

    @property
    def log(self) -> LogView:
        return self.state.log

    @property
    def committed(self) -> LogId | None:
        return self.state.committed

    @property
    def applied(self) -> LogId | None:
        return self.state.applied

    @property
    def snapshot(self) -> SnapshotMeta | None:
        return self.state.snapshot

    @property
    def membership(self) -> MembershipState:
        return self.state.membership

    @property
    def io(self) -> IOProgress:
        return self.state.io

    @property
    def responders(self) -> ResponderQueue:
        return self.state.responders

    @property
    def refusals(self) -> RefusalCounters:
        return self.state.refusals

    @property
    def log_reversions(self) -> int:
        return self.state.log_reversions

    @property
    def now(self) -> int:
        return self.state.now

    @property
    def election_deadline(self) -> int:
        """When the election timer fires (ms); randomized per §5.2."""
        return self.state.timer.deadline

    @property
    def leader_seen_at(self) -> int | None:
        return self.state.leader_seen_at

    @property
    def leader_committed(self) -> int:
        return self.state.leader_committed

    @property
    def server_state(self) -> ServerState:
        return self.roles.server_state

    @property
    def leader(self) -> LeaderState | None:
        return self.roles.leader

    @property
    def candidate(self) -> CandidateState | None:
        return self.roles.candidate

    @property
    def next_heartbeat(self) -> int:
        """A leader's next heartbeat time (ms); 0 when not leading."""
        leader = self.roles.leader
        return 0 if leader is None else leader.next_heartbeat

    @property
    def current_leader(self) -> int | None:
        """The leader this node knows of (its committed vote's node), if any."""
        return self.state.current_leader

    @property
    def is_leader(self) -> bool:
        return self.roles.leader is not None

    @property
    def last_log_id(self) -> LogId | None:
        return self.state.log.last_log_id

    def is_voter(self) -> bool:
        return self.state.is_voter()

    def forward_to_leader(self) -> ForwardToLeader:
        """The error for an API call that needs the leader (openraft ``ForwardToLeader``)."""
        return self.state.forward_to_leader()

    # -- events ------------------------------------------------------------------------------

    def _as_leader(self, responder: Any, handler: Callable[..., None], *args: Any) -> None:
        """Run a leader-only API handler with the leader's state, or answer ForwardToLeader."""
        leader = self.roles.leader
        if leader is None:
            self.output.respond(responder, self.state.forward_to_leader())
            return
        handler(self.state, leader, self.output, *args)

    def _on_tick(self, event: ev.Tick) -> None:
        st, roles, out = self.state, self.roles, self.output
        if event.now > st.now:
            st.now = event.now
        if not self.enable_tick:
            return
        leader = roles.leader
        if leader is not None:
            reads.expire_pending_reads(st, leader, out)
            transfer.expire_transfer(st, leader)
            membership.step_down_if_removed(st, roles, out)
            if roles.leader is None:
                return
            if self.enable_heartbeat and st.now >= leader.next_heartbeat:
                sending.broadcast_heartbeat(st, leader, out)
            return
        if self.enable_elect and st.now >= st.timer.deadline:
            if st.is_voter():
                election.elect(st, roles, out, pre_vote=self.enable_pre_vote)
            else:
                st.reset_election_timer()

    def _on_io_flushed(self, event: ev.IOFlushed) -> None:
        st = self.state
        if not st.io.flush(event.io_id):
            return
        for io_id in [i for i in st.installing if i <= event.io_id]:
            last = st.installing.pop(io_id)
            if last is not None and (st.applied is None or st.applied < last):
                st.applied = last
        if self.roles.leader is not None:
            replication.on_local_flushed(st, self.roles, self.output)

    def _on_replication_failed(self, event: ev.ReplicationFailed) -> None:
        leader = self.roles.leader
        if leader is not None:
            replication.handle_replication_failed(leader, event.target, event.send_id)

    def _on_transfer_leader_requested(self, event: ev.TransferLeaderRequested) -> None:
        if transfer.handle_transfer_leader(self.state, self.output, event.req, event.responder, event.sender):
            election.elect(self.state, self.roles, self.output, pre_vote=False)

    def _on_initialize(self, event: ev.Initialize) -> None:
        if membership.initialize(self.state, self.roles, self.output, event.membership, event.responder):
            election.elect(self.state, self.roles, self.output, pre_vote=False)

    def _on_trigger_heartbeat(self, event: ev.TriggerHeartbeat) -> None:
        leader = self.roles.leader
        if leader is not None:
            sending.broadcast_heartbeat(self.state, leader, self.output)

    def _on_trigger_transfer_leader(self, event: ev.TriggerTransferLeader) -> None:
        leader = self.roles.leader
        if leader is not None:
            transfer.trigger_transfer_leader(self.state, leader, self.output, event.to)

    def _on_runtime_config(self, event: ev.SetRuntimeConfig) -> None:
        if event.tick is not None:
            self.enable_tick = event.tick
        if event.heartbeat is not None:
            self.enable_heartbeat = event.heartbeat
        if event.elect is not None:
            self.enable_elect = event.elect
            if event.elect:
                self.state.reset_election_timer()
        if event.pre_vote is not None:
            self.enable_pre_vote = event.pre_vote

    def __repr__(self) -> str:
        st = self.state
        return (
            f"Engine(id={self.id}, state={self.roles.server_state.value}, vote={st.vote!r}, "
            f"last={st.log.last_log_id!r}, committed={st.committed!r})"
        )
