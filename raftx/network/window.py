"""A bounded in-flight window (count and bytes) with FIFO backpressure.

The leader pipelines AppendEntries to each follower with a bounded number of
requests and bytes in flight (DESIGN §4; openraft's ``InflightAppendQueue``).
Callers `acquire` a slot before sending and `release` it when the response
arrives (or the call gives up); when the window is full they wait, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque

from raftx.errors import ConfigError

__all__ = ["InflightWindow"]


class InflightWindow:
    """At most ``max_count`` requests and ``max_bytes`` payload bytes in flight.

    A single request larger than ``max_bytes`` is admitted when nothing else is in
    flight, so an oversized request waits for the window to drain but never deadlocks.
    Waiters are served strictly first come, first served.
    """

    __slots__ = ("max_count", "max_bytes", "count", "nbytes", "_waiters")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        if max_count < 1 or max_bytes < 1:
            raise ConfigError(f"window bounds must be positive: count={max_count} bytes={max_bytes}")
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.count = 0
        self.nbytes = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, nbytes: int) -> bool:
        if self.count == 0:
            return True
        return self.count < self.max_count and self.nbytes + nbytes <= self.max_bytes

    def try_acquire(self, nbytes: int) -> bool:
        """Count a request of ``nbytes`` as in flight if it fits now and nobody waits."""
        if not self._waiters and self._fits(nbytes):
            self.count += 1
            self.nbytes += nbytes
            return True
        return False

    async def acquire(self, nbytes: int) -> None:
        """Wait until a request of ``nbytes`` fits, then count it as in flight."""
        if self.try_acquire(nbytes):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (nbytes, fut)
        self._waiters.append(entry)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                # Granted just as we were cancelled: hand the slot back.
                self.release(nbytes)
            else:
                try:
                    self._waiters.remove(entry)
                except ValueError:
                    pass
                self._wake()
            raise

    def release(self, nbytes: int) -> None:
        """A request of ``nbytes`` is no longer in flight."""
        self.count -= 1
        self.nbytes -= nbytes
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            nbytes, fut = waiters[0]
            if fut.done():
                waiters.popleft()
                continue
            if not self._fits(nbytes):
                return
            waiters.popleft()
            self.count += 1
            self.nbytes += nbytes
            fut.set_result(None)

    @property
    def waiting(self) -> int:
        """Callers currently waiting for room."""
        return sum(1 for _, f in self._waiters if not f.done())
