"""`Keyspace`: the key-value service's data with revisions, history and leases.

Every change of a key (a put, a delete) gets the next *revision*, a counter of the
whole keyspace starting at 1 (etcd's revision, except that each write of a
transaction gets its own revision, so a watcher that resumes after revision ``r``
never has to split one). Each key remembers its *mod revision* (the revision of its
last put). The state machine applies commands in log order on every replica, so
every replica assigns the same revisions (Raft §5.3: same log, same state).

History: the changes since the *compact revision* (``compacted``), oldest first, as
two parallel lists (key, value or None for a delete): the change with revision
``r`` is at ``r - compacted - 1``. `events` reads it for ``watch``; `compact` drops
its old part (the state machine does that when it builds a snapshot, and the
snapshot carries what is kept). Reading history below ``compacted`` raises
`raftx.errors.Compacted`.

Leases: ``lease_id -> Lease(ttl_ms, version, keys)``; a key put with a lease is
deleted with it (revoke or expiry). ``version`` changes with every grant and
keep-alive, so an expiry proposed for an older version is ignored
(`raftx.kv.leases` explains why expiry is safe).

Ordered reads (`range`) sort the keys once and keep that order until the key *set*
changes: the cache is valid while ``len(data)`` and the count of deletes are what
they were when it was built (a put of a new key changes the length, every removal
goes through `remove`), so the put path pays nothing for it.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterator
from typing import Any

from raftx.errors import Compacted

__all__ = ["Event", "Keyspace", "Lease", "prefix_end"]

_CMP: tuple[Callable[[Any, Any], bool], ...] = (
    operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key after every key starting with ``prefix`` (None: no such key,
    the range runs to the end of the keyspace), as etcd's ``GetPrefixRangeEnd``."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


class Lease:
    """One lease: its TTL (ms), its version (see the module docstring), its keys."""

    __slots__ = ("ttl_ms", "version", "keys")

    def __init__(self, ttl_ms: int, version: int) -> None:
        self.ttl_ms = ttl_ms
        self.version = version
        self.keys: set[bytes] = set()


class Event(tuple[str, bytes, "bytes | None", int]):
    """A change of one key: ``.type`` (``"put"`` / ``"delete"``), ``.key``, ``.value``
    (None for a delete), ``.mod_revision`` (the revision of the change)."""

    __slots__ = ()

    def __new__(cls, type: str, key: bytes, value: bytes | None, mod_revision: int) -> Event:
        return tuple.__new__(cls, (type, key, value, mod_revision))

    @property
    def type(self) -> str:
        return self[0]

    @property
    def key(self) -> bytes:
        return self[1]

    @property
    def value(self) -> bytes | None:
        return self[2]

    @property
    def mod_revision(self) -> int:
        return self[3]


class Keyspace:
    """See the module docstring. Attributes are read by the state machine's fast put
    path; change them only through the methods (or as that path does)."""

    __slots__ = ("data", "mod", "revision", "compacted", "hist_keys", "hist_values", "leases", "key_lease",
                 "next_lease", "lease_seq", "removals", "_sorted", "_sorted_at")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.mod: dict[bytes, int] = {}
        self.revision = 0
        self.compacted = 0
        self.hist_keys: list[bytes] = []
        self.hist_values: list[bytes | None] = []
        self.leases: dict[int, Lease] = {}
        self.key_lease: dict[bytes, int] = {}
        self.next_lease = 0
        self.lease_seq = 0
        self.removals = 0
        self._sorted: list[bytes] | None = None
        self._sorted_at = (-1, -1)

    # -- writes ---------------------------------------------------------------------

    def put(self, key: bytes, value: bytes, lease_id: int = 0) -> int:
        """Set ``key`` (attached to ``lease_id``, which must exist, or to none); the new revision."""
        rev = self.revision = self.revision + 1
        self.data[key] = value
        self.mod[key] = rev
        self.hist_keys.append(key)
        self.hist_values.append(value)
        if self.key_lease:
            self.detach(key)
        if lease_id:
            self.key_lease[key] = lease_id
            self.leases[lease_id].keys.add(key)
        return rev

    def remove(self, key: bytes) -> int:
        """Delete ``key``; the new revision, or 0 if it did not exist (no revision used)."""
        if self.data.pop(key, None) is None:
            return 0
        del self.mod[key]
        self.removals += 1
        rev = self.revision = self.revision + 1
        self.hist_keys.append(key)
        self.hist_values.append(None)
        if self.key_lease:
            self.detach(key)
        return rev

    def detach(self, key: bytes) -> None:
        lid = self.key_lease.pop(key, 0)
        if lid:
            self.leases[lid].keys.discard(key)

    # -- leases ---------------------------------------------------------------------

    def lease_grant(self, ttl_ms: int) -> int:
        self.next_lease += 1
        self.lease_seq += 1
        self.leases[self.next_lease] = Lease(ttl_ms, self.lease_seq)
        return self.next_lease

    def lease_keep_alive(self, lease_id: int) -> int | None:
        """Refresh the lease (a new version); its TTL in ms, None if there is no such lease."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return None
        self.lease_seq += 1
        lease.version = self.lease_seq
        return lease.ttl_ms

    def lease_revoke(self, lease_id: int, version: int | None = None) -> int | None:
        """Drop the lease and delete its keys (in key order: every replica assigns the
        same revisions); the revision after it, None if there is no such lease (or,
        with ``version``, if it was refreshed since: a stale expiry)."""
        lease = self.leases.get(lease_id)
        if lease is None or (version is not None and lease.version != version):
            return None
        del self.leases[lease_id]
        for key in sorted(lease.keys):
            del self.key_lease[key]
            self.remove(key)
        return self.revision

    # -- reads ----------------------------------------------------------------------

    def get(self, key: bytes) -> tuple[bytes, int] | None:
        v = self.data.get(key)
        return None if v is None else (v, self.mod[key])

    def _keys(self) -> list[bytes]:
        at = (len(self.data), self.removals)
        if self._sorted is None or self._sorted_at != at:
            self._sorted = sorted(self.data)
            self._sorted_at = at
        return self._sorted

    def range(self, start: bytes, end: bytes | None, limit: int | None = None,
              keys_only: bool = False) -> list[tuple[bytes, bytes | None, int]]:
        """``(key, value, mod_revision)`` for ``start <= key < end`` (``end`` None: to
        the last key), in key order, at most ``limit`` (None or 0: all); ``keys_only``:
        values are None."""
        keys = self._keys()
        i = bisect.bisect_left(keys, start)
        j = len(keys) if end is None else bisect.bisect_left(keys, end, lo=i)
        if limit:
            j = min(j, i + limit)
        data, mod = self.data, self.mod
        return [(k, None if keys_only else data[k], mod[k]) for k in keys[i:j]]

    def events(self, prefix: bytes, start_revision: int, max_events: int) -> list[Event]:
        """Changes of keys starting with ``prefix`` with revision >= ``start_revision``,
        oldest first, at most ``max_events``; `Compacted` if that history is gone."""
        if start_revision <= self.compacted:
            raise Compacted(f"revision {start_revision} is compacted (history starts after revision "
                            f"{self.compacted})", self.compacted)
        out: list[Event] = []
        keys, values = self.hist_keys, self.hist_values
        base = self.compacted + 1
        for i in range(start_revision - base, len(keys)):
            k = keys[i]
            if k.startswith(prefix):
                v = values[i]
                out.append(Event("delete" if v is None else "put", k, v, base + i))
                if len(out) >= max_events:
                    break
        return out

    def compact(self, revision: int) -> None:
        """Forget the history up to and including ``revision`` (no-op below ``compacted``)."""
        n = min(revision, self.revision) - self.compacted
        if n > 0:
            del self.hist_keys[:n]
            del self.hist_values[:n]
            self.compacted += n

    # -- transactions ---------------------------------------------------------------

    def compare(self, c: list[Any]) -> bool:
        """One ``[target, key, cmp, operand]`` (`raftx.kv.commands`): a value compare of
        a missing key is false; a missing key's mod revision is 0."""
        target, key, cmp, operand = c
        if target == 0:
            v = self.data.get(key)
            return v is not None and bool(_CMP[cmp](v, operand))
        return bool(_CMP[cmp](self.mod.get(key, 0), operand))

    def txn(self, compares: list[Any], success: list[Any], failure: list[Any]) -> tuple[bool, list[Any]] | int:
        """Run a transaction: ``(succeeded, responses)`` (a put answers its revision,
        a delete its revision or 0, a get ``[value, mod_revision]`` or None), or the
        id of a lease a put of the chosen branch names and that does not exist
        (then nothing changed)."""
        ok = all(self.compare(c) for c in compares)
        ops = success if ok else failure
        for op in ops:
            if op[0] == 1 and op[3] and op[3] not in self.leases:
                lease: int = op[3]
                return lease
        out: list[Any] = []
        for op in ops:
            kind, key = op[0], op[1]
            if kind == 1:
                out.append(self.put(key, op[2], op[3]))
            elif kind == 2:
                out.append(self.remove(key))
            else:
                got = self.get(key)
                out.append(None if got is None else list(got))
        return ok, out

    # -- snapshots --------------------------------------------------------------------

    def rows(self) -> Iterator[list[Any]]:
        """The key rows of a snapshot: ``[key, value, mod_revision, lease_id]`` (a copy
        of the current state, taken now)."""
        data, mod, kl = dict(self.data), dict(self.mod), dict(self.key_lease)
        return ([k, v, mod[k], kl.get(k, 0)] for k, v in data.items())

    def load_row(self, row: Any) -> None:
        k, v, rev, lid = row
        if type(k) is not bytes or type(v) is not bytes or type(rev) is not int or type(lid) is not int:
            raise TypeError("malformed key row")
        self.data[k] = v
        self.mod[k] = rev
        if lid:
            self.key_lease[k] = lid
            self.leases[lid].keys.add(k)
