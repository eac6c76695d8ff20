"""`KVStateMachine`: the replicated dictionary behind the key-value service.

It implements `raftx.storage.RaftStateMachine`: committed entries are applied in
log order (R19) in batches (one `apply` call per batch, one response per entry).
A NORMAL entry carries one command of `raftx.kv.commands` (put / get / delete /
compare-and-swap); writes from a client session are applied once each, retries
get the recorded response (`raftx.kv.sessions`, Raft §8). Command bytes that do not
decode get a ``BAD_COMMAND`` response: every replica answers the same, nothing
changes and the node keeps running. BLANK entries answer None; MEMBERSHIP entries
update the stored membership (thesis §4.3) and answer None.

Revisions, ordered reads, transactions, leases and the history watches read live
in `raftx.kv.keyspace`; the fast put path below changes it inline (a revision costs
an increment, the mod revision and the history two stores).

Snapshots (§7) hold the keyspace, the session table, the last applied log id and
the last membership. With ``directory`` they are durable, checksummed files
(`raftx.storage.FileSnapshotStore`; the newest is loaded when the state machine is
created); without, they stay in memory. Building one first compacts the history
to the last ``history_keep`` revisions (watches from before get
`raftx.errors.Compacted`). Snapshot data format (msgpack, streamed in chunks so
the state never has to fit in one buffer)::

    header   [FORMAT_VERSION=2, last_applied, membership_log_id, membership_bytes,
              n_keys, n_sessions, revision, compacted, n_history, n_leases,
              next_lease, lease_seq]
    n_leases   items [lease_id, ttl_ms, version]
    n_keys     items [key, value, mod_revision, lease_id]
    n_sessions items [client_id, floor, [[serial, status, value], ...]]
    n_history  items [key, value or nil]   (revisions compacted+1, ...)

Version 1 (before revisions) is still read: header ``[1, last_applied,
membership_log_id, membership_bytes, n_keys, n_sessions]``, items ``[key, value]``
then the sessions; its keys get mod revision 1 and the history starts after it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, BinaryIO, cast

from raftx.errors import BadCommand, StorageCorrupted, StorageError
from raftx.kv.commands import (
    BAD_COMMAND, CAS, CAS_MISMATCH, DELETE, GET, LEASE_EXPIRE, LEASE_GRANT, LEASE_KEEPALIVE, LEASE_NOT_FOUND,
    LEASE_REVOKE, NOT_FOUND, OK, PUT, PUT_LEASE, TXN, KVResponse, decode,
)
from raftx.kv import kvcodec
from raftx.kv.keyspace import Event, Keyspace, Lease
from raftx.kv.sessions import DEFAULT_MAX_RESPONSES, DEFAULT_MAX_SESSIONS, SessionTable
from raftx.storage.snapshot import StoredSnapshot, log_id_from_list, log_id_to_list, pack_chunks, unpack_items
from raftx.storage.snapshot_sm import SnapshotStateMachine
from raftx.types import Entry, EntryRange, LogId, Membership, Snapshot, SnapshotMeta, StoredMembership

__all__ = ["KVStateMachine", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
#: Revisions of history a snapshot keeps for watches (`KVStateMachine` ``history_keep``).
DEFAULT_HISTORY_KEEP = 100_000

_OK = KVResponse(OK, None)
_NOT_FOUND = KVResponse(NOT_FOUND, None)
_new_tuple = tuple.__new__


def _ok(revision: int) -> KVResponse:
    """``KVResponse(OK, revision)`` without the named tuple's Python-level ``__new__``."""
    return _new_tuple(KVResponse, (OK, revision))
_BYTES = {bytes}
_decode_put = kvcodec.decode_put


class _State:
    """Everything a snapshot replaces at once."""

    __slots__ = ("last_applied", "membership", "ks", "sessions")

    def __init__(self, max_sessions: int, max_responses: int) -> None:
        self.last_applied: LogId | None = None
        self.membership = StoredMembership()
        self.ks = Keyspace()
        self.sessions = SessionTable(max_sessions, max_responses)


