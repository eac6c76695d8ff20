"""The simulated network: the production RPC seam over seeded, faulty in-memory links.

`SimNetworkFactory` is a `raftx.network.RaftNetworkFactory`, like
`raftx.network.raft_rpc.MemNetworkFactory`: each target gets a real
`raftx.network.raft_rpc.RpcRaftNetwork`, so every request and response is encoded
and decoded by the production codec, and served on the target by the production
`raftx.network.raft_rpc.RaftRpcHandler` (`SimNetwork.serve`). Only the wire is
simulated, by `SimNetwork.call`:

* every message travels on a *directed* link ``(src, dst)`` with `LinkFaults`: a drop
  probability, a uniform delay range (ms) and a reorder probability (an extra delay,
  so later messages overtake it; with none, a link delivers in order like one TCP
  connection);
* a link can be *blocked* (a one-way partition: ``a -> b`` blocked while ``b -> a``
  works, openraft's ``t14_one_way_isolation``); `partition` and `isolate` block both
  directions between groups;
* a request that is blocked, dropped, or sent to a node that is down fails the
  caller with `raftx.errors.Unreachable` after its link delay (the handler did not
  run); a lost response raises `raftx.errors.NetworkError` (the handler ran); no
  answer within the caller's deadline raises `raftx.errors.Timeout`. A request to a
  crashed node is never answered (its process is gone), so the caller times out.

The request runs on the target as a task in the *target's* context (its `Life`), the
response is delivered in the caller's: a crashed node neither serves nor hears.
Link delays are real virtual time (`SimLoop.call_real_later`), not the sender's
drifting clock; the caller's deadline is on its own clock.
All randomness comes from the injected ``rng``.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from dataclasses import dataclass, replace
from typing import Any, Callable, Coroutine, Iterable, Iterator

from raftx.config import Config
from raftx.errors import ConfigError, NetworkError, RemoteError, Timeout, Unreachable
from raftx.network.backoff import Backoff
from raftx.network.raft_rpc import RpcRaftNetwork
from raftx.network.wire import Buffer
from raftx.testing.simulation.loop import SimLoop
from raftx.types import BasicNode

__all__ = ["LinkFaults", "SimNetwork", "SimNetworkFactory"]

Handler = Callable[[int, str, memoryview], Coroutine[Any, Any, bytes]]


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Fault knobs of one directed link (probabilities in [0, 1], delays in ms)."""

    drop: float = 0.0
    min_delay: float = 0.5
    max_delay: float = 3.0
    reorder: float = 0.0
    reorder_delay: float = 40.0

    def validate(self) -> LinkFaults:
        for name in ("drop", "reorder"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ConfigError(f"LinkFaults.{name} must be a probability, not {p!r}")
        if not 0 <= self.min_delay <= self.max_delay or self.reorder_delay < 0:
            raise ConfigError(f"bad delays: {self!r}")
        return self


class SimNetwork:
    """Links between simulated nodes (see the module docstring)."""

    def __init__(self, loop: SimLoop, rng: random.Random,
                 default: LinkFaults | None = None) -> None:
        self.loop = loop
        self.rng = rng
        self.default = (default or LinkFaults()).validate()
        self._links: dict[tuple[int, int], LinkFaults] = {}
        self._blocked: set[tuple[int, int]] = set()
        self._servers: dict[int, tuple[Handler, contextvars.Context]] = {}
        #: Per link, the virtual time (s) the last in-order message arrives (FIFO links).
        self._arrival: dict[tuple[int, int], float] = {}
        self.sent = self.dropped = self.blocked = 0

    # -- nodes -----------------------------------------------------------------------

    def serve(self, node_id: int, handler: Handler, context: contextvars.Context) -> None:
        """``node_id`` is up: serve its requests with ``handler`` in ``context`` (its life)."""
        self._servers[node_id] = (handler, context)

    def down(self, node_id: int) -> None:
        """``node_id`` crashed: requests to it go unanswered."""
        self._servers.pop(node_id, None)

    # -- faults ------------------------------------------------------------------------

    def link(self, src: int, dst: int) -> LinkFaults:
        return self._links.get((src, dst), self.default)

    def set_link(self, src: int, dst: int, **changes: Any) -> None:
        self._links[(src, dst)] = replace(self.link(src, dst), **changes).validate()

    def block(self, src: int, dst: int) -> None:
        """Drop everything from ``src`` to ``dst`` (one direction)."""
        self._blocked.add((src, dst))

    def partition(self, a: Iterable[int], b: Iterable[int]) -> None:
        """Cut every link between group ``a`` and group ``b``, both directions."""
        bs = list(b)
        for x in a:
            for y in bs:
                if x != y:
                    self._blocked.add((x, y))
                    self._blocked.add((y, x))

    def isolate(self, node: int, everyone: Iterable[int]) -> None:
        self.partition([node], [n for n in everyone if n != node])

    def heal(self) -> None:
        """Unblock every link and reset every link's knobs to the default."""
        self._blocked.clear()
        self._links.clear()

    def is_blocked(self, src: int, dst: int) -> bool:
        return (src, dst) in self._blocked

    # -- the wire --------------------------------------------------------------------

    def _delay(self, src: int, dst: int) -> float:
        """Seconds from now until a message sent now on ``src -> dst`` arrives."""
        f = self.link(src, dst)
        d = self.rng.uniform(f.min_delay, f.max_delay) / 1000.0
        now = self.loop.real_time()  # the wire's clock, not the sender's
        if f.reorder and self.rng.random() < f.reorder:
            return d + self.rng.uniform(0, f.reorder_delay) / 1000.0  # overtaken by later messages
        key = (src, dst)
        at = max(now + d, self._arrival.get(key, 0.0))  # in order, like one connection
        self._arrival[key] = at
        return at - now

    def _lost(self, src: int, dst: int) -> bool:
        if (src, dst) in self._blocked:
            self.blocked += 1
            return True
        f = self.link(src, dst)
        if f.drop and self.rng.random() < f.drop:
            self.dropped += 1
            return True
        return False

    async def call(self, src: int, dst: int, method: str, payload: Buffer, timeout: float | None) -> bytes:
        """One RPC from ``src`` to ``dst`` (see the module docstring for the failures)."""
        answer = self.send(src, dst, method, payload)
        try:
            async with asyncio.timeout(timeout):
                return await answer
        except TimeoutError:
            raise Timeout(f"{method} from node {src} to node {dst} timed out after {timeout}s") from None

    def send(self, src: int, dst: int, method: str, payload: Buffer) -> asyncio.Future[bytes]:
        """`call` without its deadline: the future of the answer (or of the failure)."""
        loop = self.loop
        self.sent += 1
        answer: asyncio.Future[bytes] = loop.create_future()
        data = bytes(payload)
        lost = self._lost(src, dst)
        delay = self._delay(src, dst)
        caller = contextvars.copy_context()
        if lost:
            loop.call_real_later(delay, _fail, answer, Unreachable(f"{method} from node {src} to node {dst} lost"))
        else:
            # In flight it belongs to no node: it arrives even if the sender crashes meanwhile.
            loop.call_real_later(delay, self._arrive, src, dst, method, data, answer, caller, context=_WIRE)
        return answer

    def _arrive(self, src: int, dst: int, method: str, data: bytes, answer: asyncio.Future[bytes],
                caller: contextvars.Context) -> None:
        server = self._servers.get(dst)
        if server is None:
            return  # the node is down: nobody answers (the caller times out)
        handler, ctx = server

        def reply(result: Any, exc: BaseException | None) -> None:
            if not isinstance(exc, asyncio.CancelledError):  # the node crashed meanwhile
                self._respond(src, dst, method, result, exc, answer, caller)

        # As `raftx.network.server` does: a request the handler can start (AppendEntries)
        # is handed to the node on arrival and answered when ready, others run as a task.
        start = getattr(handler, "start", None)
        if start is not None:
            try:
                if ctx.run(start, src, method, memoryview(data), reply):
                    return
            except Exception as exc:  # refused before it reached the node
                reply(None, exc)
                return
        def done(task: asyncio.Task[bytes]) -> None:
            if not task.cancelled():
                exc = task.exception()
                reply(None if exc is not None else task.result(), exc)

        self.loop.create_task(handler(src, method, memoryview(data)), context=ctx).add_done_callback(done, context=ctx)

    def _respond(self, src: int, dst: int, method: str, value: Any, exc: BaseException | None,
                 answer: asyncio.Future[bytes], caller: contextvars.Context) -> None:
        result: Any
        if exc is not None:
            err = RemoteError(f"node {dst}: {type(exc).__name__}: {exc}")
            err.remote_type = type(exc).__name__  # type: ignore[attr-defined]
            err.remote_message = str(exc)  # type: ignore[attr-defined]
            result = err
        else:
            result = bytes(value)
        if self._lost(dst, src):
            result = NetworkError(f"response to {method} from node {dst} to node {src} lost")
        self.loop.call_real_later(self._delay(dst, src), _settle, answer, result, context=caller)


#: The context of messages on the wire (no `Life`: they outlive their sender).
_WIRE = contextvars.Context()


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _settle(fut: asyncio.Future[Any], value: Any) -> None:
    if fut.done():
        return
    if isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)


