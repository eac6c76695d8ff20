"""`KVStateMachine`: the replicated dictionary behind the key-value service.

It implements `raftx.storage.RaftStateMachine`: committed entries are applied in
log order (R19) in batches (one `apply` call per batch, one response per entry).
A NORMAL entry carries one command of `raftx.kv.commands` (put / get / delete /
compare-and-swap); writes from a client session are applied once each, retries
get the recorded response (`raftx.kv.sessions`, Raft §8). Command bytes that do not
decode get a ``BAD_COMMAND`` response: every replica answers the same, nothing
changes and the node keeps running. BLANK entries answer None; MEMBERSHIP entries
update the stored membership (thesis §4.3) and answer None.

Snapshots (§7) hold the dictionary, the session table, the last applied log id and
the last membership. With ``directory`` they are durable, checksummed files
(`raftx.storage.FileSnapshotStore`; the newest is loaded when the state machine is
created); without, they stay in memory. Snapshot data format (msgpack, streamed in
chunks so the state never has to fit in one buffer)::

    header   [FORMAT_VERSION, last_applied, membership_log_id, membership_bytes,
              n_keys, n_sessions]
    n_keys   items [key, value]
    n_sessions items [client_id, floor, [[serial, status, value], ...]]
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, BinaryIO, cast

from raftx import _core
from raftx.errors import BadCommand, StorageCorrupted, StorageError
from raftx.kv.commands import (
    BAD_COMMAND, CAS, CAS_MISMATCH, DELETE, GET, NOT_FOUND, OK, PUT, KVResponse, decode,
)
from raftx.kv.sessions import DEFAULT_MAX_RESPONSES, DEFAULT_MAX_SESSIONS, SessionTable
from raftx.storage.protocols import RaftSnapshotBuilder, RaftStateMachine
from raftx.storage.snapshot import (
    CHUNK_SIZE,
    FileSnapshotStore,
    MemSnapshotStore,
    current_snapshot,
    log_id_from_list,
    log_id_to_list,
    open_snapshot,
    pack_chunks,
    receive_file,
    snapshot_id,
    unpack_items,
    write_snapshot,
)
from raftx.types import Entry, EntryRange, LogId, Membership, Snapshot, SnapshotMeta, StoredMembership

__all__ = ["KVStateMachine", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1

_OK = KVResponse(OK, None)
_NOT_FOUND = KVResponse(NOT_FOUND, None)
_BYTES = {bytes}
_decode_put = _core.kvcodec.decode_put


class _Builder(RaftSnapshotBuilder):
    def __init__(self, sm: KVStateMachine) -> None:
        self._sm = sm

    async def build_snapshot(self) -> Snapshot:
        return await self._sm._build_snapshot()


class _State:
    """Everything a snapshot replaces at once."""

    __slots__ = ("last_applied", "membership", "data", "sessions")

    def __init__(self, max_sessions: int, max_responses: int) -> None:
        self.last_applied: LogId | None = None
        self.membership = StoredMembership()
        self.data: dict[bytes, bytes] = {}
        self.sessions = SessionTable(max_sessions, max_responses)


class KVStateMachine(RaftStateMachine):
    """A replicated ``dict[bytes, bytes]`` with client sessions and snapshots.

    ``directory``: where snapshot files live (None: snapshots in memory). When it
    holds a snapshot, the newest one is loaded (and verified) here, synchronously;
    use `open` to do that off the event loop. ``fsync=False`` only for tests.
    ``max_sessions`` / ``max_responses`` bound the deduplication table
    (`raftx.kv.sessions`). Raises `raftx.errors.StorageCorrupted` if the newest
    snapshot is damaged.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        fsync: bool = True,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_responses: int = DEFAULT_MAX_RESPONSES,
        _load: bool = True,
    ) -> None:
        self._directory = None if directory is None else os.fspath(directory)
        self._max = (max_sessions, max_responses)
        self._state = _State(max_sessions, max_responses)
        self._snapshots: FileSnapshotStore | MemSnapshotStore = (
            FileSnapshotStore(self._directory, fsync=fsync) if self._directory is not None else MemSnapshotStore()
        )
        self._ids = itertools.count(1)
        #: Commands that failed to decode (answered BAD_COMMAND), for metrics.
        self.bad_commands = 0
        if _load:
            self._load_latest()

    @classmethod
    async def open(cls, directory: str | os.PathLike[str] | None = None, **kwargs: Any) -> KVStateMachine:
        """Like the constructor, loading the newest snapshot in a worker thread."""
        sm = cls(directory, _load=False, **kwargs)
        await asyncio.to_thread(sm._load_latest)
        return sm

    def _load_latest(self) -> None:
        store = self._snapshots
        if isinstance(store, FileSnapshotStore):
            stored = store.latest()
            if stored is not None:
                with stored.open() as f:
                    self._state = self._read(stored.meta, f)
                logger.info("loaded snapshot %s (last applied %s, %d keys)",
                            stored.path.name, self._state.last_applied, len(self._state.data))

    # -- reads (local; linearizable only after Raft.ensure_linearizable, §8) -------------

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` in the applied state, or None."""
        return self._state.data.get(key)

    def __len__(self) -> int:
        return len(self._state.data)

    def __contains__(self, key: object) -> bool:
        return key in self._state.data

    @property
    def data(self) -> Mapping[bytes, bytes]:
        """A read-only view of the applied dictionary."""
        return MappingProxyType(self._state.data)

    @property
    def last_applied(self) -> LogId | None:
        return self._state.last_applied

    @property
    def sessions(self) -> SessionTable:
        """The deduplication table (read it, do not change it)."""
        return self._state.sessions

    # -- RaftStateMachine -----------------------------------------------------------

    async def applied_state(self) -> tuple[LogId | None, StoredMembership]:
        return self._state.last_applied, self._state.membership

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        """Apply committed entries in index order; one response per entry.

        An entry at or below the last applied one raises `StorageError` (R19: each
        entry is applied exactly once, in order).
        """
        if type(entries) is EntryRange:
            return self._apply_range(entries)
        st = self._state
        data = st.data
        sessions = st.sessions
        out: list[Any] = []
        append = out.append
        last = st.last_applied
        for e in entries:
            log_id = e.log_id
            if last is not None and log_id.index <= last.index:
                raise StorageError(f"entry {log_id} applied out of order after {last} (R19)")
            p = e.payload
            if p is None:
                append(None)
            elif isinstance(p, Membership):
                st.membership = StoredMembership(log_id, p)
                append(None)
            else:
                append(self._apply_command(p, data, sessions))
            last = st.last_applied = log_id
        return out

    def _apply_range(self, entries: EntryRange) -> list[Any]:
        """`apply` without an `Entry` per entry: the order is checked once for the range."""
        st = self._state
        if not entries:
            return []
        last = st.last_applied
        if last is not None and entries.first_index <= last.index:
            raise StorageError(f"entry {entries.log_id(0)} applied out of order after {last} (R19)")
        data, sessions, apply_command = st.data, st.sessions, self._apply_command
        payloads = entries.payloads
        out: list[Any]
        if set(map(type, payloads)) == _BYTES:  # client commands only (the common range)
            out = [apply_command(p, data, sessions) for p in cast("Sequence[bytes]", payloads)]
        else:
            out = []
            for i, p in enumerate(payloads):
                if p is None:
                    out.append(None)
                elif isinstance(p, Membership):
                    st.membership = StoredMembership(entries.log_id(i), p)
                    out.append(None)
                else:
                    out.append(apply_command(p, data, sessions))
        st.last_applied = entries.log_id(len(payloads) - 1)
        return out

    def _apply_command(self, payload: bytes, data: dict[bytes, bytes], sessions: SessionTable) -> KVResponse:
        put = _decode_put(payload)  # the common command, decoded and checked in one call
        if put is not None:  # a PUT, inline: a quarter of the apply cost (measured)
            client_id, serial, acked, key, value = put
            if client_id:
                seen = sessions.check(client_id, serial, acked)
                if seen is not None:
                    return seen
                sessions.record(client_id, serial, acked, _OK)
            data[key] = value
            return _OK
        try:
            op, client_id, serial, acked, key, args = decode(payload)  # not a compiled-path PUT
        except BadCommand as exc:
            self.bad_commands += 1
            logger.warning("bad key-value command (%d bytes): %s", len(payload), exc)
            return KVResponse(BAD_COMMAND, str(exc))
        if op == GET:
            v = data.get(key)
            return _NOT_FOUND if v is None else KVResponse(OK, v)
        if client_id:
            seen = sessions.check(client_id, serial, acked)
            if seen is not None:
                return seen
        if op == PUT:
            data[key] = args[0]
            r = _OK
        elif op == DELETE:
            r = _NOT_FOUND if data.pop(key, None) is None else _OK
        else:  # CAS
            assert op == CAS
            expected, new = args
            current = data.get(key)
            if current != expected:
                r = KVResponse(CAS_MISMATCH, current)
            else:
                if new is None:
                    data.pop(key, None)
                else:
                    data[key] = new
                r = _OK
        if client_id:
            sessions.record(client_id, serial, acked, r)
        return r

    async def get_snapshot_builder(self) -> RaftSnapshotBuilder:
        return _Builder(self)

    async def begin_receiving_snapshot(self) -> BinaryIO:
        """A spooled temp file (in ``directory`` when set) to stream a snapshot into."""
        return receive_file(self._directory)

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Validate and store the snapshot durably, then replace the whole state (§7).

        A malformed snapshot raises `raftx.errors.StorageCorrupted` and changes nothing.
        """

        def install() -> _State:
            snapshot.seek(0)
            new_state = self._read(meta, snapshot)  # fully validated before anything is stored
            snapshot.seek(0)
            write_snapshot(self._snapshots, meta, iter(lambda: snapshot.read(CHUNK_SIZE), b""))
            return new_state

        self._state = await asyncio.to_thread(install)
        logger.info("installed snapshot %s (last applied %s, %d keys)",
                    meta.snapshot_id, meta.last_log_id, len(self._state.data))

    async def verify_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Check received snapshot data without installing it (`StorageCorrupted` if
        malformed); `raftx.runtime.snapshot_recv` calls it before the node commits to
        it, so garbage from a peer is refused instead of failing the install (the data
        is parsed twice for a good snapshot: snapshots are rare, a stopped node is not)."""
        await asyncio.to_thread(self._read, meta, snapshot)

    async def get_current_snapshot(self) -> Snapshot | None:
        return await current_snapshot(self._snapshots)

    # -- snapshot data ----------------------------------------------------------------

    async def _build_snapshot(self) -> Snapshot:
        st = self._state
        la = st.last_applied
        meta = SnapshotMeta(la, st.membership, snapshot_id(la, next(self._ids)))
        # Capture the state now (values are immutable bytes, so shallow copies are a
        # consistent image); encode and write it off the event loop.
        data = dict(st.data)
        sessions = st.sessions.dump()
        header = [FORMAT_VERSION, log_id_to_list(la), log_id_to_list(st.membership.log_id),
                  st.membership.membership.to_bytes(), len(data), len(sessions)]
        chunks = pack_chunks(header, itertools.chain(data.items(), sessions))
        stored = await asyncio.to_thread(write_snapshot, self._snapshots, meta, chunks)
        logger.info("built snapshot %s (%d keys, %d sessions)", meta.snapshot_id, len(data), len(sessions))
        return open_snapshot(stored)

    def _read(self, meta: SnapshotMeta, f: BinaryIO) -> _State:
        """A new state from snapshot bytes (`StorageCorrupted` if malformed)."""
        st = _State(*self._max)
        items = unpack_items(f)
        try:
            version, applied, mem_id, mem, n_keys, n_sessions = next(items)
            if version != FORMAT_VERSION:
                raise StorageCorrupted(f"unsupported key-value snapshot format {version!r}")
            data = st.data
            for _ in range(int(n_keys)):
                k, v = next(items)
                if type(k) is not bytes or type(v) is not bytes:
                    raise TypeError("keys and values must be bytes")
                data[k] = v
            for _ in range(int(n_sessions)):
                st.sessions.load_item(next(items))
            if next(items, None) is not None:
                raise ValueError("trailing data after the last session")
            st.membership = StoredMembership(log_id_from_list(mem_id), Membership.from_bytes(mem))
            st.last_applied = log_id_from_list(applied)
        except StorageError:
            raise
        except Exception as exc:  # StopIteration, ValueError, TypeError, msgpack, ProtocolError
            raise StorageCorrupted(f"malformed key-value snapshot: {exc!r:.200}") from exc
        if st.last_applied != meta.last_log_id:
            raise StorageCorrupted(f"snapshot data covers {st.last_applied}, meta says {meta.last_log_id}")
        if st.membership != meta.last_membership:
            raise StorageCorrupted("snapshot data and meta disagree on the membership")
        return st

