"""Small task and resource helpers shared by the runtime's workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

__all__ = ["close_quietly", "finish_task", "first_of"]

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
