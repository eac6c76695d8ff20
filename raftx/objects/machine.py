"""`ObjectStateMachine`: replicated objects as a node's Raft state machine.

Binding (as PySyncObj's consumers)::

    counter, locks = ReplCounter(), ReplLockManager(auto_unlock_time=10)
    sm = await ObjectStateMachine.open([counter, locks], "/var/lib/app/snap")
    raft = await Raft.new(1, config, network, log_store, sm)
    sm.bind(raft)
    await counter.inc(5)                 # replicated through this node (forwarded to the leader)
    counter.get()                        # local read of the applied state

Commands (msgpack, one log entry each): ``[CALL, object_index, method, args, kwargs,
client_id, serial, acked]``, ``[CLOCK, time_ms]`` and ``[VERSION, version, client_id,
serial, acked]``. Objects are addressed by their position in the list, so every node
passes the same objects in the same order.

Exactly once: each bound node is one client session (a random 63-bit ``client_id``
and a serial per call); a call whose outcome is unknown
(`raftx.errors.WriteOutcomeUnknown`: the leader was lost mid-forward) is retried
with the same serial and the state machine answers the recorded response instead
of applying it again (`raftx.kv.sessions.SessionTable`, Raft thesis §6.3). The
session table is part of the snapshot.

Time: only the leader's clock enters the state, through ``CLOCK`` entries it
proposes while some object asks for one (`ReplicatedObject.repl_needs_clock`);
``log_time_ms`` is the largest time seen in the log, so it never goes back and is
the same on every replica at the same index (`raftx.objects.ReplLockManager`).

Snapshots are handled for the user: the state of every object
(`ReplicatedObject.repl_getstate`), the log clock, the active version and the
sessions, stored durably in a `raftx.storage.FileSnapshotStore` when a directory is
given (the format of `raftx.storage.MemStateMachine`: a header, then one item).

An entry that is not a valid command (bad bytes, unknown object or method, a method
above the active version, a method that raises) changes nothing and answers an
error, the same on every replica; the caller gets `ReplicatedCallError`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import msgpack

from raftx.errors import Fatal, RaftError, StorageCorrupted, StorageError, WriteOutcomeUnknown
from raftx.kv.commands import KVResponse
from raftx.kv.sessions import SessionTable
from raftx.objects.base import ReplicatedObject, replicated_methods
from raftx.storage.snapshot import log_id_from_list, log_id_to_list, pack_chunks, unpack_items
from raftx.storage.state_machine import MemStateMachine
from raftx.types import Entry, LogId, Membership, ServerState, SnapshotMeta, StoredMembership

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = ["ObjectStateMachine", "ReplicatedCallError", "VersionError"]

logger = logging.getLogger(__name__)

CALL, CLOCK, VERSION = 0, 1, 2
_OK, _ERROR = 0, 1

_packb: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


class ReplicatedCallError(RaftError):
    """A replicated call was applied as an error on every replica (the method raised,
    or the command was not valid there); nothing changed unless the method itself
    changed state before raising."""


class VersionError(RaftError):
    """A method needs a newer active version of the method set than the cluster runs
    (`ObjectStateMachine.upgrade`), or this node's code is older than the cluster's."""


def _encode(command: list[Any]) -> bytes:
    """msgpack bytes of ``command``; TypeError (nothing proposed) if it cannot be encoded."""
    try:
        return _packb(command)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"arguments of a replicated call must be msgpack-encodable: {exc}") from None


class ObjectStateMachine(MemStateMachine):
    """The state machine of a node whose state is a list of `ReplicatedObject` s
    (see the module docstring). ``snapshot_dir``: durable snapshots there;
    ``call_timeout``: seconds a call may spend retrying an unknown outcome."""

    def __init__(self, objects: Sequence[ReplicatedObject], snapshot_dir: str | os.PathLike[str] | None = None,
                 *, fsync: bool = True, call_timeout: float = 30.0) -> None:
        super().__init__(snapshot_dir, fsync=fsync)
        objs = list(objects)
        for o in objs:
            if not isinstance(o, ReplicatedObject):
                raise TypeError(f"replicated objects must derive from ReplicatedObject, not {type(o).__name__}")
            if o._repl_machine is not None:
                raise ValueError(f"{type(o).__name__} is already bound to another ObjectStateMachine")
        self.objects = objs
        self._index = {id(o): k for k, o in enumerate(objs)}
        self._methods = [replicated_methods(type(o)) for o in objs]
        #: The newest method-set version this node's code knows.
        self.code_version = max((v for ms in self._methods for _, v in ms.values()), default=0)
        #: The cluster's active version (replicated).
        self.version = 0
        #: The log clock (milliseconds since the epoch, the leader's; never goes back).
        self.log_time_ms = 0
        self.sessions = SessionTable()
        self.call_timeout = call_timeout
        self.raft: Raft | None = None
        self.client_id = random.SystemRandom().randrange(1, 2**63)
        self._serial = 0
        self._in_flight: set[int] = set()
        self._applied = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._on_ready: list[Callable[[], Any]] = []
        self._on_leader_change: list[Callable[[int | None], Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        for o in objs:
            o._repl_machine = self

    @classmethod
    async def open(cls, objects: Sequence[ReplicatedObject],  # type: ignore[override]
                   snapshot_dir: str | os.PathLike[str] | None = None, *, fsync: bool = True,
                   call_timeout: float = 30.0) -> ObjectStateMachine:
        """A machine restored from the newest snapshot in ``snapshot_dir`` (if any):
        the objects get their state back; the log replays the rest."""
        sm = cls(objects, snapshot_dir, fsync=fsync, call_timeout=call_timeout)
        await sm._restore_latest()
        return sm

    # -- binding and callbacks -------------------------------------------------------

    def bind(self, raft: Raft, *, on_ready: Callable[[], Any] | None = None,
             on_leader_change: Callable[[int | None], Any] | None = None) -> None:
        """Replicate the objects' calls through ``raft`` (call on its event loop, once).

        ``on_ready()`` is called once the local state is at least as new as the
        cluster's committed state at some moment after binding (a forwarded
        linearizable read succeeded); ``on_leader_change(leader_id)`` on each change of
        the known leader (None during elections). Either may be a coroutine function.
        The machine's background tasks (callbacks, the leader's clock entries, lock
        refreshes) end when the node stops, or earlier with `close`.
        """
        if self.raft is not None:
            raise RuntimeError("this ObjectStateMachine is already bound")
        self.raft = raft
        self._loop = asyncio.get_running_loop()
        if on_ready is not None:
            self._on_ready.append(on_ready)
        if on_leader_change is not None:
            self._on_leader_change.append(on_leader_change)
        self._tasks = [self._loop.create_task(self._ready_watch()), self._loop.create_task(self._leader_watch()),
                       self._loop.create_task(self._clock())]
        self._loop.create_task(self._stop_watch())

    def on_ready(self, callback: Callable[[], Any]) -> None:
        """Add an on-ready callback (see `bind`)."""
        self._on_ready.append(callback)

    def on_leader_change(self, callback: Callable[[int | None], Any]) -> None:
        """Add an on-leader-change callback (see `bind`)."""
        self._on_leader_change.append(callback)

    async def close(self) -> None:
        """Stop the machine's background tasks (the node is shut down separately)."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                pass

    def sync(self, obj: ReplicatedObject, timeout: float | None = None) -> Any:
        """A synchronous front end to ``obj`` for other threads (`raftx.objects.SyncProxy`)."""
        from raftx.objects.front import SyncProxy
        return SyncProxy(self, obj, timeout)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the machine was bound on."""
        if self._loop is None:
            raise RuntimeError("the ObjectStateMachine is not bound to a node yet")
        return self._loop

    async def _call_back(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # noqa: BLE001 - a user callback must not stop the machine
            logger.exception("replicated-object callback %r failed", fn)

    async def _stop_watch(self) -> None:
        """The background tasks end with the node (`close` ends them earlier)."""
        raft = self.raft
        assert raft is not None
        rx = raft.metrics()
        try:
            while rx.borrow().is_running:
                await rx.changed()
        except Exception:  # noqa: BLE001 - a closed watch: the node is gone either way
            pass
        finally:
            for t in self._tasks:
                t.cancel()

    async def _ready_watch(self) -> None:
        raft = self.raft
        assert raft is not None
        while True:
            try:
                await raft.ensure_linearizable(forward=True)
                break
            except RaftError as exc:
                if not raft.metrics().borrow().is_running:
                    return
                logger.debug("objects not ready yet: %s", exc)
        for fn in list(self._on_ready):
            await self._call_back(fn)

    async def _leader_watch(self) -> None:
        raft = self.raft
        assert raft is not None
        rx = raft.server_metrics()
        known: Any = object()
        while True:
            leader = rx.borrow().current_leader
            if leader != known:
                known = leader
                for fn in list(self._on_leader_change):
                    await self._call_back(fn, leader)
            try:
                await rx.changed()
            except Fatal:  # the node stopped
                return

    async def _clock(self) -> None:
        """On every node, while some object needs a clock: the leader proposes ``CLOCK``
        entries with its time; every node runs the objects' upkeep (`repl_tick`)."""
        raft = self.raft
        assert raft is not None
        while True:
            periods = [p for o in self.objects if (p := o.repl_needs_clock()) is not None]
            if not periods:
                self._applied.clear()
                await self._applied.wait()  # something was applied: maybe a lock was taken
                continue
            await asyncio.sleep(min(periods))
            if raft.metrics().borrow().state is ServerState.LEADER:
                try:
                    await raft.client_write(_packb([CLOCK, int(time.time() * 1000)]))
                except RaftError as exc:  # lost leadership: the next leader ticks
                    logger.debug("clock entry not written: %s", exc)
            for o in self.objects:
                try:
                    await o.repl_tick()
                except RaftError as exc:
                    logger.debug("upkeep of %s failed: %s", type(o).__name__, exc)

    # -- proposing -------------------------------------------------------------------

    async def propose(self, obj: ReplicatedObject, method: str, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        """Replicate ``obj.method(*args, **kwargs)``; return its result once applied here.

        Raises TypeError (nothing proposed) for arguments msgpack cannot encode,
        `VersionError` for a method above the active version, `ReplicatedCallError` if
        it was applied as an error, and the forwarding errors of
        `raftx.Raft.client_write` (``ForwardToLeader`` when no leader appears in time).
        """
        index = self._index[id(obj)]
        _, version = self._methods[index][method]
        if version > self.version:
            raise VersionError(f"{type(obj).__name__}.{method} needs method-set version {version}; "
                               f"the cluster runs {self.version} (ObjectStateMachine.upgrade)")
        serial = self._next_serial()
        try:
            payload = _encode([CALL, index, method, list(args), kwargs, self.client_id, serial, self._acked()])
            return await self._write(payload)
        finally:
            self._in_flight.discard(serial)

    async def upgrade(self, version: int) -> None:
        """Raise the cluster's active method-set version to ``version`` (after every
        node runs code that knows it; a node that does not stops rather than diverge)."""
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise TypeError(f"version must be an int >= 0, not {version!r}")
        if version > self.code_version:
            raise VersionError(f"this node's code knows method-set versions up to {self.code_version}, "
                               f"not {version}")
        serial = self._next_serial()
        try:
            await self._write(_encode([VERSION, version, self.client_id, serial, self._acked()]))
        finally:
            self._in_flight.discard(serial)

    def _next_serial(self) -> int:
        if self.raft is None:
            raise RuntimeError("the ObjectStateMachine is not bound: call sm.bind(raft)")
        self._serial += 1
        self._in_flight.add(self._serial)
        return self._serial

    def _acked(self) -> int:
        """The lowest serial still waiting for its answer (responses below it may go)."""
        return min(self._in_flight) if self._in_flight else self._serial + 1

    async def _write(self, payload: bytes) -> Any:
        raft = self.raft
        assert raft is not None
        deadline = asyncio.get_running_loop().time() + self.call_timeout
        while True:
            try:
                resp = await raft.client_write(payload, forward=True)
                break
            except WriteOutcomeUnknown:  # same serial again: applied at most once (sessions)
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                logger.debug("replicated call outcome unknown; retrying with the same serial")
        # read your writes: the local objects reflect the call once this returns
        await raft.wait(self.call_timeout).applied_index_at_least(resp.log_id.index, "replicated call applied")
        data = resp.data
        try:
            status, value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as exc:  # noqa: BLE001 - msgpack raises several types
            raise ReplicatedCallError(f"undecodable response to a replicated call: {exc}") from None
        if status != _OK:
            raise ReplicatedCallError(str(value))
        return value

    # -- applying (the same on every replica) ------------------------------------------

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        """Apply in index order (R19); a NORMAL entry's response is msgpack ``[status, value]``."""
        out = await super().apply(entries)
        self._applied.set()
        return out

    def _apply_normal(self, entry: Entry) -> Any:
        return self._apply_command(entry.payload)  # type: ignore[arg-type]

    def _apply_command(self, payload: bytes) -> bytes | None:
        try:
            cmd = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            if not isinstance(cmd, list) or not cmd:
                raise ValueError("not a command list")
            op = cmd[0]
            if op == CLOCK:
                self._apply_clock(int(cmd[1]))
                return None
            if op == VERSION:
                _, version, client_id, serial, acked = cmd
                return self._with_session(client_id, serial, acked, lambda: self._apply_version(version))
            if op == CALL:
                _, index, method, args, kwargs, client_id, serial, acked = cmd
                return self._with_session(client_id, serial, acked, lambda: self._apply_call(index, method, args, kwargs))
            raise ValueError(f"unknown command {op!r}")
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bad entry answers an error, the same everywhere
            return _packb([_ERROR, f"not a replicated-object command: {type(exc).__name__}: {exc}"])

    def _with_session(self, client_id: Any, serial: Any, acked: Any, run: Callable[[], list[Any]]) -> bytes:
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (client_id, serial, acked)):
            raise ValueError("malformed session fields")
        seen = self.sessions.check(client_id, serial, acked)
        if seen is not None:
            return _packb([seen.status, seen.value]) if seen.status in (_OK, _ERROR) else \
                _packb([_ERROR, "a late duplicate of an answered call"])
        status, value = run()
        try:
            encoded = _packb([status, value])
        except (TypeError, ValueError, OverflowError):
            status, value = _OK, None  # a result msgpack cannot carry is answered as None
            encoded = _packb([status, value])
        self.sessions.record(client_id, serial, acked, KVResponse(status, value))
        return encoded

    def _apply_call(self, index: Any, method: Any, args: Any, kwargs: Any) -> list[Any]:
        if not isinstance(index, int) or not 0 <= index < len(self.objects):
            return [_ERROR, f"no replicated object #{index!r}"]
        found = self._methods[index].get(method) if isinstance(method, str) else None
        if found is None:
            return [_ERROR, f"{type(self.objects[index]).__name__} has no replicated method {method!r:.60}"]
        fn, version = found
        if version > self.version:
            return [_ERROR, f"{method} needs method-set version {version}, active is {self.version}"]
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            return [_ERROR, "malformed arguments"]
        try:
            return [_OK, fn(self.objects[index], *args, **kwargs)]
        except Exception as exc:  # noqa: BLE001 - deterministic: every replica answers the same
            return [_ERROR, f"{type(exc).__name__}: {exc}"]

    def _apply_version(self, version: Any) -> list[Any]:
        if not isinstance(version, int) or version < 0:
            return [_ERROR, f"bad version {version!r}"]
        if version > self.code_version:
            # Applying later entries with old code would diverge from the other replicas.
            raise StorageError(f"the cluster moved to method-set version {version}; this node's code knows "
                               f"up to {self.code_version}: upgrade it")
        self.version = max(self.version, version)
        return [_OK, self.version]

    def _apply_clock(self, now_ms: int) -> None:
        if now_ms > self.log_time_ms:  # the leader's clock, never back (a new leader may lag)
            self.log_time_ms = now_ms
        for o in self.objects:
            o.repl_on_clock(self.log_time_ms)

    # -- snapshots (the format of MemStateMachine: a header, then one item) ---------------

    def _state(self) -> list[Any]:
        return [self.version, self.log_time_ms, self.sessions.dump(), [o.repl_getstate() for o in self.objects]]

    def _chunks(self) -> Any:
        m = self.last_membership
        header = [log_id_to_list(self.last_applied), log_id_to_list(m.log_id), m.membership.to_bytes(), 1]
        return pack_chunks(header, [self._state()])

    def _parse_snapshot(self, meta: SnapshotMeta, f: BinaryIO) -> tuple[LogId | None, StoredMembership, Any]:
        items = unpack_items(f)
        try:
            applied, mem_id, mem, count = next(items)
            if count != 1:
                raise ValueError(f"{count} items, expected 1")
            version, log_time_ms, sessions, states = next(items)
            if not isinstance(version, int) or not isinstance(log_time_ms, int) or not isinstance(states, list):
                raise ValueError("malformed object state")
            if len(states) != len(self.objects):
                raise ValueError(f"snapshot holds {len(states)} objects, this node has {len(self.objects)}")
            table = SessionTable(self.sessions.max_sessions, self.sessions.max_responses)
            for item in sessions:
                table.load_item(item)
            membership = StoredMembership(log_id_from_list(mem_id), Membership.from_bytes(mem))
            last_applied = log_id_from_list(applied)
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - msgpack, shapes, memberships
            raise StorageCorrupted(f"malformed replicated-object snapshot: {exc!r}") from exc
        if version > self.code_version:
            raise StorageError(f"the snapshot is at method-set version {version}; this node's code knows "
                               f"up to {self.code_version}: upgrade it")
        if last_applied != meta.last_log_id:
            raise StorageCorrupted(f"snapshot data covers {last_applied}, meta says {meta.last_log_id}")
        return last_applied, membership, (version, log_time_ms, table, states)

    def _install_state(self, state: tuple[LogId | None, StoredMembership, Any]) -> None:
        """The objects get the snapshot's state (a leader's install, or a restart's restore)."""
        self.last_applied, self.last_membership, rest = state
        version, log_time_ms, table, states = rest
        self.version, self.log_time_ms, self.sessions = version, log_time_ms, table
        for o, st in zip(self.objects, states):
            o.repl_setstate(st)
        self._applied.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds, checked after every apply (`TimeoutError` after
        ``timeout`` seconds): e.g. ``await sm.wait_until(lambda: not locks.is_locked("x"))``."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._applied.clear()
                await self._applied.wait()
