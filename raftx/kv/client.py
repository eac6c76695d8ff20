"""`KVClient`: the asyncio client of the replicated key-value service.

::

    async with KVClient(["1=127.0.0.1:7001", "2=127.0.0.1:7002", "3=127.0.0.1:7003"]) as kv:
        await kv.put("x", b"1")
        assert await kv.get("x") == b"1"          # linearizable (ReadIndex, thesis §6.4)
        assert await kv.cas("x", b"1", b"2")      # True: swapped
        assert await kv.delete("x")               # its revision (0 if it was absent)

Addresses are ``"HOST:PORT"``, ``"ID=HOST:PORT"`` or a mapping ``{id: "host:port"}``.
With a node id the connection's hello names that node (and is refused by any
other); a plain ``"host:port"`` connects with the *any target* hello, the node
names itself in its ack and the client files the address under that id from then
on (such a connection may call ``kv.*`` methods only, see `raftx.network.server`).
The client connects to
any node, follows redirects to the leader (and learns the other nodes' addresses
from them), and retries across leader changes and lost connections until the
operation's ``timeout``, then raises `raftx.errors.Timeout`.

Exactly-once writes (Raft §8): the client has a random 63-bit ``client_id`` and
numbers its writes (``serial``); a retried write carries the same serial, so the
state machine applies it once however often it is sent. Each command also
carries the lowest serial still waiting for an answer, so the state machine can
forget older answers (thesis §6.3).

Revisions, ranges, transactions, leases and watches (etcd's client surface)::

    rev = await kv.put("svc/a", b"10.0.0.1", lease=await kv.lease_grant(10))
    await kv.get_with_revision("svc/a")           # (b"10.0.0.1", rev)
    await kv.prefix("svc/")                       # [(b"svc/a", b"10.0.0.1", rev)]
    ok, _ = await kv.txn(compare=[Compare.mod_revision("x") == 0], success=[Op.put("x", b"1")])
    async for ev in kv.watch("svc/"):             # .type .key .value .mod_revision
        ...

A watch long-polls one node (any node: its applied state holds committed changes
only) on a connection of its own, and resumes from the revision after the last
event it delivered on another node when that one fails: no gaps, no duplicates,
across leader changes. A start revision that was compacted raises
`raftx.errors.Compacted`.

Batching: operations issued concurrently (from many tasks) are sent together,
up to ``max_batch`` per request, with at most ``max_in_flight`` requests
outstanding: one round trip, one proposal batch, one ReadIndex for many
operations. A write that timed out may or may not have been applied.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import logging
import random
import ssl as _ssl
from collections.abc import Iterable, Mapping
from typing import Any

from raftx.config import DEFAULT_CLUSTER_NAME
from raftx.errors import (
    BadCommand, ConfigError, HandshakeRejected, KVError, LeaseNotFound, NetworkError, NotAuthorized,
    RemoteError, RPCError, Timeout, Unreachable,
)
from raftx.kv import commands as C
from raftx.kv import protocol as P
from raftx.kv.addrs import parse_addrs, parse_client_addrs
from raftx.kv.keyspace import prefix_end
from raftx.kv.retry import RetryPolicy
from raftx.kv.routing import Routing
from raftx.kv.txn import Compare, Op
from raftx.kv.watch import Watch
from raftx.network.client import RpcClient

__all__ = ["KVClient", "Watch", "parse_addrs", "parse_client_addrs"]

logger = logging.getLogger(__name__)

_RETRY_STATUSES = (P.ITEM_REDIRECT, P.ITEM_UNAVAILABLE)




class _Op:
    __slots__ = ("fut", "op", "key", "args", "serial", "deadline")

    def __init__(self, fut: asyncio.Future[Any], op: int, key: bytes, args: tuple[Any, ...], serial: int,
                 deadline: float) -> None:
        self.fut = fut
        self.op = op
        self.key = key
        self.args = args
        self.serial = serial
        self.deadline = deadline


class KVClient(Routing):
    """A client of the key-value service (see the module docstring).

    ``cluster_name`` must match the nodes' ``Config.cluster_name`` (default for both:
    `raftx.config.DEFAULT_CLUSTER_NAME`, ``"raftx"``); ``ssl`` is a
    client `ssl.SSLContext` when the nodes use TLS (`raftx.network.tls.client_context`;
    its certificate should name no node: ``raftx-admin`` for membership changes, any
    other name for plain key-value use). ``admin_token``: sent with `member_add` /
    `member_remove` (the nodes' ``--admin-token-file``). ``timeout``: seconds an
    operation may take in total, retries included; ``attempt_timeout``: one
    request. ``linearizable``: the default for `get`. ``retry``: how long to wait between
    attempts (`raftx.kv.RetryPolicy`; every retry loop of the client uses it).
    """

    def __init__(
        self,
        addrs: Iterable[str] | Mapping[int, str],
        *,
        cluster_name: str = DEFAULT_CLUSTER_NAME,
        timeout: float = 10.0,
        attempt_timeout: float = 3.0,
        linearizable: bool = True,
        max_batch: int = 4096,
        max_in_flight: int = 4,
        ssl: _ssl.SSLContext | None = None,
        client_id: int | None = None,
        admin_token: bytes | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if max_batch < 1 or max_batch > P.MAX_BATCH or max_in_flight < 1:
            raise ConfigError(f"max_batch must be in 1..{P.MAX_BATCH} and max_in_flight >= 1")
        if timeout <= 0 or attempt_timeout <= 0:
            raise ConfigError("timeout and attempt_timeout must be > 0")
        known, plain = parse_client_addrs(addrs)
        #: Node id -> address. Negative keys stand for plain addresses whose node id is
        #: not known yet (any-target connections; see `_learn`).
        self.nodes: dict[int, str] = {**known, **{-1 - k: a for k, a in enumerate(plain) if a not in known.values()}}
        self.cluster_name = cluster_name
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.linearizable = linearizable
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.ssl = ssl
        #: How the client waits between the attempts of an operation.
        self.retry = retry if retry is not None else RetryPolicy()
        self._admin_token = admin_token
        self.client_id = client_id if client_id is not None else random.SystemRandom().randrange(1 << 62, 1 << 63)
        self.leader: int | None = None
        self._conns: dict[int, RpcClient] = {}
        self._retired: list[RpcClient] = []
        self._rotation = 0
        self._serial = 0
        self._outstanding: list[int] = []  # heap of serials of unanswered writes
        self._answered: set[int] = set()
        self._queues: dict[str, list[_Op]] = {"w": [], "r1": [], "rl": [], "r0": []}
        self._flush_due = False  # a _flush is scheduled
        self._sending = 0  # batches sent and not settled (each holds one of max_in_flight slots)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        #: Requests sent and retries made (for tests and benchmarks).
        self.requests = 0
        self.retries = 0

    # -- public API --------------------------------------------------------------------

    async def put(self, key: str | bytes, value: str | bytes, *, lease: int | None = None) -> int:
        """Set ``key`` to ``value`` (committed and applied when this returns); the new
        revision. With ``lease`` (a `lease_grant` id) the key is deleted when the lease
        ends (`raftx.errors.LeaseNotFound` if it already has)."""
        v = C.to_bytes(value, "value", C.MAX_VALUE_BYTES)
        if lease is None:
            rev: int = self._check(await self._write(C.PUT, key, (v,)))[1]
        else:
            if type(lease) is not int or not 0 <= lease < 2**63:
                raise BadCommand(f"lease must be a lease id, not {lease!r:.50}")
            rev = self._check(await self._write(C.PUT_LEASE, key, (v, lease)))[1]
        return rev

    async def delete(self, key: str | bytes) -> int:
        """Remove ``key``; the new revision, or 0 if it did not exist (so the result is
        truthy exactly when the key existed)."""
        r = self._check(await self._write(C.DELETE, key, ()))
        return int(r[1]) if r[0] == C.OK else 0

    async def txn(self, compare: Iterable[Compare] = (), success: Iterable[Op] = (),
                  failure: Iterable[Op] = ()) -> tuple[bool, list[Any]]:
        """Run ``success`` if every compare holds, else ``failure``, atomically in one log
        entry (`raftx.kv.txn`); ``(succeeded, responses)``, one response per operation
        of the branch that ran (a put: its revision; a delete: its revision or 0; a get:
        ``(value, mod_revision)`` or None)."""
        cmp = [c.to_wire() for c in compare]
        ok_ops = [o.to_wire() for o in success]
        fail_ops = [o.to_wire() for o in failure]
        C.encode_txn(cmp, ok_ops, fail_ops)  # BadCommand before anything is sent
        r = self._check(await self._write(C.TXN, b"", (cmp, ok_ops, fail_ops)))
        succeeded, responses = r[1]
        return bool(succeeded), [tuple(x) if isinstance(x, list) else x for x in responses]

    async def lease_grant(self, ttl_seconds: float) -> int:
        """A new lease of ``ttl_seconds``; its id. Keys put with it are deleted when it is
        revoked or expires (the leader decides expiry, `raftx.kv.leases`); keep it alive
        with `lease_keep_alive` well within the TTL."""
        if (isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float))
                or not 0 < ttl_seconds <= C.MAX_TTL_MS / 1000):  # NaN fails the comparison too
            raise BadCommand(f"a lease TTL is a number of seconds in (0, {C.MAX_TTL_MS // 1000}], "
                             f"not {ttl_seconds!r:.50}")
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        r = self._check(await self._write(C.LEASE_GRANT, b"", (ttl_ms,)))
        lease_id: int = r[1][0]
        return lease_id

    async def lease_keep_alive(self, lease_id: int) -> float:
        """Refresh the lease once; its TTL in seconds from now (`raftx.errors.LeaseNotFound`
        if it expired or was revoked)."""
        r = self._check(await self._write(C.LEASE_KEEPALIVE, b"", (self._lease_id(lease_id),)))
        return float(r[1]) / 1000

    async def lease_revoke(self, lease_id: int) -> int:
        """End the lease now, deleting its keys; the revision after that
        (`raftx.errors.LeaseNotFound` if it was already gone)."""
        r = self._check(await self._write(C.LEASE_REVOKE, b"", (self._lease_id(lease_id),)))
        rev: int = r[1]
        return rev

    @staticmethod
    def _lease_id(lease_id: Any) -> int:
        if type(lease_id) is not int or not 0 <= lease_id < 2**63:
            raise BadCommand(f"a lease id is an int in 0..2**63-1, not {lease_id!r:.50}")
        return lease_id

    async def get_with_revision(self, key: str | bytes, *,
                                linearizable: bool | None = None) -> tuple[bytes, int] | None:
        """``(value, mod_revision)`` of ``key``, or None (linearizable as `get`)."""
        k = C.to_bytes(key, "key", C.MAX_KEY_BYTES)
        rows = await self.range(k, k + b"\0", limit=1, linearizable=linearizable)
        if not rows:
            return None
        _, value, rev = rows[0]
        assert value is not None
        return value, rev

    async def range(self, start: str | bytes, end: str | bytes | None, *, limit: int | None = None,
                    keys_only: bool = False,
                    linearizable: bool | None = None) -> list[tuple[bytes, bytes | None, int]]:
        """``(key, value, mod_revision)`` for every key with ``start <= key < end`` (``end``
        None: to the last key) in key order, at most ``limit``; ``keys_only``: values are
        None. Linearizable as `get`."""
        s = C.to_bytes(start, "start", C.MAX_KEY_BYTES)
        # one byte longer than a key: get_with_revision's end is key + b"\0"
        e = None if end is None else C.to_bytes(end, "end", C.MAX_KEY_BYTES + 1)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise BadCommand(f"limit must be an int >= 0, not {limit!r:.50}")
        lin = self.linearizable if linearizable is None else linearizable
        payload = P.pack([lin, s, e, limit or 0, bool(keys_only)])
        item = await self._request(P.RANGE, payload, self.timeout, any_node=not lin, per_attempt=True)
        _, rows = item
        return [(k, v, rev) for k, v, rev in rows]

    async def prefix(self, prefix: str | bytes, *, limit: int | None = None, keys_only: bool = False,
                     linearizable: bool | None = None) -> list[tuple[bytes, bytes | None, int]]:
        """`range` of every key starting with ``prefix``."""
        p = C.to_bytes(prefix, "prefix", C.MAX_KEY_BYTES)
        return await self.range(p, prefix_end(p), limit=limit, keys_only=keys_only, linearizable=linearizable)

    def watch(self, prefix: str | bytes = b"", start_revision: int | None = None, *,
              max_wait: float = 10.0) -> Watch:
        """The changes of keys starting with ``prefix``, from ``start_revision`` (None:
        from the next change) on, as an async iterator of `raftx.kv.keyspace.Event`
        (``.type``, ``.key``, ``.value``, ``.mod_revision``); see the module docstring.
        ``max_wait``: seconds one long poll waits. ``async with`` (or `Watch.close`)
        closes its connection."""
        p = C.to_bytes(prefix, "prefix", C.MAX_KEY_BYTES)
        if start_revision is not None and (type(start_revision) is not int or start_revision < 1):
            raise BadCommand(f"start_revision must be an int >= 1, not {start_revision!r:.50}")
        return Watch(self, p, start_revision or 0, max_wait)

    async def cas(self, key: str | bytes, expected: str | bytes | None, new: str | bytes | None) -> bool:
        """Compare-and-swap: set ``key`` to ``new`` if its value is ``expected``; True if swapped.

        ``expected=None``: only if absent; ``new=None``: delete.
        """
        exp = None if expected is None else C.to_bytes(expected, "expected", C.MAX_VALUE_BYTES)
        nw = None if new is None else C.to_bytes(new, "new", C.MAX_VALUE_BYTES)
        status: int = self._check(await self._write(C.CAS, key, (exp, nw)))[0]
        return status == C.OK

    async def get(self, key: str | bytes, *, linearizable: bool | None = None, lease: bool = False) -> bytes | None:
        """The value of ``key`` or None. Linearizable unless ``linearizable=False``
        (then any node answers from what it has applied, possibly stale). ``lease=True``:
        the leader answers a linearizable read from its read lease, without a quorum
        round while the lease holds (`raftx.ReadPolicy.LEASE_READ`)."""
        lin = self.linearizable if linearizable is None else linearizable
        k = C.to_bytes(key, "key", C.MAX_KEY_BYTES)
        queue = ("rl" if lease else "r1") if lin else "r0"
        r = self._check(await self._submit(queue, C.GET, k, (), 0))
        return r[1] if r[0] == C.OK else None

    async def status(self, node_id: int | None = None) -> dict[str, Any]:
        """``kv.status`` of ``node_id`` (default: the leader if known, else any node that answers)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        backoff = self.retry.backoff()
        last: BaseException | None = None
        while True:
            target = node_id if node_id is not None else self._pick()
            try:
                raw = await self._conn(target).call(P.STATUS, b"", self._attempt(deadline))
                self._learn(target)
                return P.decode_status(raw)
            except (RPCError, BadCommand) as exc:
                last = exc
                if isinstance(exc, HandshakeRejected) and (node_id is not None or len(self.nodes) == 1):
                    raise  # refused by the one node asked (wrong cluster name, ...): retrying cannot help
                if isinstance(exc, Timeout):
                    self._drop(target)
                if node_id is None:
                    self._failed(target)
            if loop.time() >= deadline:
                raise Timeout(f"kv.status: no answer within {self.timeout}s (last error: {last})")
            await self.retry.pause(backoff, deadline)

    async def member_add(self, node_id: int, addr: str, timeout: float = 60.0) -> dict[str, Any]:
        """Add node ``node_id`` (serving at ``addr``) to the cluster: the leader adds it as a
        learner, waits until it caught up, then makes it a voter (thesis §4.3). Returns the
        new membership ``{"members", "learners", "nodes"}``."""
        parse_addrs({node_id: addr})  # ConfigError if malformed
        return await self._admin(P.MEMBER_ADD, [node_id, addr], timeout)

    async def member_remove(self, node_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """Remove node ``node_id`` from the cluster (a voter leaves through joint consensus,
        a learner is dropped). Returns the new membership."""
        parse_addrs({node_id: "0:1"})  # ConfigError if not a node id
        return await self._admin(P.MEMBER_REMOVE, [node_id], timeout)

    async def _admin(self, method: str, request: list[Any], timeout: float) -> dict[str, Any]:
        """One membership request (`_request`); a missing admin credential raises `NotAuthorized`."""
        payload = P.pack(request if self._admin_token is None else [*request, self._admin_token])
        item = await self._request(method, payload, timeout)
        if not isinstance(item, dict):
            raise KVError(f"malformed {method} answer {item!r:.100}")
        return item

    async def _request(self, method: str, payload: bytes, timeout: float, *, any_node: bool = False,
                       per_attempt: bool = False) -> Any:
        """One single-item request to the leader (following redirects; ``any_node``:
        to any node), retried on connection failures and retry statuses until
        ``timeout`` (one call may take all of it, or ``attempt_timeout`` with
        ``per_attempt``); the item's value. Errors from the node (`ChangeMembershipError`
        and the like) come back as `RemoteError` and are not retried."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        backoff = self.retry.backoff()
        last = "no attempt"
        while True:
            target = self._pick()
            try:
                call_timeout = self._attempt(deadline) if per_attempt else max(0.001, deadline - loop.time())
                raw = await self._conn(target).call(method, payload, call_timeout)
                target = self._learn(target)
                reply = P.decode_reply(raw)
            except RemoteError as exc:
                remote_type = getattr(exc, "remote_type", "")
                if remote_type in ("BadCommand", "NotAuthorized"):
                    cls = BadCommand if remote_type == "BadCommand" else NotAuthorized
                    raise cls(getattr(exc, "remote_message", str(exc))) from None
                raise
            except (Unreachable, NetworkError, Timeout, BadCommand) as exc:
                self._failed(target)
                if isinstance(exc, Timeout) and per_attempt:
                    self._drop(target)  # answered in order: do not queue behind a stuck request
                last = f"node {target}: {type(exc).__name__}: {exc}"
            else:
                if reply[0] == P.REPLY_RESULTS:
                    item = reply[1][0] if reply[1] else None
                    if not (isinstance(item, list) and len(item) == 2):
                        raise KVError(f"malformed {method} answer {item!r:.100}")
                    if item[0] not in _RETRY_STATUSES:
                        if not any_node:
                            self.leader = target
                        self._check(item)
                        return item[1]
                    self._failed(target)
                    last = f"node {target}: {item[1]!r:.200}"
                else:
                    self._redirect(target, reply[1], reply[2])
                    last = f"node {target} is not the leader (leader: {reply[1]})"
            if loop.time() >= deadline:
                raise Timeout(f"{method}: not done within {timeout}s (last error: {last})")
            await self.retry.pause(backoff, deadline)

    async def close(self) -> None:
        """Cancel pending operations and close every connection. Idempotent."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        for q in self._queues.values():
            self._fail(q, KVError("client closed"))
            q.clear()
        conns = [*self._conns.values(), *self._retired]
        self._conns, self._retired = {}, []
        for c in conns:
            await c.close()  # idempotent

    async def __aenter__(self) -> KVClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- submission and batching ---------------------------------------------------------

    @staticmethod
    def _check(r: Any) -> Any:
        status = r[0]
        if status == C.BAD_COMMAND:
            raise BadCommand(str(r[1]))
        if status == C.LEASE_NOT_FOUND:
            raise LeaseNotFound(int(r[1]))
        if status not in (C.OK, C.NOT_FOUND, C.CAS_MISMATCH):
            raise KVError(f"unexpected response status {status} ({r[1]!r:.100})")
        return r

    def _write(self, op: int, key: str | bytes, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one write under the next serial; the future of its answer (no coroutine
        per write: the serial is retired when the operation leaves the client, `_retire`)."""
        k = C.to_bytes(key, "key", C.MAX_KEY_BYTES)
        if self._closed:
            raise KVError("client closed")
        self._serial += 1
        heapq.heappush(self._outstanding, self._serial)
        return self._submit("w", op, k, args, self._serial)

    def _retire(self, ops: list[_Op]) -> None:
        """``ops`` left the client (answered, failed, timed out, or given up by their
        caller): their serials no longer hold the acked floor back."""
        answered, out = self._answered, self._outstanding
        for op in ops:
            if op.serial:
                answered.add(op.serial)
        while out and out[0] in answered:
            answered.discard(heapq.heappop(out))

    def _acked(self) -> int:
        """The lowest serial still waiting for its answer (thesis §6.3)."""
        return self._outstanding[0] if self._outstanding else self._serial + 1

    def _submit(self, queue: str, op: int, key: bytes, args: tuple[Any, ...], serial: int) -> asyncio.Future[Any]:
        if self._closed:
            raise KVError("client closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queues[queue].append(_Op(fut, op, key, args, serial, loop.time() + self.timeout))
        if not self._flush_due:
            # Everything submitted in this loop iteration leaves together.
            self._flush_due = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        """Send queued operations in batches while request slots are free (a loop
        callback: no task between a caller and its request)."""
        self._flush_due = False
        while not self._closed and self._sending < self.max_in_flight:
            for name, q in self._queues.items():
                if q:
                    # Spread what is queued over the free request slots, so that the
                    # requests pipeline through the cluster instead of one big batch
                    # waiting for another.
                    n = min(self.max_batch, -(-len(q) // (self.max_in_flight - self._sending)))
                    batch, self._queues[name] = q[:n], q[n:]
                    self._sending += 1
                    self._start(name, batch)
                    break
            else:
                return

    def _slot_free(self) -> None:
        """A request of `_flush`'s ended (answered, or given up after its retries)."""
        self._sending -= 1
        if not self._flush_due and any(self._queues.values()):
            # Soon, not now: the callers just answered run first and retire their
            # serials, so the next batch carries an up-to-date acked floor (§6.3).
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    # -- sending with retries -------------------------------------------------------------

    def _start(self, kind: str, ops: list[_Op]) -> None:
        """A batch's first attempt: sent from this callback, its answer handled in one,
        when the connection to the target is up; otherwise (and for every retry) by a
        `_send` task."""
        ops = self._live(kind, ops, "no attempt")
        if not ops:
            self._slot_free()
            return
        target = self._pick()
        conn = self._conns.get(target)
        fut = None
        if conn is not None and conn.connected:
            fut = conn.call_nowait(*self._encode(kind, ops))
        if fut is None:
            self._spawn(self._send(kind, ops))
            return
        self.requests += 1
        loop = asyncio.get_running_loop()
        timeout = self._attempt(min(op.deadline for op in ops))
        timer = loop.call_at(loop.time() + timeout, fut.cancel)
        fut.add_done_callback(lambda f: self._settle(kind, target, ops, f, timer, timeout))

    def _settle(self, kind: str, target: int, ops: list[_Op], fut: asyncio.Future[bytes],
                timer: asyncio.TimerHandle, timeout: float) -> None:
        timer.cancel()
        if self._closed:
            self._fail(ops, KVError("client closed"))
            return
        try:
            if fut.cancelled():
                exc: BaseException | None = Timeout(f"no answer from node {target} within {timeout:.3g}s")
            else:
                exc = fut.exception()
            retry, last = self._outcome(kind, target, ops, None if exc is not None else fut.result(), exc)
        except BadCommand as refused:
            self._fail(ops, refused)
            self._slot_free()
            return
        if retry:
            self._spawn(self._send(kind, retry, last))
        else:
            self._slot_free()

    async def _send(self, kind: str, ops: list[_Op], last: str | None = None) -> None:
        """Attempts of one batch until every operation is answered or past its deadline;
        ``last``: why the attempt before this task failed (the task then backs off first)."""
        backoff = self.retry.backoff()
        try:
            while True:
                if last is not None:
                    self.retries += 1
                    await self.retry.pause(backoff, min(op.deadline for op in ops))
                ops = self._live(kind, ops, last or "no attempt")
                if not ops:
                    return
                try:
                    ops, last = await self._attempt_once(kind, self._pick(), ops, min(op.deadline for op in ops))
                except BadCommand as exc:
                    self._fail(ops, exc)
                    return
                if not ops:
                    return
        except asyncio.CancelledError:
            self._fail(ops, KVError("client closed"))
            raise
        finally:
            self._slot_free()

    def _live(self, kind: str, ops: list[_Op], last: str) -> list[_Op]:
        """The operations of ``ops`` still waiting; those past their deadline time out."""
        now = asyncio.get_running_loop().time()
        live, gone = [], []
        for op in ops:
            if op.fut.done():  # its caller gave up
                gone.append(op)
            elif now >= op.deadline:
                op.fut.set_exception(Timeout(
                    f"key-value operation on {op.key[:50]!r} not answered within {self.timeout}s "
                    f"(last error: {last}){'; it may have been applied' if kind == 'w' else ''}"))
                gone.append(op)
            else:
                live.append(op)
        if gone:
            self._retire(gone)
        return live

    def _fail(self, ops: list[_Op], exc: BaseException) -> None:
        for op in ops:
            if not op.fut.done():
                op.fut.set_exception(exc)
        self._retire(ops)

    def _encode(self, kind: str, ops: list[_Op]) -> tuple[str, bytes]:
        """The request of a batch: its method and payload."""
        if kind != "w":
            return P.READ, P.encode_read(kind != "r0", [op.key for op in ops], lease=kind == "rl")
        acked = self._acked()
        cid = self.client_id
        cmds = []
        for op in ops:
            if op.op == C.PUT:
                cmds.append(C.encode_put(op.key, op.args[0], cid, op.serial, acked))
            elif op.op == C.DELETE:
                cmds.append(C.encode_delete(op.key, cid, op.serial, acked))
            elif op.op == C.CAS:
                cmds.append(C.encode_cas(op.key, op.args[0], op.args[1], cid, op.serial, acked))
            elif op.op == C.PUT_LEASE:
                cmds.append(C.encode_put_lease(op.key, op.args[0], op.args[1], cid, op.serial, acked))
            elif op.op == C.TXN:
                cmds.append(C.encode_txn(op.args[0], op.args[1], op.args[2], cid, op.serial, acked))
            else:
                cmds.append(C.encode_lease(op.op, op.args[0], cid, op.serial, acked))
        return P.WRITE, P.encode_write(cmds)

    async def _attempt_once(self, kind: str, target: int, ops: list[_Op], deadline: float) -> tuple[list[_Op], str]:
        """One request to ``target``; returns the ops to retry and why."""
        method, payload = self._encode(kind, ops)
        self.requests += 1
        try:
            raw = await self._conn(target).call(method, payload, self._attempt(deadline))
        except (RemoteError, Unreachable, NetworkError, Timeout) as exc:
            return self._outcome(kind, target, ops, None, exc)
        return self._outcome(kind, target, ops, raw, None)

    def _outcome(self, kind: str, target: int, ops: list[_Op], raw: bytes | None,
                 exc: BaseException | None) -> tuple[list[_Op], str]:
        """Settle the operations of one request from its answer ``raw`` (or its failure
        ``exc``); the ones to retry and why. A request the node refused as malformed
        raises `BadCommand` (retrying cannot help)."""
        if exc is None:
            target = self._learn(target)
            try:
                reply = P.decode_reply(raw)
            except BadCommand as bad:
                exc = bad
        if isinstance(exc, RemoteError):
            if getattr(exc, "remote_type", "") == "BadCommand":
                raise BadCommand(getattr(exc, "remote_message", str(exc))) from None
            self._failed(target)
            return ops, f"node {target}: {exc}"
        if exc is not None:
            self._failed(target)
            if isinstance(exc, Timeout):
                # The server answers a connection's requests in order: one stuck behind a
                # request that will not finish soon (no quorum) would wait too. Reconnect.
                self._drop(target)
            return ops, f"node {target}: {type(exc).__name__}: {exc}"
        if reply[0] == P.REPLY_REDIRECT:
            self._redirect(target, reply[1], reply[2])
            return ops, f"node {target} is not the leader (leader: {reply[1]})"
        self.leader = target
        results = reply[1]
        if len(results) != len(ops):
            self._failed(target)
            return ops, f"node {target} answered {len(results)} items for {len(ops)}"
        retry: list[_Op] = []
        settled: list[_Op] = []
        why = ""
        for op, r in zip(ops, results):
            status = r[0] if isinstance(r, list) and len(r) == 2 else None
            if status in _RETRY_STATUSES:
                retry.append(op)
                if status == P.ITEM_REDIRECT and isinstance(r[1], list) and len(r[1]) == 2:
                    self._redirect(target, *r[1])
                why = f"node {target}: {r[1]!r:.200}"
            elif status is None:
                retry.append(op)
                why = f"node {target}: malformed item {r!r:.100}"
            else:
                if not op.fut.done():
                    op.fut.set_result(r)
                settled.append(op)
        self._retire(settled)
        return retry, why

    def _attempt(self, deadline: float) -> float:
        return max(0.001, min(self.attempt_timeout, deadline - asyncio.get_running_loop().time()))
