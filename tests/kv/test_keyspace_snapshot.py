"""KVStateMachine's revisions, leases and history through snapshots (format 2, and
format 1 still read), compaction with the snapshot, and deterministic lease expiry."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import msgpack
import pytest

from raftx.errors import Compacted, StorageCorrupted
from raftx.kv import KVStateMachine
from raftx.kv import commands as c
from raftx.storage.snapshot import pack_chunks
from raftx.types import Entry, LogId, Membership, SnapshotMeta, StoredMembership


class Log:
    def __init__(self, sm: KVStateMachine) -> None:
        self.sm, self.index = sm, 1

    async def one(self, payload: bytes | Membership | None) -> c.KVResponse:
        (r,) = await self.sm.apply([Entry(LogId(1, self.index), payload)])
        self.index += 1
        return r


async def _transfer(a: KVStateMachine, b: KVStateMachine) -> None:
    snap = await (await a.get_snapshot_builder()).build_snapshot()
    dst = await b.begin_receiving_snapshot()
    dst.write(snap.snapshot.read())
    snap.snapshot.close()
    await b.install_snapshot(snap.meta, dst)
    dst.close()


def _state(sm: KVStateMachine) -> tuple:
    ks = sm._state.ks
    return (dict(ks.data), dict(ks.mod), ks.revision, ks.compacted, list(ks.hist_keys), list(ks.hist_values),
            {i: (lease.ttl_ms, lease.version, sorted(lease.keys)) for i, lease in ks.leases.items()},
            dict(ks.key_lease), ks.next_lease, ks.lease_seq)


@pytest.mark.parametrize("files", [False, True])
async def test_snapshot_carries_revisions_leases_and_kept_history(files: bool, tmp_path: Path) -> None:
    a = KVStateMachine(tmp_path / "a" if files else None, history_keep=4)
    log = Log(a)
    await log.one(Membership.new({1}))
    lease_id, ttl = (await log.one(c.encode_lease(c.LEASE_GRANT, 5000)))[1]
    for i in range(8):
        await log.one(c.encode_put_lease(f"k{i}", b"v%d" % i, lease_id if i % 2 else 0))
    await log.one(c.encode_delete("k0"))
    b = KVStateMachine(tmp_path / "b" if files else None)
    await _transfer(a, b)
    assert a.compact_revision == 5 and b.compact_revision == 5  # compacted to the last 4 revisions
    assert _state(a) == _state(b)
    assert [(e.type, e.key, e.mod_revision) for e in b.events(b"", 6)] == [
        ("put", b"k5", 6), ("put", b"k6", 7), ("put", b"k7", 8), ("delete", b"k0", 9)]
    with pytest.raises(Compacted):
        b.events(b"", 5)
    # the lease came along: revoking it on b deletes exactly its keys
    follow = Log(b)
    follow.index = log.index
    assert (await follow.one(c.encode_lease(c.LEASE_REVOKE, lease_id)))[0] == c.OK
    assert sorted(b.data) == [b"k2", b"k4", b"k6"]
    if files:  # and the file is what a restarted node loads
        assert _state(KVStateMachine(tmp_path / "a")) == _state(a)


async def test_format_1_snapshots_are_still_read() -> None:
    mem = StoredMembership(LogId(1, 1), Membership.new({1}))
    header = [1, [1, 3], [1, 1], mem.membership.to_bytes(), 2, 1]
    items = [[b"a", b"1"], [b"b", b"2"], [9, 0, [[1, 0, None]]]]
    data = b"".join(pack_chunks(header, items))
    sm = KVStateMachine()
    meta = SnapshotMeta(LogId(1, 3), mem, "s1")
    await sm.install_snapshot(meta, io.BytesIO(data))
    assert dict(sm.data) == {b"a": b"1", b"b": b"2"}
    assert sm.get_with_revision(b"a") == (b"1", 1) and sm.revision == 1 and sm.compact_revision == 1
    assert 9 in sm.sessions
    log = Log(sm)
    log.index = 4
    assert await log.one(c.encode_put("a", b"x")) == (c.OK, 2)  # revisions go on from there
    with pytest.raises(Compacted):
        sm.events(b"", 1)


@pytest.mark.parametrize("mutate", [
    lambda h, it: (h.__setitem__(6, h[6] + 1), it),                       # history does not end at the revision
    lambda h, it: (h, [[5, 1000, 1], *it[1:]]),                            # key row names a lease that is not there
    lambda h, it: (h.__setitem__(0, 3), it),                               # unknown format
])
async def test_malformed_format_2_snapshots_are_refused(mutate) -> None:
    mem = StoredMembership(LogId(1, 1), Membership.new({1}))
    header = [2, [1, 3], [1, 1], mem.membership.to_bytes(), 1, 0, 1, 0, 1, 1, 1, 1]
    items = [[1, 1000, 1], [b"k", b"v", 1, 1], [b"k", b"v"]]
    header, items = mutate(header, items)
    sm = KVStateMachine()
    with pytest.raises(StorageCorrupted):
        await sm.verify_snapshot(SnapshotMeta(LogId(1, 3), mem, "s"), io.BytesIO(b"".join(pack_chunks(header, items))))


async def test_lease_expiry_is_deterministic_and_a_keep_alive_wins_over_a_stale_expiry() -> None:
    sms = [KVStateMachine(), KVStateMachine()]
    logs = [Log(sm) for sm in sms]
    keys = [f"k{i}".encode() for i in (5, 1, 9, 3, 7)]
    for log in logs:
        lease_id = (await log.one(c.encode_lease(c.LEASE_GRANT, 1000)))[1][0]
        for k in keys:
            await log.one(c.encode_put_lease(k, b"v", lease_id))
        version = log.sm.leases[lease_id].version
        await log.one(c.encode_lease(c.LEASE_KEEPALIVE, lease_id))
        # an expiry decided before the keep-alive: ignored
        assert await log.one(c.encode_lease(c.LEASE_EXPIRE, lease_id, version=version)) == (c.OK, None)
        assert len(log.sm) == 5
        await log.one(c.encode_lease(c.LEASE_EXPIRE, lease_id, version=log.sm.leases[lease_id].version))
        assert len(log.sm) == 0 and not log.sm.leases
    # every replica deleted the keys in the same (key) order, with the same revisions
    assert [e for e in sms[0].events(b"", 1)] == [e for e in sms[1].events(b"", 1)]
    assert [e.key for e in sms[0].events(b"", 6)] == sorted(keys)


@pytest.mark.parametrize("cmd", [
    [c.TXN, 0, 0, 0, b"", [[0, b"k", 9, b"v"]], [], []],        # unknown comparison
    [c.TXN, 0, 0, 0, b"", [[1, b"k", 0, b"v"]], [], []],        # mod_revision against bytes
    [c.TXN, 0, 0, 0, b"", [], [[1, b"k", b"v"]], []],           # put without its lease field
    [c.TXN, 0, 0, 0, b"", [], [[3, b"k"]], []],                 # CAS is not a txn op
    [c.TXN, 0, 0, 0, b"x", [], [], []] + [[]],                  # wrong arity
    [c.LEASE_GRANT, 0, 0, 0, b"", 0],                           # TTL 0
    [c.LEASE_GRANT, 0, 0, 0, b"k", 1000],                       # lease commands have no key
    [c.PUT_LEASE, 0, 0, 0, b"k", b"v", -1],
])
async def test_malformed_new_commands_change_nothing(cmd: list) -> None:
    sm = KVStateMachine()
    r = await Log(sm).one(msgpack.packb(cmd, use_bin_type=True))
    assert r[0] == c.BAD_COMMAND and sm.revision == 0 and not sm.leases


async def test_wait_leases_changed_wakes_on_grants_and_refreshes_only() -> None:
    # The lease keeper waits on this instead of on every applied batch (issue 15).
    sm = KVStateMachine(None)
    log = Log(sm)
    seen = sm.lease_version
    waiter = asyncio.ensure_future(sm.wait_leases_changed(seen))
    await log.one(c.encode_put(b"k", b"v"))  # not a lease change
    await asyncio.sleep(0)
    assert not waiter.done()
    lease_id = (await log.one(c.encode_lease(c.LEASE_GRANT, 1000)))[1][0]
    await asyncio.wait_for(waiter, 5)
    seen = sm.lease_version
    assert seen > 0
    waiter = asyncio.ensure_future(sm.wait_leases_changed(seen))
    await log.one(c.encode_lease(c.LEASE_KEEPALIVE, lease_id))
    await asyncio.wait_for(waiter, 5)
    # a change between the read of lease_version and the wait is not missed
    seen = sm.lease_version
    await log.one(c.encode_lease(c.LEASE_KEEPALIVE, lease_id))
    await asyncio.wait_for(sm.wait_leases_changed(seen), 5)
