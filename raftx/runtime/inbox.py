"""What the core task's inbox holds besides engine events (`raftx.engine.events`).

The core (`raftx.runtime.core.RaftCore`) dispatches each inbox item by its type:
an engine event is stepped through the engine; the two runtime items are handled
by the core itself.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Union

from raftx.engine import events as ev
from raftx.runtime.state import RaftState

__all__ = ["CoreCall", "InboxItem", "SnapshotArrival"]


class CoreCall:
    """Run ``fn(state)`` in the core task between two engine steps (`raftx.Raft.with_raft_state`);
    ``future`` (None: fire and forget) gets its result."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[RaftState], Any], future: asyncio.Future[Any] | None) -> None:
        self.fn = fn
        self.future = future


class SnapshotArrival:
    """A completely received snapshot and its data, on the way into the engine (§7)."""

    __slots__ = ("event", "data")

    def __init__(self, event: ev.SnapshotReceived, data: Any) -> None:
        self.event = event
        self.data = data


#: Anything `raftx.runtime.core.RaftCore.post` accepts.
InboxItem = Union[ev.Event, CoreCall, SnapshotArrival]
