"""`SimLoop`: a deterministic asyncio event loop with a virtual clock (correctness-notes §4.6).

The simulation runs the real runtime (`raftx.Raft` and its `RaftCore`, workers and
stores) of every node on ONE `SimLoop`:

* **virtual time.** `SimLoop.time` is a number the loop owns. When no callback is
  ready, the loop jumps the clock to the earliest timer instead of sleeping
  (FoundationDB / turmoil "time compression"); nothing ever waits for the wall clock.
* **deterministic order.** Ready callbacks run FIFO (asyncio's ready queue); timers
  run in ``(when, sequence)`` order, so two timers due at the same instant run in the
  order they were scheduled, never by heap accident or hash order.
* **no real I/O, no threads.** There is no selector: `add_reader` and sockets are
  refused. `run_in_executor` (and so `asyncio.to_thread`) runs the function inline,
  at once. A `raftx.storage.io_thread.IOThread` created on this loop sees
  `schedule_io` and runs its rounds as loop callbacks instead of on a thread; the
  loop delays each round by a seeded random time, so an fsync takes time and a crash
  can fall between a write and its fsync.
* **one clock per node.** A `Life` carries its node's clock: ``local = offset +
  rate * real``. `SimLoop.time` reads the clock of the life whose code runs (the
  real virtual time outside every life), and `call_at` / `call_later` take times of
  that same clock, so a node whose ``rate`` is 1.02 sees 1.02 s pass (and its timers
  fire) per real virtual second, while its neighbour at 0.98 sees 0.98 s: clock
  *drift*, within a bound the simulation draws per seed. The simulated world (network
  delays, disk latency, the client history) runs on real virtual time:
  `SimLoop.real_time` and `SimLoop.call_real_later`.
* **process death.** Every node runs in its own `contextvars.Context` carrying a
  `Life`. A callback whose context holds a dead `Life` is skipped, for good: a
  crashed node's tasks and timers simply never run again, as in a killed process
  (no ``finally`` blocks run, nothing is cancelled cleanly). The loop holds every
  task of a node until the run ends (`close`), so that no frozen coroutine is
  garbage-collected mid-run (which would throw ``GeneratorExit`` into it and run
  its ``except``/``finally`` code: a dead process running).

`SimLoop.on_advance` (if set) is called before each jump of the clock: the
simulation checks its invariants there, after all the work of one instant.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import heapq
import logging
import random
import warnings
from asyncio import events
from typing import Any, Callable

__all__ = ["LIFE", "Life", "SimLoop", "SimulationIdle", "SimulationLivelock"]

logger = logging.getLogger(__name__)


class Life:
    """One incarnation of a simulated node: ``alive`` turns False for good when it crashes.

    Its clock reads ``offset + rate * real`` seconds at real virtual time ``real``
    (``rate`` > 0: how fast the node's monotonic clock runs; ``offset``: where it
    started, e.g. at the node's boot). The default is the real virtual clock.
    """

    __slots__ = ("node_id", "incarnation", "alive", "rate", "offset")

    def __init__(self, node_id: int, incarnation: int, rate: float = 1.0, offset: float = 0.0) -> None:
        if not rate > 0:
            raise ValueError(f"a clock rate must be > 0, not {rate!r}")
        self.node_id = node_id
        self.incarnation = incarnation
        self.alive = True
        self.rate = rate
        self.offset = offset

    def local(self, real: float) -> float:
        """This node's clock at real virtual time ``real``."""
        return self.offset + self.rate * real

    def real(self, local: float) -> float:
        """The real virtual time at which this node's clock reads ``local``."""
        return (local - self.offset) / self.rate

    def __repr__(self) -> str:
        return f"Life({self.node_id}.{self.incarnation}{'' if self.alive else ' dead'})"


#: The `Life` of the node whose code runs (None: the simulation itself, clients, faults).
LIFE: contextvars.ContextVar[Life | None] = contextvars.ContextVar("raftx_sim_life", default=None)


class SimulationIdle(RuntimeError):
    """Nothing is ready and no timer is scheduled: the awaited result can never come."""


class SimulationLivelock(RuntimeError):
    """Too many callbacks ran without virtual time moving: a busy loop (in production
    it would burn a CPU until the wall clock moved on)."""


#: Callbacks one instant of virtual time may run before it counts as a livelock.
SPIN_LIMIT = 200_000


class _Handle(events.Handle):
    """A ready callback that does not run once its node is dead."""

    __slots__ = ()

    def _run(self) -> None:
        loop = self._loop  # type: ignore[attr-defined]
        loop._spin += 1
        if loop._spin > SPIN_LIMIT:
            raise SimulationLivelock(f"{SPIN_LIMIT} callbacks at virtual time {loop._now:.6f}s, last {self!r:.200}")
        life = self._context.get(LIFE)  # type: ignore[attr-defined]
        if life is None or life.alive:
            super()._run()


class _Timer(events.TimerHandle):
    """A timer ordered by ``(when, seq)`` (deterministic ties) that skips dead nodes."""

    __slots__ = ("_seq",)

    def __init__(self, when: float, seq: int, callback: Callable[..., Any], args: tuple[Any, ...],
                 loop: SimLoop, context: contextvars.Context | None) -> None:
        super().__init__(when, callback, args, loop, context)
        self._seq = seq

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _Timer):
            return (self.when(), self._seq) < (other.when(), other._seq)
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, _Timer):
            return (self.when(), self._seq) <= (other.when(), other._seq)
        return NotImplemented

    def _run(self) -> None:
        life = self._context.get(LIFE)  # type: ignore[attr-defined]
        if life is None or life.alive:
            super()._run()


