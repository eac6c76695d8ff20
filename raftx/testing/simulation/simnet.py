"""The simulated network: per-link loss, delay, duplication, reordering, partitions.

Every message travels on a *directed* link ``(src, dst)``. A link has `LinkFaults`
(drop probability, a uniform delay range, a duplicate probability, and a reorder
probability that adds an extra delay so later messages overtake it). A link can be
*blocked* (a one-way partition: ``a -> b`` blocked while ``b -> a`` works, the case
of openraft's ``t14_one_way_isolation``); `partition` and `isolate` block both
directions between groups. A message is lost if its link is blocked when it is sent
or when it would arrive. Loss is silent, as on a real network: the sender's RPC
layer notices by timeout (`raftx.testing.simulation.node`).

All randomness comes from the injected ``rng``; delivery is scheduled on the
`raftx.testing.simulation.clock.Scheduler`, so a seed fixes every decision.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from raftx.errors import ConfigError
from raftx.testing.simulation.clock import Scheduler

__all__ = ["LinkFaults", "Msg", "SimNetwork"]


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Fault knobs of one directed link (probabilities in [0, 1], delays in ms)."""

    drop: float = 0.0
    min_delay: int = 1
    max_delay: int = 3
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: int = 40

    def validate(self) -> LinkFaults:
        for name in ("drop", "duplicate", "reorder"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ConfigError(f"LinkFaults.{name} must be a probability, not {p!r}")
        if not 0 <= self.min_delay <= self.max_delay or self.reorder_delay < 0:
            raise ConfigError(f"bad delays: {self!r}")
        return self


@dataclass(frozen=True, slots=True)
class Msg:
    """One message: ``kind`` names it, ``rid`` pairs a response with its request."""

    src: int
    dst: int
    kind: str
    body: Any
    rid: int = 0

    def describe(self) -> str:
        return f"{self.kind} {self.src}->{self.dst} #{self.rid}"


class SimNetwork:
    """Directed links with faults; see the module docstring."""

    def __init__(self, scheduler: Scheduler, rng: random.Random, deliver: Callable[[Msg], None],
                 default: LinkFaults | None = None) -> None:
        self.scheduler = scheduler
        self.rng = rng
        self.deliver = deliver
        self.default = (default or LinkFaults()).validate()
        self.links: dict[tuple[int, int], LinkFaults] = {}
        self.blocked: set[tuple[int, int]] = set()
        self.sent = self.dropped = self.duplicated = self.delivered = 0

    # -- configuration ------------------------------------------------------------------

    def faults(self, src: int, dst: int) -> LinkFaults:
        return self.links.get((src, dst), self.default)

    def set_link(self, src: int, dst: int, **knobs: Any) -> None:
        """Change some knobs of the link ``src -> dst``."""
        self.links[(src, dst)] = replace(self.faults(src, dst), **knobs).validate()

    def block(self, src: int, dst: int) -> None:
        """Lose every message from ``src`` to ``dst`` (one way)."""
        if src != dst:
            self.blocked.add((src, dst))

    def partition(self, *groups: Iterable[int]) -> None:
        """Block both directions between every two of ``groups``."""
        sets = [sorted(set(g)) for g in groups]
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                for x in a:
                    for y in b:
                        self.block(x, y)
                        self.block(y, x)

    def isolate(self, node: int, others: Iterable[int]) -> None:
        """Cut ``node`` off from ``others`` in both directions."""
        self.partition([node], [o for o in others if o != node])

    def heal(self) -> None:
        """Unblock every link and restore the default knobs everywhere."""
        self.blocked.clear()
        self.links.clear()

    def reachable(self, src: int, dst: int) -> bool:
        return (src, dst) not in self.blocked

    # -- traffic -----------------------------------------------------------------------

    def send(self, msg: Msg) -> None:
        """Put ``msg`` on its link: maybe lose it, delay it, reorder it, duplicate it."""
        self.sent += 1
        f = self.faults(msg.src, msg.dst)
        rng = self.rng
        if not self.reachable(msg.src, msg.dst) or (f.drop and rng.random() < f.drop):
            self.dropped += 1
            return
        copies = 2 if f.duplicate and rng.random() < f.duplicate else 1
        if copies == 2:
            self.duplicated += 1
        for _ in range(copies):
            delay = rng.randint(f.min_delay, f.max_delay)
            if f.reorder and rng.random() < f.reorder:
                delay += rng.randint(0, f.reorder_delay)
            self.scheduler.after(delay, self._arrival(msg))

    def _arrival(self, msg: Msg) -> Callable[[], None]:
        return lambda: self._arrive(msg)

    def _arrive(self, msg: Msg) -> None:
        if not self.reachable(msg.src, msg.dst):
            self.dropped += 1
            return
        self.delivered += 1
        self.deliver(msg)
