"""Watch channels: one sender, many receivers, only the latest value kept (tokio ``watch``).

The core task publishes metrics with `WatchSender.send`; every `WatchReceiver`
sees the latest value with `WatchReceiver.borrow`, waits for the next one with
``await rx.changed()``, or iterates with ``async for value in rx``. Values are
never queued, so a slow receiver skips intermediate values instead of growing
memory. A sender may also be told, with `WatchSender.send_lazy`, how to build the
value: it is then built only when a receiver waits or reads (one build per read,
not one per change), so an unobserved channel costs nothing. When the sender closes, waiting receivers wake and ``changed`` raises
`raftx.errors.Fatal` (the node is gone); ``async for`` ends.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable, Generic, TypeVar

from raftx.errors import Fatal

__all__ = ["WatchReceiver", "WatchSender"]

T = TypeVar("T")


class WatchSender(Generic[T]):
    """The publishing side of a watch channel."""

    __slots__ = ("_value", "_version", "_waiters", "_closed", "_build")

    def __init__(self, value: T) -> None:
        self._value = value
        self._version = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        #: Builds the value that may differ from ``_value`` (`send_lazy`), or None.
        self._build: Callable[[], T] | None = None

    @property
    def value(self) -> T:
        """The latest value."""
        self._refresh()
        return self._value

    @property
    def closed(self) -> bool:
        """True once `close` was called (no more values)."""
        return self._closed

    def send(self, value: T) -> None:
        """Publish ``value`` and wake every waiting receiver."""
        self._build = None
        self._value = value
        self._version += 1
        self._wake()

    def send_if_changed(self, value: T) -> bool:
        """Publish ``value`` unless it equals the current one; True if published."""
        self._build = None
        if value == self._value:
            return False
        self.send(value)
        return True

    def send_lazy(self, build: Callable[[], T]) -> None:
        """The value may have changed and ``build()`` returns it: publish it now (as
        `send_if_changed`) if a receiver waits, else when the value is next read."""
        if self._waiters:
            self.send_if_changed(build())
        else:
            self._build = build

    def _refresh(self) -> None:
        """Build and publish (if changed) the value a `send_lazy` left pending."""
        build = self._build
        if build is not None:
            self._build = None
            value = build()
            if value != self._value:
                self._value = value
                self._version += 1

    def close(self) -> None:
        """No more values: receivers waiting in `WatchReceiver.changed` get `Fatal`."""
        self._closed = True
        self._wake()

    def subscribe(self) -> WatchReceiver[T]:
        """A new receiver; the current value counts as seen."""
        self._refresh()
        return WatchReceiver(self)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


class WatchReceiver(Generic[T]):
    """The receiving side; see the module docstring.

    Example::

        rx = raft.metrics()
        while rx.borrow().current_leader is None:
            await rx.changed()
    """

    __slots__ = ("_sender", "_seen")

    def __init__(self, sender: WatchSender[T]) -> None:
        self._sender = sender
        self._seen = sender._version

    def borrow(self) -> T:
        """The latest value (marks nothing as seen)."""
        return self._sender.value

    def borrow_and_update(self) -> T:
        """The latest value, marking it seen (so `changed` waits for a newer one)."""
        sender = self._sender
        sender._refresh()
        self._seen = sender._version
        return sender._value

    def has_changed(self) -> bool:
        """True if a value was published since this receiver last looked."""
        self._sender._refresh()
        return self._sender._version != self._seen

    async def changed(self) -> None:
        """Wait until a value newer than the last seen one is published.

        Raises `raftx.errors.Fatal` once the sender is closed and nothing newer is left.
        """
        sender = self._sender
        sender._refresh()
        while sender._version == self._seen:
            if sender._closed:
                raise Fatal("the node has stopped; no more metrics")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            sender._waiters.append(fut)
            try:
                await fut
            finally:
                if not fut.done():
                    fut.cancel()
        self._seen = sender._version

    def clone(self) -> WatchReceiver[T]:
        """A new receiver on the same sender that has seen what this one has."""
        rx = WatchReceiver(self._sender)
        rx._seen = self._seen
        return rx

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        yield self.borrow_and_update()
        while True:
            try:
                await self.changed()
            except Fatal:
                return
            yield self._sender.value
