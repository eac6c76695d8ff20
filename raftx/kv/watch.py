"""`Watch`: the async iterator of changes behind `raftx.kv.KVClient.watch`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from raftx.errors import BadCommand, Compacted, RPCError, Timeout
from raftx.kv import protocol as P
from raftx.kv.keyspace import Event
from raftx.network.client import RpcClient

if TYPE_CHECKING:
    from raftx.kv.client import KVClient

__all__ = ["Watch"]


class Watch:
    """An async iterator of `raftx.kv.keyspace.Event` from `KVClient.watch`.

    It long-polls one node on a connection of its own (a poll would otherwise hold up
    the client's other requests on a shared connection, which are answered in order),
    remembers the revision to ask for next, and on a failure moves on to another
    node with the same revision: every change is delivered once, in revision order.
    Raises `raftx.errors.Compacted` if that revision's history is gone and
    `raftx.errors.Timeout` if no node answered for the client's ``timeout``.
    """

    def __init__(self, client: KVClient, prefix: bytes, start_revision: int, max_wait: float) -> None:
        self.client = client
        self.prefix = prefix
        #: The revision the next poll asks for (0: "from the next change", first poll only).
        self.next_revision = start_revision
        self.max_wait = max_wait
        self._buffer: list[Event] = []
        self._node: int | None = None
        self._conn: RpcClient | None = None
        self._closed = False

    def __aiter__(self) -> Watch:
        return self

    async def start(self) -> int:
        """Fix where a watch "from the next change" starts, without waiting for one (a
        poll that returns at once); the revision the watch delivers from. Changes
        made after this returns are delivered; iterating without it fixes the start
        at the first poll."""
        if self.next_revision == 0:
            await self._poll(0)
        return self.next_revision

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._poll()
        return self._buffer.pop(0)

    async def _poll(self, wait_ms: int | None = None) -> None:
        c = self.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + c.timeout
        backoff = c.retry.backoff()
        last = "no attempt"
        payload_wait = int(self.max_wait * 1000) if wait_ms is None else wait_ms
        while True:
            if self._node is None or self._node not in c.nodes:
                self._node = c._pick()
            node = self._node
            try:
                if self._conn is None:
                    self._conn = c._new_conn(node)
                raw = await self._conn.call(P.WATCH, P.pack([self.prefix, self.next_revision, payload_wait, 1024]),
                                            self.max_wait + c.attempt_timeout)
                reply = P.decode_reply(raw)
                item = reply[1][0] if reply[0] == P.REPLY_RESULTS and reply[1] else None
                if not (isinstance(item, list) and len(item) == 2):
                    raise BadCommand(f"malformed kv.watch answer {item!r:.100}")
            except (RPCError, BadCommand) as exc:
                last = f"node {node}: {type(exc).__name__}: {exc}"
                await self._switch()
            else:
                if item[0] == P.ITEM_COMPACTED:
                    raise Compacted(f"watch from revision {self.next_revision}: compacted up to {item[1]}",
                                    int(item[1]))
                nxt, events = item[1]
                for typ, key, value, rev in events:
                    if rev >= self.next_revision:  # never deliver one twice
                        self._buffer.append(Event("put" if typ == P.EVENT_PUT else "delete", key, value, rev))
                self.next_revision = max(self.next_revision, int(nxt))
                return
            if loop.time() >= deadline:
                raise Timeout(f"watch: no node answered within {c.timeout}s (last error: {last})")
            await c.retry.pause(backoff, deadline)

    async def _switch(self) -> None:
        """Drop this node: the next poll goes to another one, from the same revision."""
        c = self.client
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        ids = sorted(c.nodes)
        if self._node in ids and len(ids) > 1:
            self._node = ids[(ids.index(self._node) + 1) % len(ids)]
        else:
            self._node = None

    async def close(self) -> None:
        """Close the watch's connection; iteration ends. Idempotent."""
        self._closed = True
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
