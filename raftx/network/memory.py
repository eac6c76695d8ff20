"""`MemRouter`: the RPC surface of the TCP transport, in process, with fault controls.

Nodes `register` a handler with the same signature as `RpcServer`'s
(``async def handler(sender_id, method, payload: memoryview) -> bytes``) and call
each other through `MemRouter.call` or a `MemClient` (same ``call`` / ``close`` as
`RpcClient`). Every link (source -> target, one direction) can drop messages with a
probability, delay them by a fixed or random time, or be cut (`partition`,
`isolate`) and restored (`heal`). All randomness comes from the injected
`random.Random`, so a seeded run repeats exactly.

What a caller sees, so tests can reason about Raft's failure cases (§5.1: RPCs may
be lost, delayed or reordered across connections):

* request blocked by a partition, dropped, or target not registered:
  `raftx.errors.Unreachable`; the target's handler did **not** run;
* response blocked or dropped: `raftx.errors.NetworkError`; the handler **did** run
  (the outcome is unknown to the caller, as with a TCP connection lost mid-call);
* handler raised: `raftx.errors.RemoteError`; ``timeout`` expired: `raftx.errors.Timeout`
  (the handler keeps running, as it would on a remote node).

Payloads are copied into `bytes` on the way in, so the handler never sees the
caller's later changes to a mutable buffer. With ``ordered=True`` (the default, like
one TCP connection) the requests on one link reach the handler one at a time in the
order they were sent, even when their delays differ.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from raftx.errors import ConfigError, NetworkError, RemoteError, Timeout, Unreachable
from raftx.network.server import Handler
from raftx.network.wire import Buffer

__all__ = ["MemRouter", "MemClient", "LinkFaults", "RouterStats"]

logger = logging.getLogger(__name__)

Delay = float | tuple[float, float]


@dataclass
class LinkFaults:
    """Faults of one direction of one link: ``drop`` probability in [0, 1] applied to
    each message (request and response separately) and ``delay`` in seconds, fixed or
    ``(low, high)`` drawn uniformly per message."""

    drop: float = 0.0
    delay: Delay = 0.0


@dataclass
class RouterStats:
    """Message counters of a `MemRouter`."""

    sent: int = 0
    delivered: int = 0  # requests whose handler ran
    dropped: int = 0  # requests or responses lost to ``drop``
    blocked: int = 0  # requests or responses stopped by a partition / isolation
    responses: int = 0  # responses that reached their caller


@dataclass
class _Link:
    tail: asyncio.Future[None] | None = None
    faults: LinkFaults | None = None


@dataclass
class _State:
    blocked: set[tuple[int, int]] = field(default_factory=set)
    isolated: set[int] = field(default_factory=set)


class MemRouter:
    """An in-process network between registered nodes (see the module docstring)."""

    def __init__(self, rng: random.Random | None = None, *, drop: float = 0.0, delay: Delay = 0.0,
                 ordered: bool = True) -> None:
        self.rng = rng if rng is not None else random.Random(0)
        self.default = LinkFaults(_check_drop(drop), _check_delay(delay))
        self.ordered = ordered
        self.stats = RouterStats()
        self._handlers: dict[int, Handler] = {}
        self._links: dict[tuple[int, int], _Link] = {}
        self._state = _State()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- membership -------------------------------------------------------------------

    def register(self, node_id: int, handler: Handler) -> None:
        """Serve ``node_id``'s RPCs with ``handler`` (replacing a previous one: a restart)."""
        self._handlers[node_id] = handler

    def unregister(self, node_id: int) -> None:
        """``node_id`` is down: requests to it fail with `Unreachable` until it registers again."""
        self._handlers.pop(node_id, None)

    @property
    def nodes(self) -> frozenset[int]:
        return frozenset(self._handlers)

    def client(self, source: int, target: int) -> MemClient:
        """A client for ``source`` calling ``target``, with `RpcClient`'s ``call``/``close``."""
        return MemClient(self, source, target)

    # -- faults -----------------------------------------------------------------------

    def set_link(self, source: int, target: int, *, drop: float | None = None,
                 delay: Delay | None = None) -> None:
        """Set the faults of the direction ``source -> target`` (others keep theirs)."""
        link = self._link(source, target)
        current = link.faults or LinkFaults(self.default.drop, self.default.delay)
        link.faults = LinkFaults(
            current.drop if drop is None else _check_drop(drop),
            current.delay if delay is None else _check_delay(delay),
        )

    def partition(self, side_a: set[int] | list[int] | tuple[int, ...], side_b: Any = None, *,
                  one_way: bool = False) -> None:
        """Cut every link between ``side_a`` and ``side_b`` (default: every other registered node).

        ``one_way=True`` cuts only the direction from ``side_a`` to ``side_b``.
        """
        a = set(side_a)
        b = set(side_b) if side_b is not None else set(self._handlers) - a
        for x in a:
            for y in b:
                if x != y:
                    self._state.blocked.add((x, y))
                    if not one_way:
                        self._state.blocked.add((y, x))

    def isolate(self, node_id: int) -> None:
        """Cut ``node_id`` off from every node, including ones registered later."""
        self._state.isolated.add(node_id)

    def heal(self) -> None:
        """Remove every partition and isolation (link drop/delay settings stay)."""
        self._state = _State()

    def reset(self) -> None:
        """`heal` and also clear every link's drop/delay back to the router defaults."""
        self.heal()
        for link in self._links.values():
            link.faults = None

    def is_blocked(self, source: int, target: int) -> bool:
        """True if a message from ``source`` to ``target`` is cut right now."""
        st = self._state
        return source in st.isolated or target in st.isolated or (source, target) in st.blocked

    # -- calls ------------------------------------------------------------------------

    async def call(self, source: int, target: int, method: str, payload: Buffer = b"",
                   timeout: float | None = None) -> bytes:
        """Call ``method`` on ``target`` as ``source``; see the module docstring for errors.

        The request leaves (its partition and drop checks happen, and it takes its place
        in the link's order) when `call` is invoked, before the first ``await``.
        """
        data = bytes(payload)
        self.stats.sent += 1
        link = self._link(source, target)
        prev, mine = link.tail, asyncio.get_running_loop().create_future()
        link.tail = mine
        try:
            self._send(source, target, "request", Unreachable)
        except BaseException:
            self._pass_turn(link, prev, mine)
            raise
        task = asyncio.get_running_loop().create_task(
            self._exchange(link, prev, mine, source, target, method, data))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(task)
        except TimeoutError:
            raise Timeout(f"{method} from node {source} to node {target} timed out after {timeout}s") from None

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a caller that timed out no longer retrieves it

    async def close(self) -> None:
        """Cancel every message still travelling (e.g. at the end of a test)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _exchange(self, link: _Link, prev: asyncio.Future[None] | None, mine: asyncio.Future[None],
                        source: int, target: int, method: str, data: bytes) -> bytes:
        try:
            await self._delay(source, target)
            if self.ordered and prev is not None and not prev.done():
                await asyncio.shield(prev)
            handler = self._handlers.get(target)
            if handler is None:
                raise Unreachable(f"node {target} is not registered")
            self.stats.delivered += 1
            error: RemoteError | None = None
            try:
                result = await handler(source, method, memoryview(data))
                if not isinstance(result, (bytes, bytearray, memoryview)):
                    raise TypeError(f"handler for {method!r} returned {type(result).__name__}, not bytes")
            except Exception as exc:
                error = RemoteError(f"node {target}: {type(exc).__name__}: {exc}")
                error.remote_type = type(exc).__name__  # type: ignore[attr-defined]
                error.remote_message = str(exc)  # type: ignore[attr-defined]
            finally:
                mine.set_result(None)
            self._send(target, source, "response", NetworkError)
            await self._delay(target, source)
            self.stats.responses += 1
            if error is not None:
                raise error
            return bytes(result)
        finally:
            self._pass_turn(link, prev, mine)

    @staticmethod
    def _pass_turn(link: _Link, prev: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        """Let the link's next request go once this one is done with the handler; a
        request lost before its turn still waits for the earlier ones (order is kept)."""
        if not mine.done():
            if prev is None or prev.done():
                mine.set_result(None)
            else:
                prev.add_done_callback(lambda _: _resolve(mine))
        if link.tail is mine and mine.done():
            link.tail = None

    def _send(self, source: int, target: int, what: str, error: type[Exception]) -> None:
        """Let one message leave ``source`` for ``target`` or raise ``error``."""
        if self.is_blocked(source, target):
            self.stats.blocked += 1
            raise error(f"{what} from node {source} to node {target} blocked by a partition")
        faults = self._faults(source, target)
        if faults.drop and self.rng.random() < faults.drop:
            self.stats.dropped += 1
            raise error(f"{what} from node {source} to node {target} dropped")

    async def _delay(self, source: int, target: int) -> None:
        delay = self._faults(source, target).delay
        if isinstance(delay, tuple):
            delay = self.rng.uniform(*delay)
        if delay > 0:
            await asyncio.sleep(delay)

    def _faults(self, source: int, target: int) -> LinkFaults:
        link = self._links.get((source, target))
        return link.faults if link is not None and link.faults is not None else self.default

    def _link(self, source: int, target: int) -> _Link:
        link = self._links.get((source, target))
        if link is None:
            link = self._links[(source, target)] = _Link()
        return link


class MemClient:
    """``source``'s client for ``target`` through a `MemRouter` (the `RpcClient` surface)."""

    def __init__(self, router: MemRouter, source: int, target: int) -> None:
        self.router = router
        self.source = source
        self.target = target
        self._closed = False

    async def call(self, method: str, payload: Buffer = b"", timeout: float | None = None) -> bytes:
        """As `RpcClient.call`."""
        if self._closed:
            raise NetworkError(f"client for node {self.target} is closed")
        return await self.router.call(self.source, self.target, method, payload, timeout)

    async def close(self) -> None:
        """Later calls raise `NetworkError`. Idempotent."""
        self._closed = True

    async def __aenter__(self) -> MemClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _check_drop(drop: float) -> float:
    if not 0.0 <= drop <= 1.0:
        raise ConfigError(f"drop probability must be in [0, 1], not {drop}")
    return float(drop)


def _check_delay(delay: Delay) -> Delay:
    if isinstance(delay, tuple):
        lo, hi = delay
        if not 0.0 <= lo <= hi:
            raise ConfigError(f"delay range must satisfy 0 <= low <= high, not {delay}")
        return (float(lo), float(hi))
    if delay < 0:
        raise ConfigError(f"delay must be >= 0, not {delay}")
    return float(delay)
