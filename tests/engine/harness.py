"""A small deterministic harness for `raftx.engine`: N engines, in-memory stores, a
message queue, a manual clock. Used by the engine tests and reusable by the scenario
and simulation suites.

* `MemNode` carries out an engine's commands against an in-memory log / vote /
  state machine. With ``auto_flush=True`` every storage write becomes durable at
  once (the `IOFlushed` event follows immediately); otherwise call `MemNode.flush`.
  Commands with a ``when`` condition wait in ``pending`` until it holds.
* `Cluster` routes messages through one FIFO queue: `deliver` / `stabilize` move
  them, `isolate` / `cut` / `heal` drop them (a dropped AppendEntries or snapshot
  is reported to the sender as `ReplicationFailed`, like a failed RPC); `tick`
  advances the shared clock.
* API calls return a `Reply`, filled in when the engine responds.

Everything is synchronous and seeded: the same calls give the same run.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from raftx.config import Config
from raftx.engine import Engine, RestoredState, each_responder
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    EntryList,
    PayloadBatch,
    SnapshotResponse,
    VoteResponse,
)
from raftx.types import ClientWriteResponse, Entry, LogId, Membership, ServerState, SnapshotMeta, StoredMembership, Vote

__all__ = ["Cluster", "MemNode", "Msg", "Reply", "elect", "flush", "make_engine", "of_type", "make_config"]


def make_config(**kw: Any) -> Config:
    """A config for tests: 100..200 ms elections, 20 ms heartbeats, no snapshots."""
    base: dict[str, Any] = dict(
        election_timeout_min=100, election_timeout_max=200, heartbeat_interval=20,
        max_payload_entries=50,
    )
    from raftx.config import SnapshotPolicy

    base.setdefault("snapshot_policy", SnapshotPolicy.Never())
    base.update(kw)
    return Config(**base).validate()


class Reply:
    """The answer to an API call: ``done``, ``value`` (an exception on failure)."""

    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None

    def set(self, value: Any) -> None:
        assert not self.done, f"responded twice: {self.value!r} then {value!r}"
        self.done = True
        self.value = value

    @property
    def ok(self) -> bool:
        return self.done and not isinstance(self.value, BaseException)

    def __repr__(self) -> str:
        return f"Reply({self.value!r})" if self.done else "Reply(<pending>)"


@dataclass(frozen=True)
class RpcToken:
    """Responder for an RPC: who asked, what, and the sender's context."""

    kind: str  # "vote" | "append" | "snapshot"
    src: int
    context: Any


@dataclass
class Msg:
    """One message on the simulated network."""

    src: int
    dst: int
    kind: str  # vote_req, vote_resp, append_req, append_resp, snap_req, snap_resp, transfer
    body: Any
    context: Any = None

    def is_request(self) -> bool:
        return self.kind in ("vote_req", "append_req", "snap_req", "transfer")


