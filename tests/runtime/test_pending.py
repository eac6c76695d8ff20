"""`PendingCalls`, the one registry of a node's unanswered calls (issue 17 item 2)."""

from __future__ import annotations

import asyncio

from raftx.errors import Fatal
from raftx.runtime.pending import PendingCalls
from raftx.types import ClientWriteResponse, Entry, EntryRange, LogId


async def test_stop_fails_every_kind_of_pending_call_and_forgets_them() -> None:
    pending = PendingCalls(asyncio.get_running_loop())
    call, write, batch = pending.call(), pending.write(), pending.batch([b"a", b"b"])
    answered = pending.call()
    pending.resolve(answered, 7)
    reason = Fatal("stopped")
    pending.fail_all(reason)
    assert answered.result() == 7
    assert call.exception() is reason and write.exception() is reason
    assert batch.future.result() == [reason, reason]
    pending.fail_all(Fatal("again"))  # nothing left to fail
    assert call.exception() is reason


async def test_applied_writes_are_answered_with_their_log_ids_and_forgotten() -> None:
    pending = PendingCalls(asyncio.get_running_loop())
    single, batch = pending.write(), pending.batch([b"b", b"c"])
    slots = batch.take(2)[1]
    entries = EntryRange.of([Entry(LogId(3, 5 + k), p) for k, p in enumerate([b"a", b"b", b"c"])])
    pending.settle_applied(5, [single], entries, ["x", "y", "z"])
    pending.settle_applied(6, slots, entries, ["x", "y", "z"])
    assert single.result() == ClientWriteResponse(LogId(3, 5), "x", None)
    assert [r.log_id for r in batch.future.result()] == [LogId(3, 6), LogId(3, 7)]
    pending.fail_all(Fatal("stopped"))  # the answered write is no longer pending
    assert single.exception() is None
