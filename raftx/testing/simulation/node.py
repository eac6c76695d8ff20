"""The node driver: one engine, carried out against a simulated disk and network.

`SimNode` does what the runtime (`raftx.runtime`) does, with simulated I/O:

* storage commands go to the `SimDisk` in emission order; an fsync is scheduled a
  little later and, when it returns, reported as `IOFlushed`; a failed fsync stops
  the node (``Fatal``, DESIGN rule 7);
* a command with a ``when`` condition waits until the flushed io id / applied
  index satisfies it (persist before acknowledge); later commands do not wait;
* `Replicate` / `SendVote` / `SendSnapshot` become RPCs over the `SimNetwork`;
  an RPC completes once, with its answer or, after ``rpc_timeout`` ms, as a
  failure (`ReplicationFailed` for AppendEntries and snapshots);
* `Apply` applies committed entries to the `KVStateMachine` and resolves client
  responders; `BuildSnapshot` captures the state and reports `SnapshotBuilt`
  after a short delay;
* `crash` drops everything in memory; `boot` rebuilds the engine from the durable
  disk (vote, log, commit index, snapshot), as the runtime does at start-up.

Every event handled is one *step*; after it the simulation checks the invariants.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from raftx.config import Config
from raftx.engine import Engine, RestoredState, each_responder
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import StorageError
from raftx.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    EntryList,
    PayloadBatch,
    SnapshotResponse,
    VoteResponse,
)
from raftx.testing.simulation.invariants import InvariantViolation
from raftx.testing.simulation.simdisk import SimDisk
from raftx.testing.simulation.simnet import Msg
from raftx.testing.simulation.statemachine import KVStateMachine
from raftx.types import ClientWriteResponse, Entry, Membership, StoredMembership, Vote

if TYPE_CHECKING:
    from raftx.testing.simulation.runner import Simulation

__all__ = ["ClientResponder", "RpcResponder", "SimNode"]

#: How many received snapshots a node keeps while the engine decides on them.
_MAX_RECEIVED_SNAPSHOTS = 4


@dataclass(frozen=True, slots=True)
class RpcResponder:
    """Responder of an RPC this node serves: answer ``src``'s request ``rid``."""

    kind: str
    src: int
    rid: int


@dataclass(frozen=True, slots=True)
class ClientResponder:
    """Responder of an API call: ``callback(value)`` (a value or an exception)."""

    callback: Callable[[Any], None]


