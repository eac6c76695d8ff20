"""Small task and resource helpers shared by the runtime's workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

__all__ = ["OrderedSet", "close_quietly", "finish_task", "first_of"]

logger = logging.getLogger(__name__)


async def finish_task(task: asyncio.Task[Any] | None, timeout: float, name: str) -> None:
    """Let ``task`` finish on its own within ``timeout`` seconds, else cancel it."""
    if task is None or task.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        logger.warning("%s did not finish within %.1fs; cancelling it", name, timeout)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def first_of(aws: Iterable[Awaitable[Any]]) -> None:
    """Wait until the first of ``aws`` finishes (or fails); cancel and reap the rest."""
    waits = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


def close_quietly(f: Any) -> None:
    """Close a file-like object, ignoring errors (best effort on a cleanup path)."""
    try:
        f.close()
    except Exception:  # noqa: BLE001
        logger.debug("closing %r failed", f, exc_info=True)


T = TypeVar("T")


class OrderedSet(dict[T, None]):
    """A set that iterates in insertion order (a dict of ``None``s).

    The runtime's sets of pending futures and tasks are iterated when a node stops
    (each is failed or cancelled in turn); a plain `set` of futures iterates in
    address-hash order, so the order of the callbacks that follow changes from run
    to run. This keeps a stop deterministic (the simulation replays seeds exactly).
    """

    __slots__ = ()

    add = dict.setdefault  # ``s.add(x)``: at C speed on the write path

    def discard(self, item: T) -> None:
        """Remove ``item`` if present (usable as a done callback)."""
        self.pop(item, None)

