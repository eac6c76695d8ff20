"""Simulated clients: unique writes and linearizable reads, recorded in a `History`.

Each client runs one operation at a time against the node it believes leads:

* **write** ``put(key, value)`` with a value no other operation writes, through
  `ClientWrite`. It completes when the entry is applied. A `ForwardToLeader`
  answered while the call is still being handled means the engine refused it
  before appending: the write *certainly* did not happen (`History.fail`). Any
  later error, or no answer within ``op_timeout``, leaves the outcome unknown: the
  entry may still commit (another leader may keep it), so the operation stays
  open (it may take effect any time after its call, or never) and the client
  continues under a new id.
* **read** ``get(key)`` through the ReadIndex path (thesis §6.4): `GetReadLogId`,
  then wait until that node applied ``read_log_id``, then read its state machine.
  A read that fails or times out had no effect and is dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raftx.engine import events as ev
from raftx.errors import ForwardToLeader
from raftx.testing.linearizability import History
from raftx.testing.simulation.node import ClientResponder
from raftx.testing.simulation.statemachine import encode_put
from raftx.types import ClientWriteResponse

if TYPE_CHECKING:
    from raftx.testing.simulation.node import SimNode
    from raftx.testing.simulation.runner import Simulation

__all__ = ["ClientPool"]


@dataclass(slots=True)
class _Client:
    number: int
    generation: int = 0
    seq: int = 0
    hint: int | None = None

    @property
    def name(self) -> str:
        return f"c{self.number}.{self.generation}"


class ClientPool:
    """``n`` clients over ``keys`` keys, recording into ``history``."""

    def __init__(self, sim: Simulation, rng: random.Random, n: int = 3, keys: int = 3, read_ratio: float = 0.4,
                 op_timeout: int = 600, think: tuple[int, int] = (5, 40)) -> None:
        self.sim = sim
        self.rng = rng
        self.keys = [f"k{i}" for i in range(keys)]
        self.read_ratio = read_ratio
        self.op_timeout = op_timeout
        self.think = think
        self.history = History()
        self.clients = [_Client(i) for i in range(n)]
        self.active = False
        self.busy = 0
        self.acked = self.unknown = self.failed = self.reads = 0

    def start(self) -> None:
        self.active = True
        for c in self.clients:
            self._later(c)

    def stop(self) -> None:
        """Issue no new operations (the ones in flight still finish)."""
        self.active = False

    def _later(self, c: _Client) -> None:
        self.sim.scheduler.after(self.rng.randint(*self.think), lambda: self._next(c))

    def _pick_node(self, c: _Client) -> SimNode | None:
        nodes = self.sim.nodes
        if c.hint is not None and c.hint in nodes and nodes[c.hint].up:
            return nodes[c.hint]
        up = [n for _, n in sorted(nodes.items()) if n.up]
        return self.rng.choice(up) if up else None

    def _next(self, c: _Client) -> None:
        if not self.active:
            return
        node = self._pick_node(c)
        if node is None:
            self._later(c)
            return
        self.busy += 1
        if self.rng.random() < self.read_ratio:
            self._read(c, node)
        else:
            self._write(c, node)

    def _finish(self, c: _Client) -> None:
        self.busy -= 1
        self._later(c)

    # -- writes ---------------------------------------------------------------------

    def _write(self, c: _Client, node: SimNode) -> None:
        sim, h = self.sim, self.history
        c.seq += 1
        key = self.rng.choice(self.keys)
        value = f"{c.number}.{c.generation}.{c.seq}"
        op = h.invoke(c.name, ("put", key, value), time=sim.scheduler.now)
        state = {"done": False, "calling": True}

        def answered(v: Any) -> None:
            if state["done"]:
                return
            state["done"] = True
            if isinstance(v, ClientWriteResponse):
                h.complete(op, None, time=sim.scheduler.now)
                self.acked += 1
            elif isinstance(v, ForwardToLeader) and state["calling"]:
                h.fail(op)  # refused before it was appended
                self.failed += 1
                c.hint = v.leader_id
            else:
                self._give_up(c, v)
            self._finish(c)

        def timed_out() -> None:
            if not state["done"]:
                state["done"] = True
                self._give_up(c, "timeout")
                self._finish(c)

        sim.scheduler.after(self.op_timeout, timed_out)
        sim.trace(f"client {c.name} put {key}={value} via {node.id}")
        node.call(ev.ClientWrite([encode_put(key, value)], [ClientResponder(answered)]))
        state["calling"] = False

    def _give_up(self, c: _Client, why: Any) -> None:
        """The outcome is unknown: leave the operation open, continue as a new client."""
        self.unknown += 1
        self.sim.trace(f"client {c.name} gives up: {why!r}")
        c.generation += 1
        c.hint = why.leader_id if isinstance(why, ForwardToLeader) else None

    # -- reads ----------------------------------------------------------------------

    def _read(self, c: _Client, node: SimNode) -> None:
        sim, h = self.sim, self.history
        key = self.rng.choice(self.keys)
        op = h.invoke(c.name, ("get", key), time=sim.scheduler.now)
        state = {"done": False}
        inc = node.incarnation

        def finish(value: str | None) -> None:
            if state["done"]:
                return
            state["done"] = True
            if value is None:
                h.fail(op)
            else:
                h.complete(op, value, time=sim.scheduler.now)
                self.reads += 1
            self._finish(c)

        def answered(v: Any) -> None:
            if state["done"]:
                return
            if isinstance(v, tuple):
                read_log_id = v[0]
                index = -1 if read_log_id is None else read_log_id.index
                if node.up and node.incarnation == inc:
                    node.when_applied(index, lambda: finish(node.sm.get(key)))
                return
            c.hint = v.leader_id if isinstance(v, ForwardToLeader) else None
            finish(None)

        sim.scheduler.after(self.op_timeout, lambda: finish(None))
        sim.trace(f"client {c.name} get {key} via {node.id}")
        node.call(ev.GetReadLogId(ClientResponder(answered)))