class _Clock:
    """Stands in for the selector: "waiting" ``timeout`` seconds moves virtual time."""

    def __init__(self, loop: SimLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        loop = self._loop
        if timeout is None:
            raise SimulationIdle("nothing ready and no timer scheduled")
        if timeout > 0:
            due = loop._scheduled[0]._when  # type: ignore[attr-defined]
            if loop.on_advance is not None:
                loop.on_advance()
            loop._now = max(loop._now, due)
            loop._spin = 0
        return []

    def close(self) -> None:
        pass


class SimLoop(asyncio.BaseEventLoop):
    """A single-threaded, virtual-time event loop (see the module docstring).

    ``io_rng`` draws the delay of each storage I/O round from ``io_delay`` (seconds,
    a ``(low, high)`` pair).
    """

    def __init__(self, io_rng: random.Random | None = None, io_delay: tuple[float, float] = (0.001, 0.006)) -> None:
        super().__init__()
        self._now = 0.0
        self._seq = 0
        self._spin = 0
        self._selector = _Clock(self)
        self._clock_resolution = 1e-9
        self.io_rng = io_rng if io_rng is not None else random.Random(0)
        self.io_delay = io_delay
        #: Called before virtual time jumps forward (all work of the instant done).
        self.on_advance: Callable[[], None] | None = None
        #: Exceptions asyncio reported on live code (``call_exception_handler``).
        self.errors: list[dict[str, Any]] = []
        self.set_exception_handler(self._on_error)
        self._held: list[asyncio.Task[Any]] = []
        self._held_limit = 512

    # -- time ------------------------------------------------------------------------

    def time(self) -> float:
        """The clock of the running node's `Life` (the real virtual clock outside every
        life), in seconds."""
        life = LIFE.get()
        return self._now if life is None else life.offset + life.rate * self._now

    def real_time(self) -> float:
        """The real virtual clock, in seconds, whichever node's code runs."""
        return self._now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                context: contextvars.Context | None = None) -> events.TimerHandle:
        """As `asyncio.AbstractEventLoop.call_at`, with a deterministic tie-break;
        ``when`` is a time of the caller's clock (`time`), whatever ``context`` the
        callback runs in."""
        if when is None:
            raise TypeError("when cannot be None")
        life = LIFE.get()
        return self._call_at_real(when if life is None else life.real(when), callback, args, context)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                   context: contextvars.Context | None = None) -> events.TimerHandle:
        """As `asyncio.AbstractEventLoop.call_later`: ``delay`` seconds of the caller's clock."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_real_later(self, delay: float, callback: Callable[..., Any], *args: Any,
                        context: contextvars.Context | None = None) -> events.TimerHandle:
        """Run ``callback`` after ``delay`` seconds of real virtual time (the world's
        latencies: network, disk), whichever node's clock the caller has."""
        return self._call_at_real(self._now + delay, callback, args, context)

    def _call_at_real(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...],
                      context: contextvars.Context | None) -> events.TimerHandle:
        self._check_closed()  # type: ignore[attr-defined]
        self._seq += 1
        timer = _Timer(when, self._seq, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def _call_soon(self, callback: Callable[..., Any], args: tuple[Any, ...],
                   context: contextvars.Context | None) -> events.Handle:
        handle = _Handle(callback, args, self, context)
        self._ready.append(handle)  # type: ignore[attr-defined]
        return handle

    def create_task(self, coro: Any, *, name: str | None = None,  # type: ignore[override]
                    context: contextvars.Context | None = None) -> asyncio.Task[Any]:
        """As `asyncio.AbstractEventLoop.create_task`; a node's tasks are held (module doc)."""
        task = super().create_task(coro, name=name, context=context)
        life = LIFE.get() if context is None else context.get(LIFE)
        if life is not None:
            held = self._held
            held.append(task)
            if len(held) > self._held_limit:  # forget finished tasks and those of live nodes' past
                self._held = [t for t in held if not t.done()]
                self._held_limit = max(512, 2 * len(self._held))
        return task

    def close(self) -> None:
        """Close the loop; the frozen coroutines of dead (and live) nodes are closed
        quietly first (their ``GeneratorExit`` handlers may fail on a closed loop)."""
        held, self._held = self._held, []
        super().close()
        level = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for task in held:
                if not task.done():
                    try:
                        task.get_coro().close()
                    except BaseException:  # noqa: BLE001 - code of a dead run; nothing to report
                        pass
            del held
            gc.collect()
        logging.disable(level)

    # -- storage I/O without threads ---------------------------------------------------

    def schedule_io(self, callback: Callable[[], None]) -> None:
        """Run one storage I/O round (``IOThread``) after a seeded delay, in the caller's context."""
        lo, hi = self.io_delay
        self.call_real_later(self.io_rng.uniform(lo, hi), callback)

    def run_in_executor(self, executor: Any, func: Callable[..., Any],  # type: ignore[override]
                        *args: Any) -> asyncio.Future[Any]:
        """Run ``func(*args)`` now, on the loop (no thread pool in a simulation)."""
        fut = self.create_future()
        try:
            fut.set_result(func(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            fut.set_exception(exc)
        return fut

    # -- what a simulation loop refuses ------------------------------------------------------

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError("SimLoop has no real I/O")

    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError("SimLoop has no real I/O")

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                             context: contextvars.Context | None = None) -> events.Handle:
        return self.call_soon(callback, *args, context=context)

    # -- errors ------------------------------------------------------------------------------

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        life = LIFE.get()
        task = context.get("task") or context.get("future")
        if "destroyed but it is pending" in str(context.get("message", "")):
            return  # a dead node's frozen task, collected
        if life is not None and not life.alive:
            return
        self.errors.append(context)
        logger.debug("simulation loop: %s", context.get("message"), exc_info=context.get("exception"))
        del task
