"""Simulated clients: unique writes and linearizable reads through the `raftx.Raft` API.

Each client is a task (outside every node's life) running one operation at a time
against the node it believes leads:

* **write** ``put(key, value)`` with a value no other operation writes, through
  `raftx.Raft.client_write`. It completes when the entry is applied. A
  `ForwardToLeader` from a node that was not leader when the write was submitted
  and whose vote did not change until the answer *certainly* did not append it
  (a node appends only as leader, and becoming leader changes its vote):
  `History.fail`. Any other error, or no answer within ``op_timeout``, leaves the
  outcome unknown: the entry may still commit, so the operation stays open (it may
  take effect any time after its call, or never) and the client continues under a
  new id.
* **every write is answered**: a write whose entry the node it was submitted to
  applied (in the same life) must have been answered — with its response, or an
  error — by the time the client gives up on it; silence then is a lost responder
  (`InvariantViolation` "unanswered write").
* **read** ``get(key)`` through `raftx.Raft.ensure_linearizable`, then the node's
  state machine; half of the reads (``lease_ratio``) ask for
  ``ReadPolicy.LEASE_READ`` (answered without a round while the leader's read
  lease holds), the others for ``ReadPolicy.READ_INDEX`` (thesis §6.4). Both are
  linearizable reads: the history records them alike and the checker holds them
  to the same key-value model, so a lease that outlives the leadership shows as
  a stale read. A read that fails or times out had no effect and is dropped.
* **local readers** (``local_readers``): one more client per node that only reads,
  always on that node, as a service next to each node reading from its local
  raftx would, half as often as the others (followers refuse at once with
  `ForwardToLeader`: no effect). When a
  leader is cut off, its local reader goes on asking it, which is where a lease
  that outlived the leadership would answer with stale data.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raftx.errors import ForwardToLeader
from raftx.testing.linearizability import History
from raftx.testing.simulation.statemachine import encode_put
from raftx.types import ReadPolicy

if TYPE_CHECKING:
    from raftx.testing.simulation.node import SimNode
    from raftx.testing.simulation.runner import Simulation

__all__ = ["ClientPool"]


@dataclass(slots=True)
class _Client:
    number: int
    #: A local reader's node (None: a client that follows the leader).
    local: int | None = None
    generation: int = 0
    seq: int = 0
    hint: int | None = None

    @property
    def name(self) -> str:
        return f"c{self.number}.{self.generation}"


class ClientPool:
    """``n`` clients (and a local reader per node) over ``keys`` keys, recording
    into ``history``."""

    def __init__(self, sim: Simulation, rng: random.Random, n: int = 3, keys: int = 3, read_ratio: float = 0.4,
                 op_timeout: int = 600, think: tuple[int, int] = (5, 40), lease_ratio: float = 0.5,
                 local_readers: bool = True) -> None:
        self.sim = sim
        self.rng = rng
        self.keys = [f"k{i}" for i in range(keys)]
        self.read_ratio = read_ratio
        self.lease_ratio = lease_ratio
        self.op_timeout = op_timeout
        self.think = think
        self.history = History()
        self.clients = [_Client(i) for i in range(n)]
        if local_readers:
            self.clients += [_Client(n + i, local=node_id) for i, node_id in enumerate(sorted(sim.nodes))]
        self.active = False
        self.acked = self.unknown = self.failed = self.reads = self.lease_reads = 0
        #: Payloads of writes waiting for an answer -> (node id, its life, when applied there).
        self.waiting: dict[bytes, list[Any]] = {}

    def start(self) -> None:
        self.active = True
        for c in self.clients:
            self.sim.spawn(self._run(c))

    def stop(self) -> None:
        """Issue no new operations (the ones in flight still finish)."""
        self.active = False

    def _pick_node(self, c: _Client) -> SimNode | None:
        nodes = self.sim.nodes
        if c.local is not None:
            return nodes[c.local] if nodes[c.local].up else None
        if c.hint is not None and c.hint in nodes and nodes[c.hint].up:
            return nodes[c.hint]
        up = [n for _, n in sorted(nodes.items()) if n.up]
        return self.rng.choice(up) if up else None

    async def _run(self, c: _Client) -> None:
        while True:
            lo, hi = self.think
            await asyncio.sleep(self.rng.randint(lo, hi) * (1 if c.local is None else 2) / 1000)
            if not self.active:
                return
            node = self._pick_node(c)
            if node is None:
                continue
            r = self.rng.random()
            if c.local is not None or r < self.read_ratio:
                await self._read(c, node)
            elif r < self.read_ratio + 0.1:
                await self._write_many(c, node, self.rng.randint(2, 4))
            else:
                await self._write(c, node)

    # -- writes ---------------------------------------------------------------------

    async def _write(self, c: _Client, node: SimNode) -> None:
        sim, h = self.sim, self.history
        raft, eng, life = node.raft, node.engine, node.life
        assert raft is not None and eng is not None
        c.seq += 1
        key = self.rng.choice(self.keys)
        value = f"{c.number}.{c.generation}.{c.seq}"
        payload = encode_put(key, value)
        op = h.invoke(c.name, ("put", key, value), time=sim.now_ms())
        was_leader, vote = eng.is_leader, eng.vote
        sim.trace(f"client {c.name} put {key}={value} via {node.id}")
        self.waiting[payload] = [node.id, life, None]
        try:
            try:
                async with asyncio.timeout(self.op_timeout / 1000):
                    resp = await raft.client_write(payload)
            except TimeoutError:
                applied_at = self.waiting[payload][2]
                if applied_at is not None and applied_at < sim.loop.real_time():
                    sim.fail("unanswered write", f"client {c.name}'s put {key}={value} was applied by node "
                             f"{node.id} at {applied_at * 1000:.3f} ms but never answered")
                raise
            finally:
                del self.waiting[payload]
        except ForwardToLeader as exc:
            if not was_leader and node.life is life and eng.vote == vote:
                h.fail(op)  # refused before it was appended
                self.failed += 1
                c.hint = exc.leader_id
            else:
                self._give_up(c, exc)
            return
        except Exception as exc:  # noqa: BLE001 - timeout, Fatal, ...: outcome unknown
            self._give_up(c, exc)
            return
        h.complete(op, None, time=sim.now_ms())
        self.acked += 1
        sim.on_write_acked(resp.log_id, payload)

    async def _write_many(self, c: _Client, node: SimNode, n: int) -> None:
        """``n`` puts in one `raftx.Raft.client_write_many` call (one outcome each)."""
        sim, h = self.sim, self.history
        raft, eng, life = node.raft, node.engine, node.life
        assert raft is not None and eng is not None
        was_leader, vote = eng.is_leader, eng.vote
        ops: list[int] = []
        payloads: list[bytes] = []
        for _ in range(n):
            c.seq += 1
            key = self.rng.choice(self.keys)
            value = f"{c.number}.{c.generation}.{c.seq}"
            payloads.append(encode_put(key, value))
            # one history client per write: the batch's writes are concurrent with each other
            ops.append(h.invoke(f"{c.name}/{len(ops)}", ("put", key, value), time=sim.now_ms()))
        sim.trace(f"client {c.name} puts {n} via {node.id}")
        try:
            async with asyncio.timeout(self.op_timeout / 1000):
                results = await raft.client_write_many(payloads)
        except Exception as exc:  # noqa: BLE001 - every outcome unknown
            self._give_up(c, exc)
            return
        refused = not was_leader and node.life is life and eng.vote == vote  # as in `_write`
        for op, payload, res in zip(ops, payloads, results):
            if isinstance(res, ForwardToLeader) and refused:
                h.fail(op)
                self.failed += 1
                c.hint = res.leader_id
            elif isinstance(res, BaseException):
                self.unknown += 1  # left open: it may still commit
            else:
                h.complete(op, None, time=sim.now_ms())
                self.acked += 1
                sim.on_write_acked(res.log_id, payload)
        if any(isinstance(res, BaseException) for res in results) and not refused:
            c.generation += 1

    def on_apply(self, node_id: int, life: Any, payload: Any) -> None:
        """Node ``node_id`` (in ``life``) applied ``payload``: its client's answer is due."""
        w = self.waiting.get(payload) if type(payload) is bytes else None
        if w is not None and w[0] == node_id and w[1] is life and w[2] is None:
            w[2] = self.sim.loop.real_time()

    def _give_up(self, c: _Client, why: BaseException) -> None:
        """The outcome is unknown: leave the operation open, continue as a new client."""
        self.unknown += 1
        self.sim.trace(f"client {c.name} gives up: {type(why).__name__}")
        c.generation += 1
        c.hint = why.leader_id if isinstance(why, ForwardToLeader) else None

    # -- reads ----------------------------------------------------------------------

    async def _read(self, c: _Client, node: SimNode) -> None:
        sim, h = self.sim, self.history
        raft, life = node.raft, node.life
        assert raft is not None
        key = self.rng.choice(self.keys)
        lease = self.rng.random() < self.lease_ratio
        policy = ReadPolicy.LEASE_READ if lease else ReadPolicy.READ_INDEX
        op = h.invoke(c.name, ("get", key), time=sim.now_ms())  # the same model for both policies
        sim.trace(f"client {c.name} get {key} via {node.id}{' (lease)' if lease else ''}")
        try:
            async with asyncio.timeout(self.op_timeout / 1000):
                await raft.ensure_linearizable(policy)
        except Exception as exc:  # noqa: BLE001 - the read had no effect
            c.hint = exc.leader_id if isinstance(exc, ForwardToLeader) else None
            h.fail(op)
            return
        sm = node.sm
        if node.life is not life or sm is None:
            h.fail(op)
            return
        h.complete(op, sm.value(key), time=sim.now_ms())
        self.reads += 1
        self.lease_reads += lease
