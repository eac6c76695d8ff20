"""One future for a whole `raftx.Raft.client_write_many` call.

A batch of ``n`` client writes is queued as one item and waited on with one
future, resolved with the list of ``n`` outcomes (a `raftx.types.ClientWriteResponse`
or the exception that write failed with), in input order. The engine still
sees one responder per payload (`raftx.engine.ClientWrite`): each is a `WriteSlot`,
a small future-like object that records its outcome in the batch. No per-value
future, done callback or coroutine is created, so resolving a batch costs one
loop callback instead of one per value.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

__all__ = ["WriteBatch", "WriteSlot"]

#: Marks an outcome not known yet.
_UNSET: Any = object()


class WriteBatch:
    """The payloads of one ``client_write_many`` call and their outcomes."""

    __slots__ = ("payloads", "future", "results", "remaining", "taken")

    def __init__(self, payloads: Sequence[bytes | None], future: asyncio.Future[list[Any]]) -> None:
        self.payloads = payloads
        #: Resolved with ``results`` once every write has an outcome.
        self.future = future
        self.results: list[Any] = [_UNSET] * len(payloads)
        self.remaining = len(payloads)
        #: How many payloads were handed to the engine so far (a batch longer than
        #: ``api_batch_capacity`` is proposed in several engine steps).
        self.taken = 0

    def take(self, limit: int) -> tuple[Sequence[bytes | None], list[WriteSlot]]:
        """The next at most ``limit`` payloads, and a responder slot for each."""
        start = self.taken
        stop = min(len(self.payloads), start + limit)
        self.taken = stop
        payloads = self.payloads if start == 0 and stop == len(self.payloads) else self.payloads[start:stop]
        return payloads, [WriteSlot(self, i) for i in range(start, stop)]

    def settle(self, i: int, outcome: Any) -> None:
        """Record write ``i``'s outcome; resolve the future when it was the last one."""
        results = self.results
        if results[i] is not _UNSET:
            return
        results[i] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(results)

    def fail_rest(self, exc: BaseException) -> None:
        """Give every write without an outcome ``exc`` (the node stopped)."""
        for i, r in enumerate(self.results):
            if r is _UNSET:
                self.settle(i, exc)


class WriteSlot:
    """The responder of one write of a `WriteBatch` (the subset of the
    `asyncio.Future` interface the runtime uses on responders)."""

    __slots__ = ("batch", "i")

    def __init__(self, batch: WriteBatch, i: int) -> None:
        self.batch = batch
        self.i = i

    def done(self) -> bool:
        """True once this write has an outcome, or the caller stopped waiting."""
        b = self.batch
        return b.results[self.i] is not _UNSET or b.future.done()

    def set_result(self, value: Any) -> None:
        """This write succeeded with ``value``."""
        self.batch.settle(self.i, value)

    def set_exception(self, exc: BaseException) -> None:
        """This write failed with ``exc``."""
        self.batch.settle(self.i, exc)