class KVStateMachine(SnapshotStateMachine[_State]):
    """A replicated ``dict[bytes, bytes]`` with client sessions and snapshots.

    ``directory``: where snapshot files live (None: snapshots in memory). When it
    holds a snapshot, the newest one is loaded (and verified) here, synchronously;
    use `open` to do that off the event loop. ``fsync=False`` only for tests.
    ``max_sessions`` / ``max_responses`` bound the deduplication table
    (`raftx.kv.sessions`); ``history_keep``: revisions of history a snapshot keeps
    for watches. Raises `raftx.errors.StorageCorrupted` if the newest snapshot is
    damaged.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        fsync: bool = True,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_responses: int = DEFAULT_MAX_RESPONSES,
        history_keep: int = DEFAULT_HISTORY_KEEP,
        _load: bool = True,
    ) -> None:
        if history_keep < 0:
            raise ValueError("history_keep must be >= 0")
        self.history_keep = history_keep
        self._changed: asyncio.Event | None = None
        #: Set when the leases change (`wait_leases_changed`); the lease_seq of the last wake.
        self._leases_changed: asyncio.Event | None = None
        self._lease_seq_woken = 0
        self._max = (max_sessions, max_responses)
        self._state = _State(max_sessions, max_responses)
        self._init_snapshots(directory, fsync)
        self._image_counts: tuple[int, int, int, int] = (0, 0, 0, 0)  # of the last snapshot image, for its log line
        #: Commands that failed to decode (answered BAD_COMMAND), for metrics.
        self.bad_commands = 0
        if _load:
            self._loaded(self._load_latest())

    @classmethod
    async def open(cls, directory: str | os.PathLike[str] | None = None, **kwargs: Any) -> KVStateMachine:
        """Like the constructor, loading the newest snapshot in a worker thread."""
        sm = cls(directory, _load=False, **kwargs)
        sm._loaded(await sm._restore_latest())
        return sm

    def _loaded(self, stored: StoredSnapshot | None) -> None:
        if stored is not None:
            logger.info("loaded snapshot %s (last applied %s, %d keys)",
                        stored.path.name, self._state.last_applied, len(self._state.ks.data))

    # -- reads (local; linearizable only after Raft.ensure_linearizable, §8) -------------

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` in the applied state, or None."""
        return self._state.ks.data.get(key)

    def get_with_revision(self, key: bytes) -> tuple[bytes, int] | None:
        """``(value, mod_revision)`` of ``key`` in the applied state, or None."""
        return self._state.ks.get(key)

    def range(self, start: bytes, end: bytes | None, limit: int | None = None,
              keys_only: bool = False) -> list[tuple[bytes, bytes | None, int]]:
        """`raftx.kv.keyspace.Keyspace.range` of the applied state."""
        return self._state.ks.range(start, end, limit, keys_only)

    def events(self, prefix: bytes, start_revision: int, max_events: int = 1000) -> list[Event]:
        """The applied changes of keys under ``prefix`` from ``start_revision`` on
        (`raftx.errors.Compacted` if compacted)."""
        return self._state.ks.events(prefix, start_revision, max_events)

    async def wait_applied(self) -> None:
        """Return after the next batch of entries is applied (or a snapshot installed)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()

    async def wait_changed(self, revision: int) -> None:
        """Return once the applied revision is above ``revision`` (at once if it is)."""
        while self._state.ks.revision <= revision:
            await self.wait_applied()

    @property
    def lease_version(self) -> int:
        """Grows with every lease grant and refresh (`wait_leases_changed`)."""
        return self._state.ks.lease_seq

    async def wait_leases_changed(self, since: int) -> None:
        """Return once `lease_version` differs from ``since`` (at once if it does) or a
        snapshot was installed; revocations do not wake it (they only shorten the list)."""
        if self._state.ks.lease_seq != since:
            return
        if self._leases_changed is None:
            self._leases_changed = asyncio.Event()
        await self._leases_changed.wait()

    def _wake(self, installed: bool = False) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        leases = self._leases_changed
        if leases is not None and (installed or self._state.ks.lease_seq != self._lease_seq_woken):
            leases.set()
            self._leases_changed = None
        self._lease_seq_woken = self._state.ks.lease_seq

    @property
    def revision(self) -> int:
        """The revision of the last applied change (0: none yet)."""
        return self._state.ks.revision

    @property
    def compact_revision(self) -> int:
        """The newest revision whose history is gone (watch from after it)."""
        return self._state.ks.compacted

    @property
    def leases(self) -> Mapping[int, Lease]:
        """Live leases (read them, do not change them): ``id -> Lease``."""
        return MappingProxyType(self._state.ks.leases)

    def __len__(self) -> int:
        return len(self._state.ks.data)

    def __contains__(self, key: object) -> bool:
        return key in self._state.ks.data

    @property
    def data(self) -> Mapping[bytes, bytes]:
        """A read-only view of the applied dictionary."""
        return MappingProxyType(self._state.ks.data)

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
            out = self._apply_range(entries)
        else:
            out = self._apply_entries(entries)
        self._wake()  # watchers and the lease keeper, once per batch
        return out

    def _apply_entries(self, entries: Sequence[Entry]) -> list[Any]:
        st = self._state
        ks = st.ks
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
                append(self._apply_command(p, ks, sessions))
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
        ks, sessions, apply_command = st.ks, st.sessions, self._apply_command
        payloads = entries.payloads
        out: list[Any]
        if set(map(type, payloads)) == _BYTES:  # client commands only (the common range)
            out = [apply_command(p, ks, sessions) for p in cast("Sequence[bytes]", payloads)]
        else:
            out = []
            for i, p in enumerate(payloads):
                if p is None:
                    out.append(None)
                elif isinstance(p, Membership):
                    st.membership = StoredMembership(entries.log_id(i), p)
                    out.append(None)
                else:
                    out.append(apply_command(p, ks, sessions))
        st.last_applied = entries.log_id(len(payloads) - 1)
        return out

    def _apply_command(self, payload: bytes, ks: Keyspace, sessions: SessionTable) -> KVResponse:
        put = _decode_put(payload)  # the common command, decoded and checked in one call
        if put is not None:  # a PUT, inline: a quarter of the apply cost (measured)
            client_id, serial, acked, key, value = put
            if client_id:
                seen = sessions.check(client_id, serial, acked)
                if seen is not None:
                    return seen
            # Keyspace.put, inline (no lease: a plain put detaches the key from one)
            rev = ks.revision = ks.revision + 1
            ks.data[key] = value
            ks.mod[key] = rev
            ks.hist_keys.append(key)
            ks.hist_values.append(value)
            if ks.key_lease:
                ks.detach(key)
            r = _ok(rev)
            if client_id:
                sessions.record(client_id, serial, acked, r)
            return r
        try:
            op, client_id, serial, acked, key, args = decode(payload)  # not a compiled-path PUT
        except BadCommand as exc:
            self.bad_commands += 1
            logger.warning("bad key-value command (%d bytes): %s", len(payload), exc)
            return KVResponse(BAD_COMMAND, str(exc))
        if op == GET:
            v = ks.data.get(key)
            return _NOT_FOUND if v is None else KVResponse(OK, v)
        if client_id:
            seen = sessions.check(client_id, serial, acked)
            if seen is not None:
                return seen
        r = self._apply_other(ks, op, key, args)
        if client_id:
            sessions.record(client_id, serial, acked, r)
        return r

    @staticmethod
    def _apply_other(ks: Keyspace, op: int, key: bytes, args: tuple[Any, ...]) -> KVResponse:
        """Every command but GET and a compiled-path PUT (validated by `decode`)."""
        if op == PUT:
            return _ok(ks.put(key, args[0]))
        if op == PUT_LEASE:
            value, lease_id = args
            if lease_id and lease_id not in ks.leases:
                return KVResponse(LEASE_NOT_FOUND, lease_id)
            return _ok(ks.put(key, value, lease_id))
        if op == DELETE:
            rev = ks.remove(key)
            return _ok(rev) if rev else _NOT_FOUND
        if op == CAS:
            expected, new = args
            current = ks.data.get(key)
            if current != expected:
                return KVResponse(CAS_MISMATCH, current)
            return _ok((ks.remove(key) if new is None else ks.put(key, new)) or ks.revision)
        if op == TXN:
            res = ks.txn(*args)
            if isinstance(res, int):
                return KVResponse(LEASE_NOT_FOUND, res)
            return KVResponse(OK, [res[0], res[1]])
        if op == LEASE_GRANT:
            lease_id = ks.lease_grant(args[0])
            return KVResponse(OK, [lease_id, args[0]])
        if op == LEASE_KEEPALIVE:
            ttl = ks.lease_keep_alive(args[0])
            return KVResponse(LEASE_NOT_FOUND, args[0]) if ttl is None else KVResponse(OK, ttl)
        if op == LEASE_REVOKE:
            after = ks.lease_revoke(args[0])
            return KVResponse(LEASE_NOT_FOUND, args[0]) if after is None else _ok(after)
        assert op == LEASE_EXPIRE
        after = ks.lease_revoke(args[0], args[1])  # ignored if refreshed since (a stale expiry)
        return _OK if after is None else _ok(after)

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        """Validate and store the snapshot durably, then replace the whole state (§7).

        A malformed snapshot raises `raftx.errors.StorageCorrupted` and changes nothing.
        """
        await super().install_snapshot(meta, snapshot)
        logger.info("installed snapshot %s (last applied %s, %d keys)",
                    meta.snapshot_id, meta.last_log_id, len(self._state.ks.data))

    # -- snapshot data ----------------------------------------------------------------

    def _snapshot_image(self) -> tuple[LogId | None, StoredMembership, Iterable[bytes]]:
        st = self._state
        ks = st.ks
        la = st.last_applied
        ks.compact(ks.revision - self.history_keep)
        # Capture the state now (values are immutable bytes, so shallow copies are a
        # consistent image); encode and write it off the event loop.
        rows = ks.rows()
        leases = [[i, lease.ttl_ms, lease.version] for i, lease in ks.leases.items()]
        sessions = st.sessions.dump()
        history = list(zip(ks.hist_keys, ks.hist_values))
        header = [FORMAT_VERSION, log_id_to_list(la), log_id_to_list(st.membership.log_id),
                  st.membership.membership.to_bytes(), len(ks.data), len(sessions), ks.revision, ks.compacted,
                  len(history), len(leases), ks.next_lease, ks.lease_seq]
        self._image_counts = (len(ks.data), len(sessions), ks.revision, ks.compacted)
        return la, st.membership, pack_chunks(header, itertools.chain(leases, rows, sessions, history))

    async def _build_snapshot(self) -> Snapshot:
        snap = await super()._build_snapshot()
        logger.info("built snapshot %s (%d keys, %d sessions, revision %d, history from %d)", snap.meta.snapshot_id,
                    *self._image_counts)
        return snap

    def _install_state(self, state: _State) -> None:
        self._state = state
        self._wake(installed=True)

    def _parse_snapshot(self, meta: SnapshotMeta, f: BinaryIO) -> _State:
        """A new state from snapshot bytes (`StorageCorrupted` if malformed)."""
        st = _State(*self._max)
        items = unpack_items(f)
        try:
            header = next(items)
            version = header[0]
            if version == 1:
                _, applied, mem_id, mem, n_keys, n_sessions = header
                self._read_v1(st, items, int(n_keys))
            elif version == FORMAT_VERSION:
                (_, applied, mem_id, mem, n_keys, n_sessions, revision, compacted, n_history, n_leases,
                 next_lease, lease_seq) = header
                self._read_v2(st, items, int(n_keys), int(n_history), int(n_leases))
                ks = st.ks
                ks.revision, ks.compacted, ks.next_lease, ks.lease_seq = (
                    int(revision), int(compacted), int(next_lease), int(lease_seq))
            else:
                raise StorageCorrupted(f"unsupported key-value snapshot format {version!r}")
            for _ in range(int(n_sessions)):
                st.sessions.load_item(next(items))
            if version == FORMAT_VERSION:
                for _ in range(int(n_history)):
                    k, v = next(items)
                    if type(k) is not bytes or (v is not None and type(v) is not bytes):
                        raise TypeError("malformed history item")
                    st.ks.hist_keys.append(k)
                    st.ks.hist_values.append(v)
                if st.ks.compacted + len(st.ks.hist_keys) != st.ks.revision:
                    raise ValueError("history does not end at the snapshot's revision")
            if next(items, None) is not None:
                raise ValueError("trailing data after the last item")
            st.membership = StoredMembership(log_id_from_list(mem_id), Membership.from_bytes(mem))
            st.last_applied = log_id_from_list(applied)
        except StorageError:
            raise
        except Exception as exc:  # StopIteration, ValueError, TypeError, KeyError, msgpack, ProtocolError
            raise StorageCorrupted(f"malformed key-value snapshot: {exc!r:.200}") from exc
        if st.last_applied != meta.last_log_id:
            raise StorageCorrupted(f"snapshot data covers {st.last_applied}, meta says {meta.last_log_id}")
        if st.membership != meta.last_membership:
            raise StorageCorrupted("snapshot data and meta disagree on the membership")
        return st

    @staticmethod
    def _read_v1(st: _State, items: Any, n_keys: int) -> None:
        """Format 1 had no revisions: every key gets mod revision 1, the history starts after it."""
        ks = st.ks
        for _ in range(n_keys):
            k, v = next(items)
            if type(k) is not bytes or type(v) is not bytes:
                raise TypeError("keys and values must be bytes")
            ks.data[k] = v
            ks.mod[k] = 1
        if ks.data:
            ks.revision = ks.compacted = 1

    @staticmethod
    def _read_v2(st: _State, items: Any, n_keys: int, n_history: int, n_leases: int) -> None:
        ks = st.ks
        for _ in range(n_leases):
            lid, ttl, version = next(items)
            if type(lid) is not int or type(ttl) is not int or type(version) is not int:
                raise TypeError("malformed lease")
            ks.leases[lid] = Lease(ttl, version)
        for _ in range(n_keys):
            ks.load_row(next(items))  # KeyError for a lease that is not in the snapshot