class SimNode:
    """One simulated raftx node; see the module docstring."""

    def __init__(self, sim: Simulation, node_id: int, config: Config, disk: SimDisk) -> None:
        self.sim = sim
        self.id = node_id
        self.config = config
        self.disk = disk
        self.up = False
        self.fatal = False
        self.incarnation = 0
        self.engine: Engine | None = None
        self.sm = KVStateMachine()
        #: Crash after carrying out this many more commands (None: no crash armed).
        self.crash_after: int | None = None
        self._reset_volatile()

    def _reset_volatile(self) -> None:
        self.flushed_io = -1
        self.pending: list[Any] = []
        self.inbox: deque[ev.Event] = deque()
        self.outstanding: dict[int, tuple[str, int, Any]] = {}
        self.received: dict[Any, Any] = {}
        self.read_waiters: list[tuple[int, Callable[[], None]]] = []
        self.fsync_scheduled = False

    # -- life cycle -------------------------------------------------------------------

    def restored_state(self) -> RestoredState:
        """What the runtime reads from the stores at start-up (the durable disk)."""
        d = self.disk.durable
        snap = d.snapshot
        snap_last = None if snap is None else snap.last_log_id
        committed = d.committed
        if snap_last is not None and (committed is None or committed < snap_last):
            committed = snap_last
        c_idx = -1 if committed is None else committed.index
        mems = [StoredMembership(e.log_id, e.payload) for e in d.entries if isinstance(e.payload, Membership)]
        below = [k for k, m in enumerate(mems) if m.log_id is not None and m.log_id.index <= c_idx]
        if below:
            mems = mems[below[-1]:]
        elif snap is not None and snap.last_membership.log_id is not None:
            mems = [snap.last_membership, *mems]
        return RestoredState(
            vote=d.vote,
            log_runs=EntryList(d.entries).term_runs(),
            last_index=d.last_index,
            purged=d.purged,
            committed=committed,
            applied=snap_last,
            snapshot=snap,
            memberships=mems,
        )

    def boot(self, flushed_vote: Vote | None = None, snapshot_index: int = -1) -> None:
        """Start (or restart) from the durable disk."""
        sim = self.sim
        self._reset_volatile()
        self.disk.cache = self.disk.durable.copy()
        self.sm.restore(self.disk.durable.snapshot, self.disk.durable.snapshot_data)
        seed = (sim.seed * 1_000_003 + self.id * 7919 + self.incarnation) & 0xFFFFFFFF
        self.engine = Engine(self.id, self.config, random.Random(seed), self.restored_state())
        self.up, self.fatal = True, False
        sim.invariants.on_start(self.id, self.engine, flushed_vote, snapshot_index)
        sim.trace(f"boot {self.id} inc={self.incarnation} {self.engine!r}")
        self._run_all(self.engine.startup(sim.scheduler.now))
        self._drain()
        if self.up:
            sim.after_step(self)
            inc = self.incarnation
            sim.scheduler.after(sim.rng.randint(1, sim.tick_ms), lambda: self._tick(inc))

    def crash(self, why: str) -> None:
        """Lose everything in memory and the writes the disk did not keep."""
        if not self.up:
            return
        eng = self.engine
        assert eng is not None
        self.last_flushed_vote = eng.io.flushed_vote
        self.up = False
        self.incarnation += 1
        self.crash_after = None
        note = self.disk.crash()
        self.engine = None
        self._reset_volatile()
        self.sim.invariants.forget(self.id)
        self.sim.trace(f"crash {self.id} ({why}; {note})")

    def restart(self) -> None:
        """Boot again after a crash, checking the durable state survived."""
        if self.up:
            return
        self.boot(getattr(self, "last_flushed_vote", None), self.disk.durable.snapshot_index())

    def _tick(self, inc: int) -> None:
        if not self.up or inc != self.incarnation:
            return
        self.handle(ev.Tick(self.sim.scheduler.now))
        if self.up and inc == self.incarnation:
            self.sim.scheduler.after(self.sim.tick_ms, lambda: self._tick(inc))

    # -- stepping ---------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        """One step: ``event`` and what it causes locally, then the invariants."""
        if not self.up:
            return
        self.sim.trace(f"{self.id} <- {_describe(event)}")
        self.inbox.append(event)
        self._drain()
        if self.up:
            self.sim.after_step(self)

    def _drain(self) -> None:
        while self.inbox and self.up:
            e = self.inbox.popleft()
            if isinstance(e, ev.IOFlushed):
                self.flushed_io = max(self.flushed_io, e.io_id)
            assert self.engine is not None
            self._run_all(self.engine.step(e))
            if self.up and isinstance(e, (ev.IOFlushed, ev.Applied)):
                self._release()

    def _run_all(self, cmds: list[cmd.Command]) -> None:
        for c in cmds:
            if not self.up:
                return
            when = getattr(c, "when", None)
            if when is not None and not when.holds(self.flushed_io, self.sm.applied_index):
                self.pending.append(c)
            else:
                self._run(c)

    def _release(self) -> None:
        ready = [c for c in self.pending if c.when.holds(self.flushed_io, self.sm.applied_index)]
        if ready:
            self.pending = [c for c in self.pending if c not in ready]
            for c in ready:
                if not self.up:
                    return
                self._run(c)

    # -- carrying out commands ------------------------------------------------------------

    def _submit(self, io_id: int | None, op: tuple[Any, ...]) -> None:
        self.disk.submit(io_id, op)
        if not self.fsync_scheduled:
            self.fsync_scheduled = True
            inc = self.incarnation
            lo, hi = self.sim.fsync_delay
            self.sim.scheduler.after(self.sim.rng.randint(lo, hi), lambda: self._fsync(inc))

    def _fsync(self, inc: int) -> None:
        if not self.up or inc != self.incarnation:
            return
        self.fsync_scheduled = False
        try:
            last = self.disk.sync()
        except StorageError as exc:
            self.crash(f"Fatal: {exc}")
            self.fatal = True
            return
        if last is not None:
            self.handle(ev.IOFlushed(last))

    def _run(self, c: cmd.Command) -> None:
        if self.crash_after is not None:
            self.crash_after -= 1
            if self.crash_after < 0:
                self.crash(f"mid-step, before {type(c).__name__}")
                return
        eng = self.engine
        assert eng is not None
        if isinstance(c, cmd.SaveVote):
            self._submit(c.io_id, ("vote", c.vote))
        elif isinstance(c, cmd.AppendToLog):
            entries = _entries(c.entries)
            self.sim.invariants.on_append(self.id, self.disk.cache.last_log_id, entries)
            self._submit(c.io_id, ("append", entries))
        elif isinstance(c, cmd.TruncateLog):
            if eng.is_leader:
                raise InvariantViolation("leader append-only", f"leader {self.id} truncates after {c.after}")
            self._submit(c.io_id, ("truncate", c.after))
        elif isinstance(c, cmd.PurgeLog):
            self._submit(c.io_id, ("purge", c.upto))
        elif isinstance(c, cmd.InstallSnapshot):
            data = self.received.pop((c.meta.snapshot_id, c.meta.last_log_id), None)
            if data is None:
                raise AssertionError(f"node {self.id}: install of a snapshot never received: {c.meta}")
            self._submit(c.io_id, ("install", c.meta, data))
            self.sm.restore(c.meta, data)
        elif isinstance(c, cmd.SaveCommitted):
            self._submit(None, ("committed", c.committed))
        elif isinstance(c, cmd.Apply):
            self._apply(c)
        elif isinstance(c, cmd.BuildSnapshot):
            self._build_snapshot()
        elif isinstance(c, cmd.SendVote):
            self._rpc("vote", c.target, c.req, c.req.vote)
        elif isinstance(c, cmd.Replicate):
            sending = self.disk.cache.read(c.first_index, c.last_index)
            if sending is None:
                self.inbox.append(ev.ReplicationFailed(c.target, c.send_id))
                return
            req = AppendEntriesRequest(c.vote, c.prev_log_id, EntryList(sending), c.leader_commit)
            self._rpc("append", c.target, req, c.send_id)
        elif isinstance(c, cmd.SendSnapshot):
            d = self.disk.cache
            if d.snapshot is None:
                self.inbox.append(ev.ReplicationFailed(c.target, c.send_id))
                return
            self._rpc("snapshot", c.target, (c.vote, d.snapshot, d.snapshot_data), c.send_id)
        elif isinstance(c, cmd.SendTransferLeader):
            self.sim.net.send(Msg(self.id, c.target, "transfer", c.req))
        elif isinstance(c, cmd.Respond):
            self._respond(c.responder, c.value)
        else:
            raise AssertionError(f"unknown command {c!r}")

    def _apply(self, c: cmd.Apply) -> None:
        eng = self.engine
        assert eng is not None
        if c.first_index != self.sm.applied_index + 1:
            raise InvariantViolation("state machine safety",
                                     f"node {self.id} applies from {c.first_index}, applied {self.sm.applied}")
        entries = self.disk.cache.read(c.first_index, c.last.index)
        if entries is None:
            raise InvariantViolation("state machine safety",
                                     f"node {self.id} applies {c.first_index}..{c.last} not in its log")
        responders = dict(each_responder(c.responders))
        for e in entries:
            self.sim.invariants.on_apply(self.id, eng, e)
            out = self.sm.apply(e)
            r = responders.get(e.log_id.index)
            if r is not None:
                self._respond(r, ClientWriteResponse(e.log_id, out, e.get_membership()))
                if isinstance(e.payload, bytes):
                    self.sim.on_write_acked(e)
        self.inbox.append(ev.Applied(c.last))
        if self.read_waiters:
            done = [w for w in self.read_waiters if w[0] <= self.sm.applied_index]
            self.read_waiters = [w for w in self.read_waiters if w[0] > self.sm.applied_index]
            for _, callback in done:
                callback()

    def _build_snapshot(self) -> None:
        meta, data = self.sm.snapshot(f"{self.id}-{self.incarnation}-{self.sm.applied_index}")
        inc = self.incarnation

        def built() -> None:
            if self.up and inc == self.incarnation:
                self.disk.store_snapshot(meta, data)
                self.handle(ev.SnapshotBuilt(meta))

        self.sim.scheduler.after(self.sim.rng.randint(1, 20), built)

    def _respond(self, responder: Any, value: Any) -> None:
        if isinstance(responder, RpcResponder):
            self.sim.net.send(Msg(self.id, responder.src, responder.kind + "_resp", value, responder.rid))
        elif isinstance(responder, ClientResponder):
            responder.callback(value)
        elif responder is not None:
            raise AssertionError(f"unknown responder {responder!r}")

    # -- RPCs ---------------------------------------------------------------------------

    def _rpc(self, kind: str, target: int, body: Any, context: Any) -> None:
        rid = self.sim.next_rid()
        self.outstanding[rid] = (kind, target, context)
        self.sim.net.send(Msg(self.id, target, kind, body, rid))
        inc = self.incarnation
        self.sim.scheduler.after(self.sim.rpc_timeout, lambda: self._rpc_timeout(rid, inc))

    def _rpc_timeout(self, rid: int, inc: int) -> None:
        if not self.up or inc != self.incarnation:
            return
        entry = self.outstanding.pop(rid, None)
        if entry is not None and entry[0] != "vote":
            self.handle(ev.ReplicationFailed(entry[1], entry[2]))

    def receive(self, m: Msg) -> None:
        """A message arrived from the network."""
        if not self.up:
            return
        kind = m.kind
        if kind == "vote":
            self.handle(ev.VoteRequested(m.body, RpcResponder(kind, m.src, m.rid)))
        elif kind == "append":
            self.handle(ev.AppendRequested(m.body, RpcResponder(kind, m.src, m.rid)))
        elif kind == "snapshot":
            vote, meta, data = m.body
            self.received[(meta.snapshot_id, meta.last_log_id)] = data
            while len(self.received) > _MAX_RECEIVED_SNAPSHOTS:
                del self.received[next(iter(self.received))]
            self.handle(ev.SnapshotReceived(vote, meta, RpcResponder(kind, m.src, m.rid)))
        elif kind == "transfer":
            self.handle(ev.TransferLeaderRequested(m.body))
        elif kind.endswith("_resp"):
            self._on_response(m)
        else:
            raise AssertionError(f"unknown message {m!r}")

    def _on_response(self, m: Msg) -> None:
        entry = self.outstanding.pop(m.rid, None)
        if entry is None:
            return  # timed out already, a duplicate, or meant for an earlier life
        kind, target, context = entry
        v = m.body
        if kind == "vote":
            if isinstance(v, VoteResponse):
                self.handle(ev.VoteResponded(target, context, v))
        elif kind == "append":
            ok = isinstance(v, AppendEntriesResponse)
            self.handle(ev.AppendResponded(target, context, v) if ok else ev.ReplicationFailed(target, context))
        elif isinstance(v, SnapshotResponse):
            self.handle(ev.SnapshotResponded(target, context, v))
        else:
            self.handle(ev.ReplicationFailed(target, context))

    # -- API for clients and faults -------------------------------------------------------

    def call(self, event: ev.Event) -> None:
        """An API call (client write, read index, membership change, trigger)."""
        self.handle(event)

    def when_applied(self, index: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the state machine applied ``index``."""
        if self.sm.applied_index >= index:
            callback()
        else:
            self.read_waiters.append((index, callback))


def _entries(batch: Any) -> list[Entry]:
    if isinstance(batch, PayloadBatch):
        return batch.entries()
    if isinstance(batch, EntryList):
        return list(batch.entries)
    return [Entry(batch.log_id_at(p)) for p in range(len(batch))]


def _describe(e: ev.Event) -> str:
    """A short, deterministic description of an event for the trace."""
    name = type(e).__name__
    if isinstance(e, ev.Tick):
        return f"Tick({e.now})"
    if isinstance(e, ev.IOFlushed):
        return f"IOFlushed({e.io_id})"
    if isinstance(e, ev.Applied):
        return f"Applied({e.log_id})"
    if isinstance(e, ev.AppendRequested):
        r = e.req
        n = len(r.entries) if hasattr(r.entries, "__len__") else "?"
        return f"AppendRequested(v={r.vote} prev={r.prev_log_id} n={n} commit={r.leader_commit})"
    if isinstance(e, ev.AppendResponded):
        return f"AppendResponded({e.target} #{e.send_id} {e.resp})"
    if isinstance(e, ev.VoteRequested):
        return f"VoteRequested({e.req})"
    if isinstance(e, ev.VoteResponded):
        return f"VoteResponded({e.target} {e.resp})"
    if isinstance(e, ev.ClientWrite):
        return f"ClientWrite({list(e.payloads)})"
    if isinstance(e, ev.ReplicationFailed):
        return f"ReplicationFailed({e.target} #{e.send_id})"
    if isinstance(e, ev.SnapshotReceived):
        return f"SnapshotReceived({e.vote} {e.meta.last_log_id})"
    return f"{name}"
