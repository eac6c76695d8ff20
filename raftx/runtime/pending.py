"""`PendingCalls`: the one registry of the calls a node still owes an answer.

Every responder the core hands the engine (an API or RPC call's future, a client
write's future, the slots of a `raftx.runtime.write_batch.WriteBatch`) is made here,
resolved here (`resolve` for the engine's `Respond`, `settle_applied` for the writes
the state machine applied, §5.3: a write is answered after it is applied) and, when
the node stops, failed here (`fail_all`), in the order the calls were made.

Responders are futures or `WriteSlot` s (the part of the future interface the
engine's answers need); an applied range's responders come as runs: sequences of
them, a `SlotRun` (one ``client_write_many`` call's slots, settled in one step) or a
`ResponderChain` of both (one engine write step).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from raftx.runtime.tasks import OrderedSet
from raftx.runtime.write_batch import ResponderChain, SlotRun, WriteBatch, WriteSlot
from raftx.types import ClientWriteResponse, EntryRange, LogId, Membership

__all__ = ["PendingCalls", "resolve"]


def resolve(responder: Any, value: Any) -> None:
    """Resolve an API/RPC responder (a future) with a value or an exception instance."""
    if responder is None or responder.done():
        return
    if isinstance(value, BaseException):
        responder.set_exception(value)
    else:
        responder.set_result(value)


class PendingCalls:
    """Unresolved responders of one node (see the module docstring)."""

    __slots__ = ("_loop", "_calls", "_writes", "_batches")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: API and RPC calls: each forgets itself when done (a done callback).
        self._calls: OrderedSet[asyncio.Future[Any]] = OrderedSet()
        #: Single client writes. No done callback (a second loop callback per write):
        #: every path that resolves one forgets it (`resolve`, `settle_applied`, `forget`).
        self._writes: OrderedSet[asyncio.Future[Any]] = OrderedSet()
        #: ``client_write_many`` calls whose future is not resolved yet.
        self._batches: OrderedSet[WriteBatch] = OrderedSet()

    def call(self) -> asyncio.Future[Any]:
        """A responder future for an API or RPC call."""
        fut = self._loop.create_future()
        self._calls.add(fut)
        fut.add_done_callback(self._calls.discard)
        return fut

    def write(self) -> asyncio.Future[Any]:
        """The future of one client write (resolved after it is applied, §5.3)."""
        fut = self._loop.create_future()
        self._writes.add(fut)
        return fut

    def batch(self, payloads: Sequence[bytes | None]) -> WriteBatch:
        """A `WriteBatch` for one ``client_write_many`` call, with its future."""
        fut: asyncio.Future[list[Any]] = self._loop.create_future()
        batch = WriteBatch(payloads, fut)
        batches = self._batches
        batches.add(batch)
        fut.add_done_callback(lambda _: batches.discard(batch))
        return batch

    def forget(self, fut: asyncio.Future[Any]) -> None:
        """A write the caller gave up on before it was proposed."""
        self._writes.discard(fut)

    def resolve(self, responder: Any, value: Any) -> None:
        """`resolve` ``responder`` (the engine's `Respond`) and forget it."""
        self._writes.discard(responder)
        resolve(responder, value)

    def settle_applied(self, index: int, rs: Sequence[Any], entries: EntryRange, outputs: list[Any]) -> None:
        """Answer the responders ``rs`` of entries ``index, index + 1, ...`` of the applied
        ``entries`` with a `ClientWriteResponse` carrying the state machine's ``outputs``."""
        kind = type(rs)
        if kind is ResponderChain:
            for part in cast(ResponderChain, rs).parts:
                self.settle_applied(index, part, entries, outputs)
                index += len(part)
            return
        lo = index - entries.first_index
        terms = entries.terms
        if kind is SlotRun:  # writes of one client_write_many call: bytes payloads, no membership
            run = cast(SlotRun, rs)
            hi = lo + len(run)
            ids = map(LogId, terms[lo:hi], range(index, index + len(run)))
            run.batch.settle_run(run.start, list(map(ClientWriteResponse, ids, outputs[lo:hi])))
            return
        discard, payloads = self._writes.discard, entries.payloads
        for p, responder in enumerate(rs, lo):
            if responder is None:
                continue
            payload = payloads[p]
            membership = payload if isinstance(payload, Membership) else None
            response = ClientWriteResponse(LogId(terms[p], entries.first_index + p), outputs[p], membership)
            if type(responder) is WriteSlot:
                responder.batch.settle(responder.i, response)
                continue
            discard(responder)
            if not responder.done():
                responder.set_result(response)

    def fail_all(self, exc: BaseException) -> None:
        """The node stopped: fail every call still pending with ``exc``, oldest first."""
        for fut in list(self._calls):
            if not fut.done():
                fut.set_exception(exc)
        self._calls.clear()
        for fut in list(self._writes):
            if not fut.done():
                fut.set_exception(exc)
        self._writes.clear()
        for batch in list(self._batches):
            batch.fail_rest(exc)
        self._batches.clear()
