"""Ready-made replicated objects (PySyncObj's batteries, in snake_case).

Each is a `raftx.objects.ReplicatedObject`: the ``@replicated`` methods are
coroutines on a bound object (``await counter.inc()``); the others read the local
applied state (``counter.get()``; linearizable after
``await raft.ensure_linearizable(forward=True)``). Values must be msgpack-encodable
(bytes, str, int, float, bool, None, lists, dicts); tuples come back as lists,
and dict keys / set members should be str, int or bytes.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from raftx.objects.base import ReplicatedObject, replicated

__all__ = ["ReplCounter", "ReplDict", "ReplList", "ReplPriorityQueue", "ReplQueue", "ReplSet"]



class ReplCounter(ReplicatedObject):
    """A replicated integer: ``await c.inc(n=1)``, ``await c.set(v)``, ``c.get()``."""

    def __init__(self, value: int = 0) -> None:
        super().__init__()
        self.value = value

    @replicated
    def set(self, value: int) -> int:
        """Set the counter to ``value``; returns it."""
        self.value = value
        return self.value

    @replicated
    def inc(self, n: int = 1) -> int:
        """Add ``n`` (default 1); returns the new value."""
        self.value += n
        return self.value

    @replicated
    def sub(self, n: int = 1) -> int:
        """Subtract ``n``; returns the new value."""
        self.value -= n
        return self.value

    def get(self) -> int:
        """The local value."""
        return self.value


class ReplDict(ReplicatedObject):
    """A replicated dict: ``await d.set(k, v)``, ``await d.pop(k)``, ``d.get(k)``, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[Any, Any] = {}

    @replicated
    def set(self, key: Any, value: Any) -> None:
        """``d[key] = value``."""
        self.data[key] = value

    @replicated
    def update(self, other: dict[Any, Any]) -> None:
        """``d.update(other)``."""
        self.data.update(other)

    @replicated
    def set_default(self, key: Any, default: Any = None) -> Any:
        """``d.setdefault(key, default)``; returns the value."""
        return self.data.setdefault(key, default)

    @replicated
    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove ``key``; returns its value or ``default``."""
        return self.data.pop(key, default)

    @replicated
    def clear(self) -> None:
        """Remove every key."""
        self.data.clear()

    def get(self, key: Any, default: Any = None) -> Any:
        """The local value of ``key`` (or ``default``)."""
        return self.data.get(key, default)

    def __getitem__(self, key: Any) -> Any:
        return self.data[key]

    def __contains__(self, key: Any) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def keys(self) -> list[Any]:
        """The local keys."""
        return list(self.data)

    def values(self) -> list[Any]:
        """The local values."""
        return list(self.data.values())

    def items(self) -> list[tuple[Any, Any]]:
        """The local items."""
        return list(self.data.items())


class ReplList(ReplicatedObject):
    """A replicated list: ``await l.append(x)``, ``await l.extend(xs)``, ``l.get(i)``, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[Any] = []

    @replicated
    def append(self, item: Any) -> None:
        """Append ``item``."""
        self.data.append(item)

    @replicated
    def extend(self, items: list[Any]) -> None:
        """Append every item of ``items``."""
        self.data.extend(items)

    @replicated
    def insert(self, position: int, item: Any) -> None:
        """Insert ``item`` before ``position``."""
        self.data.insert(position, item)

    @replicated
    def set_item(self, position: int, item: Any) -> None:
        """``l[position] = item`` (an IndexError is answered to the caller)."""
        self.data[position] = item

    @replicated
    def remove(self, item: Any) -> bool:
        """Remove the first ``item``; returns whether there was one."""
        try:
            self.data.remove(item)
        except ValueError:
            return False
        return True

    @replicated
    def pop(self, position: int = -1, default: Any = None) -> Any:
        """Remove and return the item at ``position`` (``default`` if there is none)."""
        try:
            return self.data.pop(position)
        except IndexError:
            return default

    @replicated
    def reset(self, items: list[Any]) -> None:
        """Replace the contents with ``items``."""
        self.data = list(items)

    def get(self, position: int, default: Any = None) -> Any:
        """The local item at ``position`` (or ``default``)."""
        try:
            return self.data[position]
        except IndexError:
            return default

    def raw(self) -> list[Any]:
        """A copy of the local list."""
        return list(self.data)

    def __len__(self) -> int:
        return len(self.data)


