"""One future for a whole `raftx.Raft.client_write_many` call.

A batch of ``n`` client writes is queued as one item and waited on with one
future, resolved with the list of ``n`` outcomes (a `raftx.types.ClientWriteResponse`
or the exception that write failed with), in input order. The engine still
sees one responder per payload (`raftx.engine.ClientWrite`): each is a `WriteSlot`,
a small future-like object that records its outcome in the batch. No per-value
future, done callback or coroutine is created, so resolving a batch costs one
loop callback instead of one per value.

The slots of a batch go to the engine as a `SlotRun` (a sequence that builds a
`WriteSlot` only when one is read), and the state-machine worker settles a whole
run at once (`WriteBatch.settle_run`); one engine write step may mix runs and
single-write futures in a `ResponderChain`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, overload

from raftx.types import sequence_position

__all__ = ["ResponderChain", "SlotRun", "WriteBatch", "WriteSlot"]

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

    def take(self, limit: int) -> tuple[Sequence[bytes | None], SlotRun]:
        """The next at most ``limit`` payloads, and their responder slots."""
        start = self.taken
        stop = min(len(self.payloads), start + limit)
        self.taken = stop
        payloads = self.payloads if start == 0 and stop == len(self.payloads) else self.payloads[start:stop]
        return payloads, SlotRun(self, start, stop)

    def settle(self, i: int, outcome: Any) -> None:
        """Record write ``i``'s outcome; resolve the future when it was the last one."""
        results = self.results
        if results[i] is not _UNSET:
            return
        results[i] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(results)

    def settle_run(self, start: int, outcomes: list[Any]) -> None:
        """`settle` writes ``start, start + 1, ...`` with ``outcomes``, in one step."""
        results = self.results
        stop = start + len(outcomes)
        if results[start:stop].count(_UNSET) != len(outcomes):  # some already settled: one by one
            for i, outcome in enumerate(outcomes, start):
                self.settle(i, outcome)
            return
        results[start:stop] = outcomes
        self.remaining -= len(outcomes)
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


class SlotRun(Sequence[WriteSlot]):
    """The responders of writes ``start .. stop - 1`` of ``batch``, built on access."""

    __slots__ = ("batch", "start", "stop")

    def __init__(self, batch: WriteBatch, start: int, stop: int) -> None:
        self.batch = batch
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, i: int) -> WriteSlot: ...

    @overload
    def __getitem__(self, i: slice) -> SlotRun: ...

    def __getitem__(self, i: int | slice) -> WriteSlot | SlotRun:
        k = sequence_position(i, len(self), "SlotRun")
        if isinstance(k, tuple):
            return SlotRun(self.batch, self.start + k[0], self.start + k[1])
        return WriteSlot(self.batch, self.start + k)

    def __iter__(self) -> Iterator[WriteSlot]:
        batch = self.batch
        return (WriteSlot(batch, i) for i in range(self.start, self.stop))


class ResponderChain(Sequence[Any]):
    """Consecutive responder sequences (`SlotRun` and lists of futures) as one sequence."""

    __slots__ = ("parts", "_len")

    def __init__(self, parts: list[Sequence[Any]]) -> None:
        self.parts = [p for p in parts if len(p)]
        self._len = sum(map(len, self.parts))

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> ResponderChain: ...

    def __getitem__(self, i: int | slice) -> Any:
        k = sequence_position(i, self._len, "ResponderChain")
        if isinstance(k, tuple):
            lo, hi = k
            parts, base = [], 0
            for p in self.parts:
                a, b = max(lo - base, 0), min(hi - base, len(p))
                if a < b:
                    parts.append(p[a:b])
                base += len(p)
            return ResponderChain(parts)
        for p in self.parts:
            if k < len(p):
                return p[k]
            k -= len(p)
        raise AssertionError("unreachable: the position was checked")

    def __iter__(self) -> Iterator[Any]:
        return chain.from_iterable(self.parts)