class _Caller:
    """``src``'s RPC caller for ``dst`` (the `RpcClient` / `MemClient` surface)."""

    def __init__(self, net: SimNetwork, src: int, dst: int) -> None:
        self.net, self.src, self.dst = net, src, dst

    #: Like a connected `RpcClient`: `call_nowait` always sends (the link decides the fate).
    connected = True

    async def call(self, method: str, payload: Buffer = b"", timeout: float | None = None) -> bytes:
        return await self.net.call(self.src, self.dst, method, payload, timeout)

    def call_nowait(self, method: str, payload: Buffer = b"") -> asyncio.Future[bytes]:
        return self.net.send(self.src, self.dst, method, payload)

    async def close(self) -> None:
        pass


class _SimRaftNetwork(RpcRaftNetwork):
    """`RpcRaftNetwork` whose backoff jitter comes from the simulation's random stream."""

    def __init__(self, caller: _Caller, chunk_size: int, rng: random.Random) -> None:
        super().__init__(caller, chunk_size)
        self._rng = rng

    def backoff(self) -> Iterator[float]:
        b = self._backoff
        return iter(Backoff(b.initial, b.maximum, factor=b.factor, jitter=b.jitter, rng=self._rng))


class SimNetworkFactory:
    """The `raftx.network.RaftNetworkFactory` of node ``node_id`` on a `SimNetwork`."""

    def __init__(self, net: SimNetwork, node_id: int, rng: random.Random) -> None:
        self.net = net
        self.node_id = node_id
        self.rng = rng
        self.chunk_size = 1 << 20

    def bind_local(self, node_id: int, config: Config) -> None:
        """Called by `raftx.Raft.new` (as for the production factories)."""
        self.chunk_size = config.snapshot_max_chunk_size

    async def new_client(self, target: int, node: BasicNode) -> RpcRaftNetwork:
        return _SimRaftNetwork(_Caller(self.net, self.node_id, target), self.chunk_size, self.rng)