class ReplSet(ReplicatedObject):
    """A replicated set: ``await s.add(x)``, ``await s.discard(x)``, ``x in s``, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.data: set[Any] = set()

    @replicated
    def add(self, item: Any) -> None:
        """Add ``item``."""
        self.data.add(item)

    @replicated
    def update(self, items: list[Any]) -> None:
        """Add every item of ``items``."""
        self.data.update(items)

    @replicated
    def discard(self, item: Any) -> bool:
        """Remove ``item``; returns whether it was there."""
        present = item in self.data
        self.data.discard(item)
        return present

    @replicated
    def pop(self) -> Any:
        """Remove and return the smallest item (deterministic on every replica), or None."""
        if not self.data:
            return None
        item = min(self.data)
        self.data.remove(item)
        return item

    @replicated
    def clear(self) -> None:
        """Remove every item."""
        self.data.clear()

    def __contains__(self, item: Any) -> bool:
        return item in self.data

    def __len__(self) -> int:
        return len(self.data)

    def raw(self) -> set[Any]:
        """A copy of the local set."""
        return set(self.data)

    def repl_getstate(self) -> Any:
        return {"data": sorted(self.data)}

    def repl_setstate(self, state: Any) -> None:
        self.data = set(state["data"])


class ReplQueue(ReplicatedObject):
    """A replicated FIFO queue with an optional ``max_size``: ``await q.put(x)`` (False when
    full), ``await q.get()`` (``default`` when empty), ``len(q)``."""

    def __init__(self, max_size: int = 0) -> None:
        super().__init__()
        self.max_size = max_size
        self.data: deque[Any] = deque()

    @replicated
    def put(self, item: Any) -> bool:
        """Append ``item``; returns False (and drops it) when the queue is full."""
        if self.max_size and len(self.data) >= self.max_size:
            return False
        self.data.append(item)
        return True

    @replicated
    def get(self, default: Any = None) -> Any:
        """Remove and return the oldest item, or ``default``."""
        return self.data.popleft() if self.data else default

    def peek(self, default: Any = None) -> Any:
        """The local oldest item without removing it."""
        return self.data[0] if self.data else default

    def __len__(self) -> int:
        return len(self.data)

    def repl_getstate(self) -> Any:
        return {"max_size": self.max_size, "data": list(self.data)}

    def repl_setstate(self, state: Any) -> None:
        self.max_size = state["max_size"]
        self.data = deque(state["data"])


class ReplPriorityQueue(ReplicatedObject):
    """A replicated min-heap of ``[priority, item]``: ``await pq.put(priority, item)``,
    ``await pq.get()`` (the ``[priority, item]`` with the lowest priority, FIFO among
    equal priorities, or ``default``), ``pq.peek()``."""

    def __init__(self, max_size: int = 0) -> None:
        super().__init__()
        self.max_size = max_size
        self.heap: list[list[Any]] = []
        self.seq = 0

    @replicated
    def put(self, priority: Any, item: Any) -> bool:
        """Add ``item`` with ``priority``; returns False when the queue is full."""
        if self.max_size and len(self.heap) >= self.max_size:
            return False
        self.seq += 1
        heapq.heappush(self.heap, [priority, self.seq, item])
        return True

    @replicated
    def get(self, default: Any = None) -> Any:
        """Remove and return ``[priority, item]`` with the lowest priority, or ``default``."""
        if not self.heap:
            return default
        priority, _, item = heapq.heappop(self.heap)
        return [priority, item]

    def peek(self, default: Any = None) -> Any:
        """The local ``[priority, item]`` that `get` would return next."""
        if not self.heap:
            return default
        priority, _, item = self.heap[0]
        return [priority, item]

    def __len__(self) -> int:
        return len(self.heap)