class MemNode:
    """One engine plus in-memory storage and state machine that obey its commands."""

    def __init__(self, node_id: int, config: Config, seed: int, send: Callable[[Msg], None], auto_flush: bool = True,
                 entries: Iterable[Entry] = (), vote: Vote | None = None, voters: Iterable[int] | None = None) -> None:
        self.id = node_id
        entries = list(entries)
        restored = None
        if entries or vote is not None or voters is not None:
            restored = RestoredState(
                vote=vote or Vote(),
                log_runs=EntryList(entries).term_runs(),
                last_index=entries[-1].log_id.index if entries else -1,
                memberships=[StoredMembership(None, Membership.new(set(voters)))] if voters is not None else [],
            )
        self.engine = Engine(node_id, config, random.Random(seed), restored)
        self.send = send
        self.auto_flush = auto_flush
        # durable state (in memory)
        self.vote = vote or Vote()
        self.entries: dict[int, Entry] = {e.log_id.index: e for e in entries}
        self.committed: LogId | None = None
        self.snapshot: SnapshotMeta | None = None
        self.snapshot_data: list[Entry] = []
        self.received_snapshot: dict[Any, list[Entry]] = {}
        # state machine: applied normal entries in order
        self.sm: list[Entry] = []
        self.applied_index = -1
        # runtime progress
        self.submitted_io = -1
        self.flushed_io = -1
        self.pending: list[cmd.Command] = []
        self.inbox: deque[ev.Event] = deque()
        self.commands: list[cmd.Command] = []  # every command, for inspection
        self.down = False

    # -- feeding the engine -------------------------------------------------------------

    def handle(self, event: ev.Event) -> list[cmd.Command]:
        """Step ``event`` and everything it causes locally; return the commands emitted."""
        self.inbox.append(event)
        out: list[cmd.Command] = []
        while self.inbox:
            e = self.inbox.popleft()
            if isinstance(e, ev.IOFlushed):
                self.flushed_io = max(self.flushed_io, e.io_id)
            cmds = self.engine.step(e)
            out.extend(cmds)
            self.commands.extend(cmds)
            for c in cmds:
                self._run_or_defer(c)
            if isinstance(e, (ev.IOFlushed, ev.Applied)):
                self._release()
        return out

    def start(self, now: int) -> None:
        for c in self.engine.startup(now):
            self._run_or_defer(c)

    def flush(self) -> list[cmd.Command]:
        """Make every submitted write durable (when ``auto_flush`` is off)."""
        return self.handle(ev.IOFlushed(self.submitted_io))

    def _release(self) -> None:
        ready = [c for c in self.pending if c.when.holds(self.flushed_io, self.applied_index)]  # type: ignore[attr-defined]
        self.pending = [c for c in self.pending if c not in ready]
        for c in ready:
            self._run(c)

    def _run_or_defer(self, c: cmd.Command) -> None:
        when = getattr(c, "when", None)
        if when is not None and not when.holds(self.flushed_io, self.applied_index):
            self.pending.append(c)
        else:
            self._run(c)

    # -- carrying out commands ---------------------------------------------------------------

    def _io(self, io_id: int) -> None:
        assert io_id == self.submitted_io + 1, f"io ids out of order: {io_id} after {self.submitted_io}"
        self.submitted_io = io_id
        if self.auto_flush:
            self.inbox.append(ev.IOFlushed(io_id))

    def _run(self, c: cmd.Command) -> None:
        if isinstance(c, cmd.SaveVote):
            self.vote = c.vote
            self._io(c.io_id)
        elif isinstance(c, cmd.AppendToLog):
            batch = c.entries
            items = batch.entries() if isinstance(batch, PayloadBatch) else list(batch)  # type: ignore[call-overload]
            for e in items:
                assert e.log_id.index == self.last_index() + 1 or not self.entries, (e, self.last_index())
                self.entries[e.log_id.index] = e
            self._io(c.io_id)
        elif isinstance(c, cmd.TruncateLog):
            keep = -1 if c.after is None else c.after.index
            for i in [i for i in self.entries if i > keep]:
                del self.entries[i]
            self._io(c.io_id)
        elif isinstance(c, cmd.PurgeLog):
            for i in [i for i in self.entries if i <= c.upto.index]:
                del self.entries[i]
            self._io(c.io_id)
        elif isinstance(c, cmd.InstallSnapshot):
            data = self.received_snapshot.pop(c.meta.last_log_id, [])
            self.sm = list(data)
            self.snapshot, self.snapshot_data = c.meta, list(data)
            self.applied_index = c.meta.last_log_id.index if c.meta.last_log_id else -1
            self._io(c.io_id)
        elif isinstance(c, cmd.SaveCommitted):
            self.committed = c.committed
        elif isinstance(c, cmd.Apply):
            self._apply(c)
        elif isinstance(c, cmd.BuildSnapshot):
            self._build_snapshot()
        elif isinstance(c, cmd.SendVote):
            self.send(Msg(self.id, c.target, "vote_req", c.req, c.req.vote))
        elif isinstance(c, cmd.Replicate):
            entries = [self.entries[i] for i in range(c.first_index, c.last_index + 1)]
            req = AppendEntriesRequest(c.vote, c.prev_log_id, EntryList(entries), c.leader_commit)
            self.send(Msg(self.id, c.target, "append_req", req, c.send_id))
        elif isinstance(c, cmd.SendSnapshot):
            assert self.snapshot is not None
            self.send(Msg(self.id, c.target, "snap_req", (c.vote, self.snapshot, list(self.snapshot_data)), c.send_id))
        elif isinstance(c, cmd.SendTransferLeader):
            self.send(Msg(self.id, c.target, "transfer", c.req))
        elif isinstance(c, cmd.Respond):
            self._respond(c.responder, c.value)
        else:
            raise AssertionError(f"unknown command {c!r}")

    def _respond(self, responder: Any, value: Any) -> None:
        if isinstance(responder, Reply):
            responder.set(value)
        elif isinstance(responder, RpcToken):
            kind = {"vote": "vote_resp", "append": "append_resp", "snapshot": "snap_resp"}[responder.kind]
            self.send(Msg(self.id, responder.src, kind, value, responder.context))
        else:
            raise AssertionError(f"unknown responder {responder!r}")

    def _apply(self, c: cmd.Apply) -> None:
        assert c.first_index == self.applied_index + 1, (c, self.applied_index)
        responders = dict(each_responder(c.responders))
        for i in range(c.first_index, c.last.index + 1):
            e = self.entries[i]
            if e.kind.name == "NORMAL":
                self.sm.append(e)
            if i in responders:
                m = e.get_membership()
                responders[i].set(ClientWriteResponse(e.log_id, len(self.sm), m))
        self.applied_index = c.last.index
        self.inbox.append(ev.Applied(c.last))

    def _build_snapshot(self) -> None:
        idx = self.applied_index
        if idx < 0:
            return
        last = self.entries[idx].log_id if idx in self.entries else (self.snapshot.last_log_id if self.snapshot else None)
        mem = StoredMembership()
        snap = self.snapshot
        if snap is not None:
            mem = snap.last_membership
        for i in sorted(self.entries):
            if i <= idx and self.entries[i].get_membership() is not None:
                mem = StoredMembership(self.entries[i].log_id, self.entries[i].payload)  # type: ignore[arg-type]
        meta = SnapshotMeta(last, mem, f"snap-{self.id}-{idx}")
        self.snapshot, self.snapshot_data = meta, list(self.sm)
        self.inbox.append(ev.SnapshotBuilt(meta))

    # -- receiving messages ----------------------------------------------------------------------

    def receive(self, m: Msg) -> None:
        if m.kind == "vote_req":
            self.handle(ev.VoteRequested(m.body, RpcToken("vote", m.src, m.context)))
        elif m.kind == "vote_resp":
            if isinstance(m.body, VoteResponse):
                self.handle(ev.VoteResponded(m.src, m.context, m.body))
        elif m.kind == "append_req":
            self.handle(ev.AppendRequested(m.body, RpcToken("append", m.src, m.context)))
        elif m.kind == "append_resp":
            if isinstance(m.body, AppendEntriesResponse):
                self.handle(ev.AppendResponded(m.src, m.context, m.body))
            else:
                self.handle(ev.ReplicationFailed(m.src, m.context))
        elif m.kind == "snap_req":
            vote, meta, data = m.body
            self.received_snapshot[meta.last_log_id] = data
            self.handle(ev.SnapshotReceived(vote, meta, RpcToken("snapshot", m.src, m.context)))
        elif m.kind == "snap_resp":
            if isinstance(m.body, SnapshotResponse):
                self.handle(ev.SnapshotResponded(m.src, m.context, m.body))
        elif m.kind == "transfer":
            self.handle(ev.TransferLeaderRequested(m.body))
        else:
            raise AssertionError(m)

    # -- inspection -----------------------------------------------------------------------------------

    def last_index(self) -> int:
        if self.entries:
            return max(self.entries)
        return self.snapshot.last_log_id.index if self.snapshot and self.snapshot.last_log_id else -1

    def log_ids(self) -> list[LogId]:
        return [self.entries[i].log_id for i in sorted(self.entries)]

    def payloads(self) -> list[Any]:
        return [e.payload for e in self.sm]

    @property
    def state(self) -> ServerState:
        return self.engine.server_state


