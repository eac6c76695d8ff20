"""`LogCache` (encode once: the leader's batches reused for replication and apply) and
the storage worker's deferred purge (no hard-state write on the append path)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from raftx.engine.events import IOFlushed
from raftx.messages import PayloadBatch
from raftx.runtime.entries import BatchEntries, encode_payloads
from raftx.runtime.log_cache import LogCache
from raftx.runtime.storage_worker import StorageWorker
from raftx.storage import MemLogStore
from raftx.storage.batch import EncodedBatch
from raftx.types import Entry, LogId, Membership, Vote


def _batch(term: int, first: int, n: int, tag: bytes = b"v") -> tuple[EncodedBatch, list[bytes]]:
    payloads = [tag + b"%d" % (first + p) for p in range(n)]
    return encode_payloads(PayloadBatch(term, first, payloads)), payloads


def _expected(entries: list[Entry]) -> EncodedBatch:
    return EncodedBatch.from_entries(entries)


def test_encode_payloads_matches_the_codec_scan() -> None:
    pb = PayloadBatch(4, 10, [b"abc", None, Membership.new([1, 2]), b"", bytearray(b"zz")])
    got = encode_payloads(pb)
    scanned = EncodedBatch.from_bytes(got.data, 10)
    assert (list(got.terms), list(got.offsets), list(got.lengths)) == (
        list(scanned.terms), list(scanned.offsets), list(scanned.lengths))
    assert [e.payload for e in scanned.entries()] == [b"abc", None, Membership.new([1, 2]), b"", b"zz"]


def test_ranges_within_and_across_batches() -> None:
    cache = LogCache()
    b1, p1 = _batch(1, 0, 5)
    b2, p2 = _batch(2, 5, 3)
    cache.append(b1, p1)
    cache.append(b2)  # a follower's batch: no payloads, decoded on demand
    entries = [Entry(LogId(1, i), p1[i]) for i in range(5)] + [Entry(LogId(2, 5 + i), p2[i]) for i in range(3)]
    assert (cache.first_index, cache.last_index, len(cache)) == (0, 7, 8)
    for lo, hi in [(0, 8), (0, 5), (5, 8), (2, 4), (3, 7), (7, 8)]:
        got = cache.get_batch(lo, hi)
        assert got is not None and got == _expected(entries[lo:hi]) and got.first_index == lo
        assert list(got.terms) == [e.log_id.term for e in entries[lo:hi]]
        assert list(cache.get_entries(lo, hi) or ()) == entries[lo:hi]
    assert cache.get_batch(0, 9) is None and cache.get_entries(8, 9) is None and cache.get_batch(3, 3) is None
    assert {type(e.payload) for e in cache.get_entries(0, 8) or ()} == {bytes}


def test_a_received_chunk_with_blank_and_membership_entries() -> None:
    """A follower's chunk (the received bytes, no payloads) holding a leader's blank
    entry and membership changes among client entries: each gets its `Entry.payload`."""
    m1, m2 = Membership.new([1, 2, 3]), Membership.new([1, 2, 3, 4])
    payloads: list[Any] = [b"a" * 10, None, b"b" * 10, m1, b"", b"c" * 10, m2, None, b"d" * 10]
    received = EncodedBatch.from_bytes(encode_payloads(PayloadBatch(3, 20, payloads)).data, 20)
    cache = LogCache()
    b0, p0 = _batch(2, 10, 10)
    cache.append(b0, p0)  # the leader's own chunk before it, with payloads
    cache.append(received)
    want = [Entry(LogId(2, 10 + i), p) for i, p in enumerate(p0)] + [
        Entry(LogId(3, 20 + i), p) for i, p in enumerate(payloads)]
    for lo, hi in [(20, 29), (10, 29), (21, 22), (22, 27), (23, 24), (24, 29), (28, 29), (15, 24)]:
        got = cache.get_entries(lo, hi)
        assert got is not None and list(got) == want[lo - 10 : hi - 10], (lo, hi)
        assert list(got.payloads) == [e.payload for e in want[lo - 10 : hi - 10]], (lo, hi)
    assert BatchEntries(received).memberships() == [(LogId(3, 23), m1), (LogId(3, 26), m2)]
    assert BatchEntries(received.slice(24, 29)).memberships() == [(LogId(3, 26), m2)]
    assert BatchEntries(received.slice(24, 26)).memberships() == []


def test_memberships_of_equal_sized_records() -> None:
    """Every record the size of a membership record: found by kind, not by size."""
    m = Membership.new([1, 2])
    size = len(m.to_bytes())
    payloads: list[Any] = [b"x" * size, m, b"y" * size, m, b"z" * size]
    batch = EncodedBatch.from_bytes(encode_payloads(PayloadBatch(1, 5, payloads)).data, 5)
    assert len(set(batch.lengths)) == 1
    assert BatchEntries(batch).memberships() == [(LogId(1, 6), m), (LogId(1, 8), m)]
    plain = EncodedBatch.from_bytes(encode_payloads(PayloadBatch(1, 5, [b"x" * size] * 4)).data, 5)
    assert BatchEntries(plain).memberships() == []


def test_truncate_then_append_mirrors_the_log() -> None:
    cache = LogCache()
    b1, p1 = _batch(1, 0, 6)
    cache.append(b1, p1)
    cache.truncate_after(3)  # §5.3: a conflicting suffix removed
    assert cache.last_index == 3 and cache.get_batch(4, 5) is None
    b2, p2 = _batch(2, 4, 2, tag=b"new")
    cache.append(b2, p2)
    assert list(cache.get_entries(3, 6) or ()) == [Entry(LogId(1, 3), p1[3]), Entry(LogId(2, 4), p2[0]), Entry(LogId(2, 5), p2[1])]
    cache.truncate_after(-1)
    assert len(cache) == 0 and cache.get_batch(0, 1) is None


def test_a_gap_restarts_the_cache_and_bounds_evict_the_oldest() -> None:
    cache = LogCache(max_batches=2)
    for k in range(3):
        b, p = _batch(1, 2 * k, 2)
        cache.append(b, p)
    assert (cache.first_index, cache.last_index) == (2, 5)  # the first batch was evicted
    b, p = _batch(1, 10, 2)
    cache.append(b, p)  # not after index 5: the cache now holds only this batch
    assert (cache.first_index, cache.last_index) == (10, 11) and cache.get_batch(4, 6) is None
    small = LogCache(max_bytes=1)
    for k in range(3):
        b, p = _batch(1, k, 1)
        small.append(b, p)
    assert (small.first_index, small.last_index) == (2, 2)  # the newest batch always stays


async def test_cluster_replicates_and_applies_from_the_cache(cluster: Any) -> None:
    """The leader reuses its encoded batches; every node ends with the same bytes."""
    await cluster.initialize([1, 2, 3])
    leader = await cluster.leader()
    results = await leader.client_write_many([b"w%d" % i for i in range(50)])
    assert all(not isinstance(r, BaseException) for r in results)
    last = max(r.log_id.index for r in results)
    for n in cluster.nodes.values():
        await n.wait(10).applied_index_at_least(last, "all applied")
    assert leader._core.log_cache.hits > 0
    stores = [n._core.log_store for n in cluster.nodes.values()]
    readers = [await s.get_log_reader() for s in stores]
    blobs = [(await r.try_get_log_bytes(1, last + 1)).data for r in readers]
    assert blobs[0] and blobs.count(blobs[0]) == len(blobs)


class _CountingStore(MemLogStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    async def purge(self, log_id: LogId) -> None:
        self.calls.append(("purge", log_id))
        await super().purge(log_id)

    async def save_vote(self, vote: Vote) -> None:
        self.calls.append(("vote", vote))
        await super().save_vote(vote)


async def test_purges_are_deferred_coalesced_and_ordered_before_a_vote() -> None:
    store = _CountingStore()
    flushed: list[int] = []
    got_all = asyncio.Event()

    def post(event: Any) -> None:
        assert isinstance(event, IOFlushed)
        flushed.append(event.io_id)
        if event.io_id == 4:
            got_all.set()

    worker = StorageWorker(store, post, lambda exc, what: pytest.fail(f"{what}: {exc!r}"),
                           commit_save_interval=3600.0)
    worker.start()
    try:
        b, _ = _batch(1, 0, 10)
        worker.submit("append", 0, b)
        worker.submit("purge", 1, LogId(1, 3))
        worker.submit("purge", 2, LogId(1, 5))
        b2, _ = _batch(1, 10, 2)
        worker.submit("append", 3, b2)
        worker.submit("vote", 4, Vote(2, 1))
        await asyncio.wait_for(got_all.wait(), 10)
        # io ids reported in order, each meaning "everything up to here is durable"
        assert flushed == sorted(flushed) and flushed[-1] == 4 and 2 in flushed
        # one purge (the latest point) instead of two, and before the vote (R14)
        assert store.calls == [("purge", LogId(1, 5)), ("vote", Vote(2, 1))]
        assert (await store.get_log_state()).last_purged_log_id == LogId(1, 5)
    finally:
        await worker.close(5.0)


async def test_a_deferred_purge_runs_when_idle_and_at_close() -> None:
    store = _CountingStore()
    flushed: list[int] = []
    worker = StorageWorker(store, lambda e: flushed.append(e.io_id), lambda exc, what: pytest.fail(what),
                           commit_save_interval=3600.0)
    worker.start()
    b, _ = _batch(1, 0, 10)
    worker.submit("append", 0, b)
    worker.submit("purge", 1, LogId(1, 2))  # the first purge: nothing ran for an interval, so at once
    await asyncio.wait_for(_until(lambda: store.calls == [("purge", LogId(1, 2))]), 10)
    worker.submit("purge", 2, LogId(1, 4))  # the next one waits for the interval ...
    await asyncio.wait_for(_until(lambda: 2 in flushed), 10)
    assert store.calls == [("purge", LogId(1, 2))]
    await worker.close(5.0)  # ... or for close
    assert store.calls == [("purge", LogId(1, 2)), ("purge", LogId(1, 4))]


async def _until(cond: Any) -> None:
    while not cond():
        await asyncio.sleep(0)
