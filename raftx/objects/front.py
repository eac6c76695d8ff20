"""`SyncProxy`: a synchronous front end to a bound replicated object, for threads.

``sm.sync(obj)`` returns a proxy whose methods block the calling thread: replicated
methods are proposed on the machine's event loop (`asyncio.run_coroutine_threadsafe`)
and wait for their result; other methods and attributes are read on the loop
thread too, so a thread never sees an object half-way through an apply. Never call
a proxy from the loop's own thread (it would wait on itself: `RuntimeError`).

Example (a worker thread)::

    counter = sm.sync(counter_obj, timeout=10)
    counter.inc(5)                   # blocks until applied on this node
    print(counter.get())
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from raftx.objects.base import ReplicatedObject, replicated_methods

if TYPE_CHECKING:
    from raftx.objects.machine import ObjectStateMachine

__all__ = ["SyncProxy"]


class SyncProxy:
    """Blocking access to ``obj`` from threads other than the loop's (module docstring)."""

    def __init__(self, machine: ObjectStateMachine, obj: ReplicatedObject, timeout: float | None = None) -> None:
        self._machine = machine
        self._obj = obj
        self._timeout = timeout
        self._replicated = set(replicated_methods(type(obj)))

    def _run(self, make: Any) -> Any:
        loop = self._machine.loop
        if loop.is_running() and getattr(loop, "_thread_id", None) == threading.get_ident():
            raise RuntimeError("a SyncProxy is for other threads; on the loop, await the object's methods")
        return asyncio.run_coroutine_threadsafe(make(), loop).result(self._timeout)

    def __getattr__(self, name: str) -> Any:
        obj = self._obj
        if name in self._replicated:
            method = getattr(obj, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                async def go() -> Any:
                    return await method(*args, **kwargs)
                return self._run(go)
            return call
        attr = getattr(obj, name)
        if callable(attr):
            def read(*args: Any, **kwargs: Any) -> Any:
                async def go() -> Any:
                    return attr(*args, **kwargs)
                return self._run(go)
            return read

        async def value() -> Any:
            return getattr(obj, name)
        return self._run(value)