class Cluster:
    """N `MemNode`s on one simulated network with a manual clock."""

    def __init__(self, ids: Iterable[int] = (1, 2, 3), config: Config | None = None, seed: int = 0,
                 auto_flush: bool = True) -> None:
        self.config = config or make_config()
        self.now = 0
        self.queue: deque[Msg] = deque()
        self.cut_links: set[tuple[int, int]] = set()
        self.nodes: dict[int, MemNode] = {}
        for i in ids:
            self.add_node(i, seed, auto_flush)

    def add_node(self, node_id: int, seed: int = 0, auto_flush: bool = True, *, terms: Iterable[int] | None = None,
                 vote: Vote | None = None, voters: Iterable[int] | None = None) -> MemNode:
        """Add a node; ``terms`` (entry terms from index 0) / ``vote`` / ``voters`` restore
        a node that already has a log (entries ``b"<index>"``)."""
        entries = [Entry(LogId(t, i), f"{i}".encode()) for i, t in enumerate(terms or ())]
        node = MemNode(node_id, self.config, seed * 1000 + node_id, self._send, auto_flush, entries, vote, voters)
        node.start(self.now)
        self.nodes[node_id] = node
        return node

    def _send(self, m: Msg) -> None:
        self.queue.append(m)

    def __getitem__(self, node_id: int) -> MemNode:
        return self.nodes[node_id]

    # -- faults ------------------------------------------------------------------------------------

    def isolate(self, node_id: int) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut(node_id, other)

    def cut(self, a: int, b: int) -> None:
        self.cut_links |= {(a, b), (b, a)}

    def heal(self) -> None:
        self.cut_links.clear()

    # -- moving messages and time ------------------------------------------------------------------

    def _drop(self, m: Msg) -> None:
        """A lost AppendEntries / snapshot request or answer is a failed RPC to the leader."""
        if m.kind in ("append_req", "snap_req"):
            leader, target = m.src, m.dst
        elif m.kind in ("append_resp", "snap_resp"):
            leader, target = m.dst, m.src
        else:
            return
        if leader in self.nodes and not self.nodes[leader].down:
            self.nodes[leader].handle(ev.ReplicationFailed(target, m.context))

    def deliver(self, pred: Callable[[Msg], bool] | None = None) -> int:
        """Deliver the messages queued now (those matching ``pred``); return how many."""
        batch, self.queue = list(self.queue), deque()
        keep: list[Msg] = []
        n = 0
        for m in batch:
            if pred is not None and not pred(m):
                keep.append(m)
                continue
            dst = self.nodes.get(m.dst)
            if (m.src, m.dst) in self.cut_links or dst is None or dst.down:
                self._drop(m)
                continue
            dst.receive(m)
            n += 1
        self.queue.extendleft(reversed(keep))
        return n

    def drop(self, pred: Callable[[Msg], bool] | None = None) -> int:
        """Drop the queued messages matching ``pred`` (all if None)."""
        batch, self.queue = list(self.queue), deque()
        n = 0
        for m in batch:
            if pred is None or pred(m):
                self._drop(m)
                n += 1
            else:
                self.queue.append(m)
        return n

    def stabilize(self, max_rounds: int = 1000) -> None:
        """Deliver until no message is left (bounded)."""
        for _ in range(max_rounds):
            if not self.queue:
                return
            self.deliver()
        raise AssertionError("cluster did not stabilize")

    def tick(self, ms: int, nodes: Iterable[int] | None = None) -> None:
        """Advance the clock by ``ms`` and tick the nodes (all up nodes by default)."""
        self.now += ms
        for i in list(nodes if nodes is not None else self.nodes):
            if not self.nodes[i].down:
                self.nodes[i].handle(ev.Tick(self.now))

    def run_for(self, ms: int, step: int = 10) -> None:
        """Tick every ``step`` ms for ``ms`` ms, stabilizing the network after each tick."""
        for _ in range(ms // step):
            self.tick(step)
            self.stabilize()

    # -- API helpers ------------------------------------------------------------------------------

    def call(self, node_id: int, make: Callable[[Reply], ev.Event]) -> Reply:
        r = Reply()
        self.nodes[node_id].handle(make(r))
        return r

    def initialize(self, node_id: int | None = None, voters: Iterable[int] | None = None) -> Reply:
        node_id = min(self.nodes) if node_id is None else node_id
        m = Membership.new(set(voters if voters is not None else self.nodes))
        r = self.call(node_id, lambda r: ev.Initialize(m, r))
        self.stabilize()
        return r

    def write(self, node_id: int, *payloads: bytes) -> list[Reply]:
        replies = [Reply() for _ in payloads]
        self.nodes[node_id].handle(ev.ClientWrite(list(payloads), replies))
        return replies

    def leader(self) -> int | None:
        """The id of the (unique, highest-term) leader, if any."""
        leaders = [n for n in self.nodes.values() if n.engine.is_leader and not n.down]
        if not leaders:
            return None
        return max(leaders, key=lambda n: n.engine.vote.term).id

    def check_log_matching(self) -> None:
        """Log Matching (§5.3): same id at an index => identical prefixes; committed agree."""
        nodes = [n for n in self.nodes.values()]
        for a in nodes:
            for b in nodes:
                common = set(a.entries) & set(b.entries)
                for i in sorted(common, reverse=True):
                    if a.entries[i].log_id == b.entries[i].log_id:
                        for j in common:
                            if j <= i:
                                assert a.entries[j] == b.entries[j], (a.id, b.id, j)
                        break
        applied = [n.sm for n in nodes]
        for x in applied:
            for y in applied:
                k = min(len(x), len(y))
                assert x[:k] == y[:k], "state machines diverged"


# -- single-engine helpers (openraft engine-test style) ---------------------------------------------


def make_engine(
    node_id: int = 1,
    voters: Iterable[int] = (1, 2, 3),
    terms: Iterable[int] = (),
    vote: Vote | None = None,
    committed: int | None = None,
    seed: int = 0,
    learners: Iterable[int] = (),
    **config: Any,
) -> Engine:
    """An engine restored with a log of entry ``terms`` (index 0 on), ``vote`` and a
    commit index (already applied); lease off unless asked (paper semantics)."""
    terms = list(terms)
    config.setdefault("enable_leader_lease", False)
    committed_id = None if committed is None else LogId(terms[committed], committed)
    restored = RestoredState(
        vote=vote or Vote(max(terms, default=0)),
        log_runs=EntryList([Entry(LogId(t, i)) for i, t in enumerate(terms)]).term_runs(),
        last_index=len(terms) - 1,
        committed=committed_id,
        applied=committed_id,
        memberships=[StoredMembership(None, Membership.new(set(voters), learners))],
    )
    eng = Engine(node_id, make_config(**config), random.Random(seed), restored)
    eng.startup(0)
    return eng


def flush(eng: Engine) -> list[cmd.Command]:
    """Report every storage write durable."""
    return eng.step(ev.IOFlushed(eng.io.submitted))


def elect(eng: Engine, granters: Iterable[int] | None = None) -> list[cmd.Command]:
    """Make ``eng`` campaign and win with grants from ``granters`` (default: a majority)."""
    eng.step(ev.TriggerElect())
    flush(eng)
    cand = eng.candidate
    out: list[cmd.Command] = []
    if cand is None:
        return out
    voters = sorted(eng.membership.effective.membership.voter_ids() - {eng.id})
    if granters is None:
        granters = voters[: (len(voters) + 1) // 2]  # with our own vote: a majority
    for g in granters:
        out += eng.step(ev.VoteResponded(g, cand.vote, VoteResponse(cand.vote, True, None)))
    return out


def of_type(cmds: Iterable[cmd.Command], kind: type) -> list[Any]:
    """The commands of one class, in order."""
    return [c for c in cmds if isinstance(c, kind)]


# -- scenario helpers (tests/engine/test_scenarios_*.py) ---------------------------------------------


def restored_cluster(logs: dict[int, Iterable[int]], votes: dict[int, Vote] | None = None,
                     voters: Iterable[int] | None = None, **config: Any) -> Cluster:
    """A cluster whose node ``i`` starts with a log of entry terms ``logs[i]`` (index 0
    on), vote ``votes[i]`` (default: the term of its last entry) and ``voters`` (default:
    every node) as its membership; ``config`` overrides `make_config`."""
    cluster = Cluster((), make_config(**config))
    members = sorted(voters if voters is not None else logs)
    for node_id, terms in logs.items():
        terms = list(terms)
        vote = (votes or {}).get(node_id, Vote(max(terms, default=0)))
        cluster.add_node(node_id, terms=terms, vote=vote, voters=members)
    return cluster


def append_request(leader: Engine, c: cmd.Replicate) -> AppendEntriesRequest:
    """The AppendEntries a runtime would send for ``c``, built from ``leader``'s log view
    (blank entries with the terms the leader holds)."""
    entries = [Entry(leader.log.log_id_at(i)) for i in range(c.first_index, c.last_index + 1)]  # type: ignore[arg-type]
    return AppendEntriesRequest(c.vote, c.prev_log_id, EntryList(entries), c.leader_commit)


def responses(cmds: Iterable[cmd.Command]) -> list[Any]:
    """The values of the `Respond` commands, in order."""
    return [c.value for c in cmds if isinstance(c, cmd.Respond)]


def booted_cluster(n: int = 3, **config: Any) -> Cluster:
    """``n`` voters ``1..n`` that all hold the initial membership entry (index 0, term 0)
    and have not voted; nothing elected yet. ``config`` overrides `make_config`."""
    return restored_cluster({i: [0] for i in range(1, n + 1)}, {i: Vote(0) for i in range(1, n + 1)}, **config)


def running_cluster(**config: Any) -> Cluster:
    """Voters 1, 2, 3 initialized from node 1 and run 40 ms: node 1 leads.
    ``config`` overrides `make_config`."""
    c = Cluster(config=make_config(**config))
    c.initialize(1)
    c.run_for(40)
    assert c.leader() == 1
    return c


def campaign(cluster: Cluster, node_id: int, pre_vote: bool = False) -> None:
    """Force an election timeout on ``node_id`` (its vote requests are queued, not delivered)."""
    cluster[node_id].handle(ev.TriggerElect(pre_vote))


def elect_without_appends(cluster: Cluster, node_id: int, max_rounds: int = 20) -> None:
    """`campaign` on ``node_id`` and deliver everything but AppendEntries requests
    (dropped) until nothing is queued: ``node_id`` wins without replicating."""
    campaign(cluster, node_id)
    for _ in range(max_rounds):
        cluster.drop(lambda m: m.kind == "append_req")
        if not cluster.queue:
            break
        cluster.deliver()
