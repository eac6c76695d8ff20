"""KVStateMachine: the storage conformance suite, commands, sessions (§8), snapshots (§7)."""

from __future__ import annotations

import io
from pathlib import Path

import msgpack
import pytest

from raftx.errors import BadCommand, StorageCorrupted, StorageError
from raftx.kv import KVStateMachine
from raftx.kv import commands as c
from raftx.storage import MemLogStore
from raftx.testing.log_suite import log_store_suite_cases, run_log_store_case
from raftx.types import Entry, EntryRange, LogId, Membership, SnapshotMeta, StoredMembership


class Log:
    """Feeds commands to a state machine as consecutive entries of term 1, as a list
    of `Entry` or (``as_range``) as the `EntryRange` the node passes."""

    as_range = False

    def __init__(self, sm: KVStateMachine, start: int = 1) -> None:
        self.sm = sm
        self.index = start

    async def apply(self, *payloads: bytes | Membership | None) -> list:
        entries = []
        for p in payloads:
            entries.append(Entry(LogId(1, self.index), p))
            self.index += 1
        return await self.sm.apply(EntryRange.of(entries) if self.as_range else entries)

    async def one(self, payload: bytes) -> c.KVResponse:
        (r,) = await self.apply(payload)
        return r


@pytest.fixture(autouse=True, params=["entry-list", "entry-range"])
def _apply_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs against both `KVStateMachine.apply` paths."""
    monkeypatch.setattr(Log, "as_range", request.param == "entry-range")


# -- the public conformance suite ------------------------------------------------------


@pytest.mark.parametrize("case", log_store_suite_cases())
async def test_conformance_in_memory(case: str) -> None:
    async def builder():
        return MemLogStore(), KVStateMachine()

    await run_log_store_case(builder, case, timeout=60)


@pytest.mark.parametrize("case", ["snapshot_meta", "transfer_snapshot", "apply_multiple"])
async def test_conformance_with_snapshot_files(case: str, tmp_path: Path) -> None:
    n = iter(range(100))

    async def builder():
        return MemLogStore(), KVStateMachine(tmp_path / f"sm{next(n)}")

    await run_log_store_case(builder, case, timeout=60)


# -- commands ---------------------------------------------------------------------------


async def test_put_get_delete() -> None:
    log = Log(KVStateMachine())
    assert await log.one(c.encode_get("k")) == (c.NOT_FOUND, None)
    assert await log.one(c.encode_put("k", b"v1")) == (c.OK, 1)  # writes answer their revision
    assert await log.one(c.encode_get(b"k")) == (c.OK, b"v1")
    assert await log.one(c.encode_put(b"k", "v2")) == (c.OK, 2)
    assert log.sm.get(b"k") == b"v2"
    assert await log.one(c.encode_delete("k")) == (c.OK, 3)
    assert await log.one(c.encode_delete("k")) == (c.NOT_FOUND, None)
    assert log.sm.get(b"k") is None and len(log.sm) == 0


async def test_cas_semantics() -> None:
    log = Log(KVStateMachine())
    # expected None: create only if absent
    assert await log.one(c.encode_cas("k", None, b"a")) == (c.OK, 1)
    assert await log.one(c.encode_cas("k", None, b"b")) == (c.CAS_MISMATCH, b"a")
    # expected value: swap only if equal; a mismatch reports the current value
    assert await log.one(c.encode_cas("k", b"x", b"b")) == (c.CAS_MISMATCH, b"a")
    assert log.sm.get(b"k") == b"a"
    assert await log.one(c.encode_cas("k", b"a", b"b")) == (c.OK, 2)
    assert log.sm.get(b"k") == b"b"
    # new None: delete if equal
    assert await log.one(c.encode_cas("k", b"b", None)) == (c.OK, 3)
    assert b"k" not in log.sm
    assert await log.one(c.encode_cas("k", b"b", b"c")) == (c.CAS_MISMATCH, None)


async def test_batch_gives_one_response_per_entry_in_order() -> None:
    log = Log(KVStateMachine())
    mem = Membership.new({1, 2, 3})
    out = await log.apply(
        None, mem, c.encode_put("a", b"1"), c.encode_get("a"), c.encode_cas("a", b"1", b"2"), c.encode_get("a"))
    assert out == [None, None, (c.OK, 1), (c.OK, b"1"), (c.OK, 2), (c.OK, b"2")]
    assert await log.sm.applied_state() == (LogId(1, 6), StoredMembership(LogId(1, 2), mem))


@pytest.mark.parametrize("payload", [
    b"", b"\xc1", b"\x93\x01\x02", msgpack.packb({"op": 1}), msgpack.packb([9, 0, 0, 0, b"k"]),
    msgpack.packb([1, 0, 0, 0, b"k"]), msgpack.packb([1, 0, 0, 0, "k", b"v"]),
    msgpack.packb([1, -1, 0, 0, b"k", b"v"]), msgpack.packb([1, 0, 0, 0, b"k", 5]),
    msgpack.packb([3, 0, 0, 0, b"k", 1, b"v"]), msgpack.packb([True, 0, 0, 0, b"k"]),
    msgpack.packb([1, 0, 0, 0, b"k", b"v"])[:-1],
])
async def test_bad_command_bytes_get_an_error_response(payload: bytes) -> None:
    log = Log(KVStateMachine())
    await log.one(c.encode_put("keep", b"1"))
    r = await log.one(payload)
    assert r.status == c.BAD_COMMAND and isinstance(r.value, str)
    assert dict(log.sm.data) == {b"keep": b"1"}
    assert log.sm.last_applied == LogId(1, 2)  # the entry still counts as applied
    assert await log.one(c.encode_get("keep")) == (c.OK, b"1")  # and the machine keeps working


def test_encoders_reject_bad_arguments() -> None:
    with pytest.raises(BadCommand):
        c.encode_put(1, b"v")
    with pytest.raises(BadCommand):
        c.encode_put("k", 3.5)
    with pytest.raises(BadCommand):
        c.encode_put("k" * (c.MAX_KEY_BYTES + 1), b"v")
    with pytest.raises(BadCommand):
        c.encode_delete("k", client_id=-1)
    with pytest.raises(BadCommand):
        c.encode_cas("k", b"a", b"b", serial=2**64)
    assert isinstance(BadCommand("x"), ValueError)


def test_decode_round_trip() -> None:
    cmd = c.decode(c.encode_cas("k", None, b"n", client_id=7, serial=3, acked=2))
    assert cmd == c.Command(c.CAS, 7, 3, 2, b"k", (None, b"n"))


async def test_out_of_order_entry_is_refused() -> None:
    log = Log(KVStateMachine())
    await log.apply(c.encode_put("a", b"1"), c.encode_put("a", b"2"))
    with pytest.raises(StorageError):
        await log.sm.apply([Entry(LogId(1, 2), c.encode_put("a", b"3"))])
    with pytest.raises(StorageError):  # the node's form: nothing of the range is applied
        await log.sm.apply(EntryRange(2, [1, 1], [c.encode_put("a", b"3"), c.encode_put("b", b"3")]))
    assert log.sm.get(b"a") == b"2" and log.sm.get(b"b") is None


# -- sessions: a retried write is applied once (§8) ---------------------------------------


async def test_retried_write_is_applied_once() -> None:
    log = Log(KVStateMachine())
    first = await log.one(c.encode_cas("ctr", None, b"1", client_id=42, serial=1, acked=1))
    assert first == (c.OK, 1)
    # The client did not see the answer and retries: same serial, same response, no change.
    await log.one(c.encode_put("ctr", b"other", client_id=99, serial=1, acked=1))
    retry = await log.one(c.encode_cas("ctr", None, b"1", client_id=42, serial=1, acked=1))
    assert retry == (c.OK, 1)
    assert log.sm.get(b"ctr") == b"other"
    # A put retried after someone else wrote is not re-applied either.
    await log.one(c.encode_put("p", b"mine", client_id=42, serial=2, acked=2))
    await log.one(c.encode_put("p", b"theirs", client_id=99, serial=2, acked=2))
    await log.one(c.encode_put("p", b"mine", client_id=42, serial=2, acked=2))
    assert log.sm.get(b"p") == b"theirs"


async def test_pipelined_serials_and_acknowledgement() -> None:
    log = Log(KVStateMachine())
    # Serials 1..3 in flight at once (acked stays 1); 2 commits before 1 (reordered retry).
    await log.one(c.encode_put("b", b"2", client_id=5, serial=2, acked=1))
    await log.one(c.encode_put("a", b"1", client_id=5, serial=1, acked=1))  # not a duplicate: applied
    assert log.sm.get(b"a") == b"1"
    await log.one(c.encode_delete("b", client_id=5, serial=3, acked=1))
    assert b"b" not in log.sm
    # A retry of 2 (still unacknowledged) is answered from the table, not re-applied.
    assert await log.one(c.encode_put("b", b"2", client_id=5, serial=2, acked=1)) == (c.OK, 1)
    assert b"b" not in log.sm
    # Once the client acknowledges up to 4, a late duplicate of 2 is STALE and changes nothing.
    await log.one(c.encode_put("z", b"z", client_id=5, serial=4, acked=4))
    assert await log.one(c.encode_put("b", b"2", client_id=5, serial=2, acked=1)) == (c.STALE, None)
    assert b"b" not in log.sm
    session = dict(log.sm.sessions.items())[5]
    assert session.floor == 4 and set(session.responses) == {4}


async def test_session_table_is_bounded_and_evicts_least_recent() -> None:
    log = Log(KVStateMachine(max_sessions=2, max_responses=2))
    await log.one(c.encode_put("k", b"1", client_id=1, serial=1))
    await log.one(c.encode_put("k", b"2", client_id=2, serial=1))
    await log.one(c.encode_put("k", b"1", client_id=1, serial=2))  # client 1 used again
    await log.one(c.encode_put("k", b"3", client_id=3, serial=1))  # evicts client 2
    assert sorted(cid for cid, _ in log.sm.sessions.items()) == [1, 3]
    # Per-client cap: responses beyond max_responses move the floor, so a very late
    # retry of the dropped serial is STALE, never applied twice.
    await log.one(c.encode_put("x", b"3", client_id=1, serial=3))
    assert await log.one(c.encode_put("x", b"old", client_id=1, serial=1)) == (c.STALE, None)
    assert log.sm.get(b"x") == b"3"


async def test_a_lagging_floor_drops_the_oldest_quarter_of_the_responses_at_once() -> None:
    """A client whose acked floor never moves: past max_responses the oldest quarter
    go at once (one sort, not a scan per write) and the floor moves past them; the
    kept answers still deduplicate retries."""
    log = Log(KVStateMachine(max_responses=8))
    for serial in range(1, 10):
        await log.one(c.encode_put(f"k{serial}", b"v", client_id=9, serial=serial, acked=1))
    session = dict(log.sm.sessions.items())[9]
    assert sorted(session.responses) == [4, 5, 6, 7, 8, 9] and session.floor == 4
    assert await log.one(c.encode_put("k3", b"again", client_id=9, serial=3, acked=1)) == (c.STALE, None)
    revision = log.sm.revision
    assert (await log.one(c.encode_put("k4", b"again", client_id=9, serial=4, acked=1)))[0] == c.OK
    assert log.sm.get(b"k4") == b"v" and log.sm.revision == revision  # answered from the cache


async def test_no_session_means_no_dedup() -> None:
    log = Log(KVStateMachine())
    await log.one(c.encode_cas("n", None, b"1"))
    assert await log.one(c.encode_cas("n", None, b"1")) == (c.CAS_MISMATCH, b"1")
    assert len(log.sm.sessions) == 0


# -- snapshots (§7) ----------------------------------------------------------------------


async def _populate(sm: KVStateMachine) -> Log:
    log = Log(sm)
    await log.apply(None, Membership.new({1, 2}))
    for i in range(50):
        await log.one(c.encode_put(f"k{i}", bytes([i]) * 100, client_id=77, serial=i + 1, acked=i + 1))
    await log.one(c.encode_delete("k3", client_id=78, serial=1, acked=1))
    return log


@pytest.mark.parametrize("files", [False, True])
async def test_snapshot_round_trip_includes_dedup_table(files: bool, tmp_path: Path) -> None:
    a = KVStateMachine(tmp_path / "a" if files else None)
    log = await _populate(a)
    snap = await (await a.get_snapshot_builder()).build_snapshot()
    snap.snapshot.close()
    cur = await a.get_current_snapshot()
    assert cur is not None and cur.meta == snap.meta
    b = KVStateMachine(tmp_path / "b" if files else None)
    await b.apply([Entry(LogId(1, 1), c.encode_put("junk", b"j"))])
    dst = await b.begin_receiving_snapshot()
    while chunk := cur.snapshot.read(777):
        dst.write(chunk)
    cur.snapshot.close()
    await b.install_snapshot(cur.meta, dst)
    dst.close()
    # install_snapshot replaced the whole state, including the old key
    assert dict(b.data) == dict(a.data) and b.get(b"junk") is None
    assert await b.applied_state() == await a.applied_state()
    # the dedup table came along: a retry of client 77's last write is not re-applied
    follow = Log(b, log.index)
    await follow.one(c.encode_put("k49", b"new"))
    assert await follow.one(c.encode_put("k49", bytes([49]) * 100, client_id=77, serial=50, acked=50)) == (c.OK, 50)
    assert b.get(b"k49") == b"new"


async def test_snapshot_survives_restart(tmp_path: Path) -> None:
    a = KVStateMachine(tmp_path)
    await _populate(a)
    snap = await (await a.get_snapshot_builder()).build_snapshot()
    snap.snapshot.close()
    for reopened in (KVStateMachine(tmp_path), await KVStateMachine.open(tmp_path)):
        assert dict(reopened.data) == dict(a.data)
        assert await reopened.applied_state() == await a.applied_state()
        assert 77 in reopened.sessions and 78 in reopened.sessions


async def test_malformed_snapshot_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    a = KVStateMachine()
    await _populate(a)
    snap = await (await a.get_snapshot_builder()).build_snapshot()
    good = snap.snapshot.read()
    b = KVStateMachine(tmp_path)
    await b.apply([Entry(LogId(1, 1), c.encode_put("mine", b"1"))])
    for bad in (good[: len(good) // 2], b"\x00" + good[1:], good + msgpack.packb(1), b""):
        with pytest.raises(StorageCorrupted):
            await b.install_snapshot(snap.meta, io.BytesIO(bad))
        assert dict(b.data) == {b"mine": b"1"} and b.last_applied == LogId(1, 1)
    # meta that disagrees with the data is refused too
    wrong = SnapshotMeta(LogId(1, 999), snap.meta.last_membership, "x")
    with pytest.raises(StorageCorrupted):
        await b.install_snapshot(wrong, io.BytesIO(good))
    assert await b.get_current_snapshot() is None


async def test_damaged_snapshot_file_refuses_to_load(tmp_path: Path) -> None:
    a = KVStateMachine(tmp_path)
    await _populate(a)
    (await (await a.get_snapshot_builder()).build_snapshot()).snapshot.close()
    (path,) = tmp_path.glob("*.snap")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(StorageCorrupted):
        KVStateMachine(tmp_path)
