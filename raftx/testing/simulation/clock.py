"""The virtual clock and the single-threaded scheduler of a simulation.

A `Scheduler` is a heap of ``(time, seq, action)``: `run_next` pops the earliest
action, moves the clock to its time (time "jumps", FoundationDB/turmoil style) and
runs it. ``seq`` breaks ties in scheduling order, so a run depends only on what
was scheduled, never on wall-clock time or on hash order. Times are integer
milliseconds, the unit of the engine's `raftx.engine.Tick`.
"""

from __future__ import annotations

import heapq
from typing import Callable

from raftx.errors import ConfigError

__all__ = ["Scheduler"]

Action = Callable[[], None]


class Scheduler:
    """A virtual clock plus a deterministic queue of timed actions."""

    __slots__ = ("now", "_heap", "_seq", "steps")

    def __init__(self, start: int = 0) -> None:
        #: The virtual time (ms); only `run_next` advances it.
        self.now = start
        self._heap: list[tuple[int, int, Action]] = []
        self._seq = 0
        #: How many actions ran so far.
        self.steps = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: int, action: Action) -> None:
        """Run ``action`` at virtual time ``when`` (not before now)."""
        if isinstance(when, bool) or not isinstance(when, int):
            raise ConfigError(f"scheduled time must be an int, not {type(when).__name__}")
        if when < self.now:
            raise ConfigError(f"cannot schedule in the past: {when} < now {self.now}")
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, action))

    def after(self, delay: int, action: Action) -> None:
        """Run ``action`` ``delay`` ms from now."""
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
            raise ConfigError(f"delay must be an int >= 0, not {delay!r}")
        self.at(self.now + delay, action)

    def next_time(self) -> int | None:
        """When the next action is due (None if nothing is scheduled)."""
        return self._heap[0][0] if self._heap else None

    def run_next(self) -> bool:
        """Run the earliest action; False if nothing was scheduled."""
        if not self._heap:
            return False
        when, _, action = heapq.heappop(self._heap)
        self.now = when
        self.steps += 1
        action()
        return True
