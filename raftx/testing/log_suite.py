"""The public conformance suite for log stores and state machines.

Modeled on openraft's ``testing::log::Suite`` (its 45 cases, adapted to raftx's
API), plus the crash and fault cases openraft lacks (torn tail at every byte of the
last record, a flipped bit in a middle record, crash between truncate and append,
crash during purge and during a vote save, reopen equals the state before close,
fsync failure surfaced as `StorageError`).

Plus the cases of storage that must survive power loss and operator mistakes: a
multi-record write torn at sector granularity by a power loss (over `SimFS`), a
lost first segment, a lost hard state, truncate right after purge, wrong
arguments to every method, a second owner of the data, and an offline verifier
(``raftx inspect --verify``) that agrees with ``open`` on every corruption.

Use it on your own store::

    async def builder():
        d = tempfile.mkdtemp()
        store = await MyStore.open(d)
        return store, MemStateMachine(), StoreCapabilities(
            durable=True, reopen=lambda: reopen_my_store(d), cleanup=lambda: shutil.rmtree(d))

    report = await run_log_store_suite(builder)   # raises AssertionError naming failed cases

or one pytest test per case::

    @pytest.mark.parametrize("case", log_store_suite_cases())
    async def test_store(case):
        await run_log_store_case(builder, case)   # skipped cases raise unittest.SkipTest

``builder`` is an async callable returning a *fresh* ``(log_store, state_machine)``
or ``(log_store, state_machine, extra)`` where ``extra`` is a cleanup callable (sync
or async) or a `StoreCapabilities`. Cases that need a capability the store does not
declare (durability + ``reopen``, a ``faults`` injector, ``corrupt_entry``) are
reported as skipped with the reason.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import unittest
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftx.errors import LeaderChanged, StorageError
from raftx.storage.batch import EncodedBatch
from raftx.storage import helper
from raftx.storage.protocols import LogState, RaftLogStorage, RaftStateMachine
from raftx.testing.faultio import FaultGate, SimulatedCrash
from raftx.testing.simfs import SimFS
from raftx.types import Entry, LogId, Membership, StoredMembership, Vote

__all__ = [
    "StoreCapabilities",
    "SuiteReport",
    "log_store_suite_cases",
    "run_log_store_case",
    "run_log_store_suite",
]

logger = logging.getLogger(__name__)

Pair = tuple[RaftLogStorage, RaftStateMachine]


@dataclass
class StoreCapabilities:
    """What a store offers beyond the protocols, for the crash and fault cases.

    * ``durable``: data survives ``close`` + ``reopen``.
    * ``reopen``: async callable returning a new ``(log_store, state_machine)`` over
      the same data (called after the old store was closed, or abandoned after a
      `SimulatedCrash`).
    * ``faults``: the `FaultInjector` (or `SimFS`) the store performs its file I/O through.
    * ``corrupt_entry``: callable (sync or async) flipping one bit of the stored
      record of a log index while the store is closed.
    * ``detects_corruption_on_open``: True if a corrupt record makes ``reopen``
      raise; otherwise reading it must raise.
    * ``simfs``: the `raftx.testing.simfs.SimFS` the store performs its file I/O
      through (the power-loss cases cut power with it; it also serves as ``faults``).
    * ``lose_file``: callable (sync or async) deleting, while the store is closed,
      the file that holds ``"first_segment"`` (the head of the log),
      ``"last_segment"`` (its tail) or ``"hard_state"`` (vote, committed, purge
      point) -- an operator's mistake.
    * ``open_other_owner``: async callable opening a second store over the same
      data, as another process would, while the case's store is open.
    * ``verify``: callable (sync or async) checking the closed data offline (what
      ``raftx inspect --verify`` does); returns None when it is fine, else what is
      wrong. It must agree with ``reopen`` on every corruption case.
    * ``cleanup``: callable (sync or async) run after the case.
    """

    durable: bool = False
    reopen: Callable[[], Awaitable[Pair]] | None = None
    faults: FaultGate | None = None
    corrupt_entry: Callable[[int], Any] | None = None
    detects_corruption_on_open: bool = True
    simfs: SimFS | None = None
    lose_file: Callable[[str], Any] | None = None
    open_other_owner: Callable[[], Awaitable[Pair]] | None = None
    verify: Callable[[], Any] | None = None
    cleanup: Callable[[], Any] | None = None


@dataclass
class SuiteReport:
    """Outcome per case: ``passed`` names, ``failed`` and ``skipped`` name -> reason."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"{len(self.passed)} passed, {len(self.failed)} failed, {len(self.skipped)} skipped"]
        lines += [f"FAILED {n}: {r}" for n, r in self.failed.items()]
        lines += [f"skipped {n}: {r}" for n, r in self.skipped.items()]
        return "\n".join(lines)


async def _maybe_await(v: Any) -> Any:
    return await v if inspect.isawaitable(v) else v


class _Ctx:
    """One case's store pair and capabilities."""

    def __init__(self, ls: RaftLogStorage, sm: RaftStateMachine, caps: StoreCapabilities) -> None:
        self.ls = ls
        self.sm = sm
        self.caps = caps
        self.builder: Callable[[], Awaitable[Any]] | None = None
        self.extra_sm: RaftStateMachine | None = None

    async def append(self, entries: Sequence[Entry] | EncodedBatch, ls: RaftLogStorage | None = None) -> None:
        """Append and wait for the durability callback (which must fire exactly once)."""
        store = ls or self.ls
        fut: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        calls: list[BaseException | None] = []

        def cb(err: BaseException | None) -> None:
            calls.append(err)
            if not fut.done():
                fut.set_result(err)

        await store.append(entries, cb)
        err = await fut
        _check(len(calls) == 1, f"append callback fired {len(calls)} times")
        if err is not None:
            raise err

    async def reopen(self) -> None:
        """Close the current store (if still open) and reopen over the same data."""
        assert self.caps.reopen is not None
        try:
            await self.ls.close()
        except StorageError:
            pass
        self.ls, self.sm = await self.caps.reopen()

    async def crash_and_reopen(self) -> None:
        """Abandon the store as if the process died, then reopen."""
        assert self.caps.reopen is not None and self.caps.faults is not None
        self.caps.faults.kill()
        self.ls, self.sm = await self.caps.reopen()

    async def entries(self, ls: RaftLogStorage | None = None) -> list[Entry]:
        store = ls or self.ls
        reader = await store.get_log_reader()
        return await reader.try_get_log_entries(0, 1 << 62)


# -- assertion helpers (not `assert`: the suite must work under python -O) ---------------


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def _eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


async def _raises(exc_type: type[BaseException], aw: Awaitable[Any], what: str) -> BaseException:
    try:
        await aw
    except exc_type as exc:
        return exc
    raise AssertionError(f"{what}: expected {exc_type.__name__}")


# -- fixtures ---------------------------------------------------------------------------


def lid(term: int, index: int) -> LogId:
    return LogId(term, index)


def blank(term: int, index: int) -> Entry:
    return Entry(LogId(term, index), None)


def normal(term: int, index: int, payload: bytes | None = None) -> Entry:
    return Entry(LogId(term, index), payload if payload is not None else b"data-%d" % index)


def mem_entry(term: int, index: int, voters: Sequence[int]) -> Entry:
    return Entry(LogId(term, index), Membership.new(voters))


def stored(term: int, index: int, voters: Sequence[int]) -> StoredMembership:
    return StoredMembership(LogId(term, index), Membership.new(voters))


def ids(entries: Sequence[Entry]) -> list[LogId]:
    return [e.log_id for e in entries]


async def feed_10_logs_vote_self(ctx: _Ctx, ls: RaftLogStorage | None = None) -> None:
    """Entries (0,0) and (1,1..10); vote (term 1, node 0) — openraft's fixture."""
    store = ls or ctx.ls
    await ctx.append([blank(0, 0)], store)
    await ctx.append([normal(1, i) for i in range(1, 11)], store)
    await store.save_vote(Vote(1, 0))


# -- registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    name: str
    fn: Callable[[_Ctx], Awaitable[None]]
    needs: tuple[str, ...]


_CASES: dict[str, _Case] = {}


def _case(*needs: str) -> Callable[[Callable[[_Ctx], Awaitable[None]]], Callable[[_Ctx], Awaitable[None]]]:
    def deco(fn: Callable[[_Ctx], Awaitable[None]]) -> Callable[[_Ctx], Awaitable[None]]:
        _CASES[fn.__name__] = _Case(fn.__name__, fn, needs)
        return fn

    return deco


def _missing(caps: StoreCapabilities, needs: tuple[str, ...]) -> str | None:
    for need in needs:
        if need == "durable" and not (caps.durable and caps.reopen is not None):
            return "store declares no durable reopen (StoreCapabilities.durable/reopen)"
        if need == "faults" and (caps.faults is None or caps.reopen is None):
            return "store declares no fault injector (StoreCapabilities.faults)"
        if need == "corrupt" and (caps.corrupt_entry is None or caps.reopen is None):
            return "store declares no corrupt_entry capability"
        if need == "simfs" and (caps.simfs is None or caps.reopen is None):
            return "store declares no simulated file system (StoreCapabilities.simfs)"
        if need == "lose_file" and (caps.lose_file is None or caps.reopen is None):
            return "store declares no lose_file capability (it keeps no separate files)"
        if need == "other_owner" and caps.open_other_owner is None:
            return "store declares no open_other_owner capability (it has no shared data to own)"
        if need == "verify" and (caps.verify is None or caps.reopen is None):
            return "store declares no offline verify (StoreCapabilities.verify)"
    return None


# == openraft's 45 cases ====================================================================


@_case()
async def last_membership_in_log_initial(ctx: _Ctx) -> None:
    _eq(await helper.last_membership_in_log(ctx.ls, 0), [], "memberships in an empty log")


@_case()
async def last_membership_in_log(ctx: _Ctx) -> None:
    await ctx.sm.apply([mem_entry(1, 1, [9])])  # the state machine is ignored
    await ctx.append([blank(1, 1), mem_entry(1, 2, [1, 2, 3]), blank(1, 3), mem_entry(1, 4, [3, 4, 5])])
    await ctx.append([mem_entry(1, 5, [5, 6, 7]), blank(1, 6)])
    _eq(await helper.last_membership_in_log(ctx.ls, 0), [stored(1, 4, [3, 4, 5]), stored(1, 5, [5, 6, 7])], "since 0")
    _eq(await helper.last_membership_in_log(ctx.ls, 5), [stored(1, 5, [5, 6, 7])], "since 5")
    _eq(await helper.last_membership_in_log(ctx.ls, 6), [], "since 6")
    _eq(await helper.last_membership_in_log(ctx.ls, 3), [stored(1, 4, [3, 4, 5]), stored(1, 5, [5, 6, 7])], "since 3")


@_case()
async def last_membership_in_log_multi_step(ctx: _Ctx) -> None:
    await ctx.append([mem_entry(1, 1, [1]), mem_entry(1, 2, [1, 2])] + [blank(1, i) for i in range(3, 100)])
    await ctx.append([mem_entry(1, 100, [2, 3])])
    _eq(await helper.last_membership_in_log(ctx.ls, 0), [stored(1, 2, [1, 2]), stored(1, 100, [2, 3])], "backward scan")


@_case()
async def get_membership_initial(ctx: _Ctx) -> None:
    st = await helper.get_membership_state(ctx.ls, ctx.sm)
    _eq((st.committed, st.effective), (StoredMembership(), StoredMembership()), "initial membership")


@_case()
async def get_membership_from_log_and_empty_sm(ctx: _Ctx) -> None:
    await ctx.append([blank(0, 0), mem_entry(1, 1, [3, 4, 5])])
    st = await helper.get_membership_state(ctx.ls, ctx.sm)
    _eq(st.committed, StoredMembership(), "committed")
    _eq(st.effective, stored(1, 1, [3, 4, 5]), "effective")


@_case()
async def get_membership_from_empty_log_and_sm(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(0, 0), mem_entry(1, 1, [3, 4, 5])])
    st = await helper.get_membership_state(ctx.ls, ctx.sm)
    _eq((st.committed, st.effective), (stored(1, 1, [3, 4, 5]),) * 2, "membership from the state machine")


async def _membership_fixture(ctx: _Ctx, log_extra: int) -> None:
    await ctx.sm.apply([blank(1, 1), mem_entry(1, 2, [3, 4, 5])])
    log = [mem_entry(1, 1, [1, 2, 3]), blank(1, 2)]
    if log_extra >= 1:
        log.append(mem_entry(1, 3, [5, 6, 7]))
    if log_extra >= 2:
        log.append(mem_entry(1, 4, [7, 8, 9]))
    await ctx.append(log)


@_case()
async def get_membership_from_log_le_sm_last_applied(ctx: _Ctx) -> None:
    await _membership_fixture(ctx, 0)
    st = await helper.get_membership_state(ctx.ls, ctx.sm)
    _eq((st.committed, st.effective), (stored(1, 2, [3, 4, 5]),) * 2, "log membership <= applied is ignored")


@_case()
async def get_membership_from_log_gt_sm_last_applied_1(ctx: _Ctx) -> None:
    await _membership_fixture(ctx, 1)
    st = await helper.get_membership_state(ctx.ls, ctx.sm)
    _eq(st.committed, stored(1, 2, [3, 4, 5]), "committed = state machine's")
    _eq(st.effective, stored(1, 3, [5, 6, 7]), "effective = log's")


@_case()
async def get_membership_from_log_gt_sm_last_applied_2(ctx: _Ctx) -> None:
    await _membership_fixture(ctx, 2)
    st = await helper.get_membership_state(ctx.ls, ctx.sm)
    _eq(st.committed, stored(1, 3, [5, 6, 7]), "committed = second-last log membership")
    _eq(st.effective, stored(1, 4, [7, 8, 9]), "effective = last log membership")


@_case()
async def get_initial_state_without_init(ctx: _Ctx) -> None:
    st = await helper.get_initial_state(ctx.ls, ctx.sm, node_id=0)
    _eq(st.vote, Vote(0, 0), "default vote")
    _eq((st.last_log_id, st.last_purged_log_id, st.committed, st.last_applied), (None,) * 4, "log ids")
    _eq(st.membership.effective, StoredMembership(), "membership")
    _eq(st.key_log_ids, [], "key log ids")


@_case()
async def get_initial_state_membership_from_empty_log_and_sm(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(0, 0), mem_entry(1, 1, [3, 4, 5])])
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq(st.membership.effective, stored(1, 1, [3, 4, 5]), "effective from the state machine")


@_case()
async def get_initial_state_membership_from_sm_inlog_is_smaller(ctx: _Ctx) -> None:
    await _membership_fixture(ctx, 0)
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq(st.membership.effective, stored(1, 2, [3, 4, 5]), "effective from the state machine")


@_case()
async def get_initial_state_membership_from_log_insm_is_smaller(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(1, 1), mem_entry(1, 2, [3, 4, 5])])
    await ctx.append([blank(0, 0), blank(1, 1), mem_entry(1, 2, [3, 4, 5]), mem_entry(1, 3, [5, 6, 7])])
    await ctx.ls.purge(lid(1, 2))
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq(st.membership.effective, stored(1, 3, [5, 6, 7]), "effective from the log")
    _eq(st.membership.committed, stored(1, 2, [3, 4, 5]), "committed from the state machine")


@_case()
async def get_initial_state_with_state(ctx: _Ctx) -> None:
    await ctx.append([blank(0, 0), blank(1, 1), blank(3, 2)])
    await ctx.ls.save_vote(Vote(1, 0))
    await ctx.sm.apply([blank(3, 1)])
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq(st.last_log_id, lid(3, 2), "last log id")
    _eq(st.committed, lid(3, 1), "local committed = applied")
    _eq(st.vote, Vote(1, 0), "vote")


@_case()
async def get_initial_state_last_log_gt_sm(ctx: _Ctx) -> None:
    await ctx.append([blank(0, 0), blank(2, 1)])
    await ctx.sm.apply([blank(1, 2)])
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq(st.last_log_id, lid(2, 1), "last log id from the log")


@_case()
async def get_initial_state_last_log_lt_sm(ctx: _Ctx) -> None:
    await ctx.append([blank(0, 0), blank(1, 1), blank(1, 2)])
    await ctx.sm.apply([blank(3, 3)])
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq((st.last_log_id, st.last_purged_log_id), (lid(3, 3), lid(3, 3)), "log purged up to applied")
    _eq(await ctx.ls.get_log_state(), LogState(lid(3, 3), lid(3, 3)), "store's log state")


@_case()
async def get_initial_state_inverted_log_order(ctx: _Ctx) -> None:
    await ctx.append([blank(0, 0), blank(1, 1), blank(1, 2)])
    await ctx.sm.apply([blank(3, 1)])
    err = await _raises(StorageError, helper.get_initial_state(ctx.ls, ctx.sm), "inverted log order")
    _check("inverted log order" in str(err), f"error names the problem: {err}")


@_case()
async def get_initial_state_conflict_at_same_index(ctx: _Ctx) -> None:
    await ctx.append([blank(0, 0), blank(1, 1), blank(1, 2)])
    await ctx.sm.apply([blank(3, 2)])
    err = await _raises(StorageError, helper.get_initial_state(ctx.ls, ctx.sm), "conflict at the same index")
    _check("inverted log order" in str(err), f"error names the problem: {err}")


@_case()
async def get_initial_state_log_ids(ctx: _Ctx) -> None:
    async def key() -> list[LogId]:
        return (await helper.get_initial_state(ctx.ls, ctx.sm)).key_log_ids

    _eq(await key(), [], "pristine")
    await ctx.append([blank(0, 0)])
    _eq(await key(), [lid(0, 0)], "one entry")
    await ctx.append([blank(1, 1), blank(1, 2)])
    _eq(await key(), [lid(0, 0), lid(1, 1), lid(1, 2)], "two leaders")
    await ctx.append([blank(3, 3), blank(3, 4), blank(3, 5)])
    _eq(await key(), [lid(0, 0), lid(1, 1), lid(3, 3), lid(3, 5)], "three leaders")
    await ctx.ls.truncate(4)
    _eq(await key(), [lid(0, 0), lid(1, 1), lid(3, 3)], "after truncate(4)")
    await ctx.append([blank(4, 4), blank(4, 5), blank(5, 6)])
    _eq(await key(), [lid(0, 0), lid(1, 1), lid(3, 3), lid(4, 4), lid(5, 6)], "after re-append")
    await ctx.ls.purge(lid(1, 1))
    _eq(await key(), [lid(1, 1), lid(3, 3), lid(4, 4), lid(5, 6)], "purged (1,1)")
    await ctx.ls.purge(lid(3, 3))
    _eq(await key(), [lid(3, 3), lid(4, 4), lid(5, 6)], "purged (3,3)")
    await ctx.ls.purge(lid(4, 5))
    _eq(await key(), [lid(4, 5), lid(5, 6)], "purged (4,5)")
    await ctx.ls.purge(lid(5, 6))
    _eq(await key(), [lid(5, 6)], "all purged")
    await ctx.append([blank(5, 7), blank(5, 8)])
    _eq(await key(), [lid(5, 6), lid(5, 8)], "same leader after purge")
    await ctx.append([blank(7, 9)])
    _eq(await key(), [lid(5, 6), lid(7, 9)], "new leader after purge")
    # long runs: bisection must agree with a linear scan
    terms = [7] * 50 + [8] * 300 + [9] + [11] * 200 + [12] * 7
    await ctx.append([blank(t, 10 + i) for i, t in enumerate(terms)])
    want = [lid(5, 6), lid(7, 9)]
    prev = 7
    for i, t in enumerate(terms):
        if t != prev:
            want.append(lid(t, 10 + i))
            prev = t
    want.append(lid(terms[-1], 9 + len(terms)))
    _eq(await key(), want, "long runs")


@_case()
async def get_initial_state_re_apply_committed(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.save_committed(lid(1, 4))
    if await ctx.ls.read_committed() is None:
        raise unittest.SkipTest("store does not persist committed (read_committed returns None)")
    st = await helper.get_initial_state(ctx.ls, ctx.sm)
    _eq(st.last_applied, lid(1, 4), "re-applied up to committed")
    _eq((await ctx.sm.applied_state())[0], lid(1, 4), "state machine applied")


@_case()
async def save_vote(ctx: _Ctx) -> None:
    _eq(await ctx.ls.read_vote(), None, "vote of a fresh store")
    await ctx.ls.save_vote(Vote(100, 1))
    _eq(await ctx.ls.read_vote(), Vote(100, 1), "saved vote")
    await ctx.ls.save_vote(Vote(101, 2, True))
    _eq(await ctx.ls.read_vote(), Vote(101, 2, True), "overwritten vote")
    _eq(await (await ctx.ls.get_log_reader()).read_vote(), Vote(101, 2, True), "vote via a reader")


@_case()
async def get_log_entries(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    r = await ctx.ls.get_log_reader()
    _eq(await r.try_get_log_entries(3, 3), [], "empty range")
    _eq(ids(await r.try_get_log_entries(5, 7)), [lid(1, 5), lid(1, 6)], "5..7")
    _eq([e.payload for e in await r.try_get_log_entries(5, 7)], [b"data-5", b"data-6"], "payloads")


@_case()
async def limited_get_log_entries(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    r = await ctx.ls.get_log_reader()
    _eq(await r.limited_get_log_entries(3, 3), [], "empty range")
    got = await r.limited_get_log_entries(5, 7)
    _check(0 < len(got) <= 2, f"limited read returns 1..2 entries, got {len(got)}")
    _eq(got[0].log_id, lid(1, 5), "first entry")


@_case()
async def leader_bounded_stream(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.save_vote(Vote(1, 0, True))
    r = await ctx.ls.get_log_reader()
    got = [e async for e in r.leader_bounded_entries(Vote(1, 0, True), 2, 20)]
    _eq(ids(got), [lid(1, i) for i in range(2, 11)], "clamped to the stored entries")
    for other in (Vote(1, 1, True), Vote(2, 0, True)):
        errors, items = 0, 0
        try:
            async for _ in r.leader_bounded_entries(other, 2, 20):
                items += 1
        except LeaderChanged:
            errors += 1
        _eq((items, errors), (0, 1), f"stream for {other!r}: entries and errors")


@_case()
async def entries_stream(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    r = await ctx.ls.get_log_reader()
    for (a, b), want in {(1, 4): (1, 4), (0, 2): (0, 2), (8, 100): (8, 11), (5, 5): (5, 5), (0, 11): (0, 11)}.items():
        batch = await r.try_get_log_bytes(a, b)
        _eq(len(batch), want[1] - want[0], f"bytes {a}..{b}: count")
        _eq(ids(batch.entries()), ids(await r.try_get_log_entries(a, b)), f"bytes {a}..{b} decode to the entries")
        if batch:
            _eq(batch.first_index, want[0], f"bytes {a}..{b}: first index")


@_case()
async def try_get_log_entry(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.purge(lid(0, 0))
    r = await ctx.ls.get_log_reader()
    e = await helper.try_get_log_entry(r, 3)
    _eq(None if e is None else e.log_id, lid(1, 3), "entry 3")
    _eq(await helper.try_get_log_entry(r, 0), None, "purged entry 0")
    _eq(await helper.try_get_log_entry(r, 11), None, "entry beyond the end")


@_case()
async def log_reader_reads_new_entries(ctx: _Ctx) -> None:
    r = await ctx.ls.get_log_reader()
    _eq(await r.try_get_log_entries(0, 100), [], "empty before appends")
    await ctx.append([blank(0, 0), blank(1, 1)])
    _eq(ids(await r.try_get_log_entries(0, 100)), [lid(0, 0), lid(1, 1)], "reader sees later appends")
    await ctx.append([blank(1, 2)])
    _eq(ids(await r.try_get_log_entries(0, 100)), [lid(0, 0), lid(1, 1), lid(1, 2)], "and the next ones")


@_case()
async def initial_logs(ctx: _Ctx) -> None:
    _eq(await helper.try_get_log_entry(await ctx.ls.get_log_reader(), 0), None, "no entry at 0 in a fresh store")


@_case()
async def get_log_state(ctx: _Ctx) -> None:
    _eq(await ctx.ls.get_log_state(), LogState(None, None), "empty")
    await ctx.append([blank(0, 0), blank(1, 1), blank(1, 2)])
    _eq(await ctx.ls.get_log_state(), LogState(None, lid(1, 2)), "after appends")
    await ctx.ls.purge(lid(0, 0))
    _eq(await ctx.ls.get_log_state(), LogState(lid(0, 0), lid(1, 2)), "purged (0,0)")
    await ctx.ls.purge(lid(1, 2))
    _eq(await ctx.ls.get_log_state(), LogState(lid(1, 2), lid(1, 2)), "purged all")
    await ctx.ls.purge(lid(2, 3))
    _eq(await ctx.ls.get_log_state(), LogState(lid(2, 3), lid(2, 3)), "purged beyond the end")


@_case()
async def get_log_id(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.purge(lid(1, 3))
    for i in (0, 3, 11):
        await _raises(StorageError, helper.get_log_id(ctx.ls, i), f"log id at {i}")
    _eq(await helper.get_log_id(ctx.ls, 4), lid(1, 4), "log id at 4")
    _eq(await helper.get_log_id(ctx.ls, 10), lid(1, 10), "log id at 10")


@_case()
async def last_id_in_log(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(5, 20)])  # the state machine does not count
    _eq((await ctx.ls.get_log_state()).last_log_id, None, "empty log")
    await feed_10_logs_vote_self(ctx)
    _eq((await ctx.ls.get_log_state()).last_log_id, lid(1, 10), "last id")
    await ctx.ls.purge(lid(1, 10))
    _eq((await ctx.ls.get_log_state()).last_log_id, lid(1, 10), "after purging all: the purged id")


@_case()
async def last_applied_state(ctx: _Ctx) -> None:
    _eq(await ctx.sm.applied_state(), (None, StoredMembership()), "fresh state machine")
    await ctx.sm.apply([blank(1, 1), blank(1, 2), mem_entry(1, 3, [1, 2])])
    _eq(await ctx.sm.applied_state(), (lid(1, 3), stored(1, 3, [1, 2])), "after a membership")
    await ctx.sm.apply([blank(1, 5)])
    _eq(await ctx.sm.applied_state(), (lid(1, 5), stored(1, 3, [1, 2])), "membership kept after a blank")


async def _purge_case(ctx: _Ctx, upto: LogId, left: list[int], state: LogState) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.purge(upto)
    _eq([e.log_id.index for e in await ctx.entries()], left, f"entries left after purge {upto}")
    _eq(await ctx.ls.get_log_state(), state, "log state")


@_case()
async def purge_logs_upto_0(ctx: _Ctx) -> None:
    await _purge_case(ctx, lid(0, 0), list(range(1, 11)), LogState(lid(0, 0), lid(1, 10)))


@_case()
async def purge_logs_upto_5(ctx: _Ctx) -> None:
    await _purge_case(ctx, lid(1, 5), list(range(6, 11)), LogState(lid(1, 5), lid(1, 10)))


@_case()
async def purge_logs_upto_20(ctx: _Ctx) -> None:
    await _purge_case(ctx, lid(1, 20), [], LogState(lid(1, 20), lid(1, 20)))


async def _truncate_case(ctx: _Ctx, after: LogId | None, left: list[int], state: LogState) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.truncate_after(after)
    _eq([e.log_id.index for e in await ctx.entries()], left, f"entries left after truncate_after({after})")
    _eq(await ctx.ls.get_log_state(), state, "log state")


@_case()
async def delete_logs_after_11(ctx: _Ctx) -> None:
    await _truncate_case(ctx, lid(1, 11), list(range(11)), LogState(None, lid(1, 10)))


@_case()
async def delete_logs_after_5(ctx: _Ctx) -> None:
    await _truncate_case(ctx, lid(1, 5), list(range(6)), LogState(None, lid(1, 5)))


@_case()
async def delete_logs_after_0(ctx: _Ctx) -> None:
    await _truncate_case(ctx, lid(0, 0), [0], LogState(None, lid(0, 0)))


@_case()
async def delete_logs_after_none(ctx: _Ctx) -> None:
    await _truncate_case(ctx, None, [], LogState(None, None))


@_case()
async def append_to_log(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.purge(lid(0, 0))
    await ctx.append([blank(2, 11)])
    got = await ctx.entries()
    _eq(len(got), 11, "entries")
    _eq(got[-1].log_id, lid(2, 11), "last entry")
    _eq(await ctx.ls.get_log_state(), LogState(lid(0, 0), lid(2, 11)), "log state")


@_case()
async def snapshot_meta(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(0, 0), mem_entry(1, 1, [1, 2, 3]), blank(1, 2)])
    snap = await (await ctx.sm.get_snapshot_builder()).build_snapshot()
    _eq(snap.meta.last_log_id, lid(1, 2), "scenario 1: last log id")
    _eq(snap.meta.last_membership, stored(1, 1, [1, 2, 3]), "scenario 1: membership")
    await ctx.sm.apply([blank(1, 3), mem_entry(1, 4, [4, 5])])
    snap = await (await ctx.sm.get_snapshot_builder()).build_snapshot()
    _eq(snap.meta.last_log_id, lid(1, 4), "scenario 2: last log id")
    _eq(snap.meta.last_membership, stored(1, 4, [4, 5]), "scenario 2: membership")


@_case()
async def snapshot_meta_optional(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(0, 0), mem_entry(1, 1, [1])])
    builder = await ctx.sm.try_create_snapshot_builder(False)
    if builder is not None:
        snap = await builder.build_snapshot()
        _eq(snap.meta.last_log_id, lid(1, 1), "optional builder's snapshot")
    _check(await ctx.sm.try_create_snapshot_builder(True) is not None, "force=True must return a builder")


@_case()
async def apply_single(ctx: _Ctx) -> None:
    await ctx.sm.apply([blank(3, 1)])
    _eq(await ctx.sm.applied_state(), (lid(3, 1), StoredMembership()), "after a blank")
    await ctx.sm.apply([mem_entry(3, 2, [1, 2, 3])])
    _eq(await ctx.sm.applied_state(), (lid(3, 2), stored(3, 2, [1, 2, 3])), "after a membership")


@_case()
async def apply_multiple(ctx: _Ctx) -> None:
    responses = await ctx.sm.apply([blank(3, 1), mem_entry(3, 2, [1, 2, 3])])
    _eq(len(responses), 2, "one response per entry")
    _eq(await ctx.sm.applied_state(), (lid(3, 2), stored(3, 2, [1, 2, 3])), "applied state")


@_case()
async def transfer_snapshot(ctx: _Ctx) -> None:
    sm_a, sm_b = ctx.sm, ctx.extra_sm
    assert sm_b is not None
    _eq(await sm_a.get_current_snapshot(), None, "A starts without a snapshot")
    _eq(await sm_b.get_current_snapshot(), None, "B starts without a snapshot")
    await sm_a.apply([blank(0, 0), mem_entry(1, 1, [1, 2, 3]), normal(1, 2, b"hello"), normal(1, 3, b"x" * 3000)])
    built = await (await sm_a.get_snapshot_builder()).build_snapshot()
    built.snapshot.close()
    cur = await sm_a.get_current_snapshot()
    _check(cur is not None, "A has a current snapshot")
    assert cur is not None
    _eq(cur.meta, built.meta, "A's current snapshot")
    dst = await sm_b.begin_receiving_snapshot()
    while chunk := cur.snapshot.read(1000):
        dst.write(chunk)
    cur.snapshot.close()
    await sm_b.install_snapshot(cur.meta, dst)
    dst.close()
    got = await sm_b.get_current_snapshot()
    _check(got is not None, "B has a current snapshot")
    assert got is not None
    got.snapshot.close()
    _eq(got.meta, built.meta, "B's current snapshot")
    _eq(await sm_b.applied_state(), (built.meta.last_log_id, built.meta.last_membership), "B's applied state")


# == raftx extras: contract details ==========================================================


@_case()
async def append_refuses_hole(ctx: _Ctx) -> None:
    await ctx.append([blank(1, 1), blank(1, 2)])
    await _raises(StorageError, ctx.ls.append([blank(1, 4)]), "append leaving a hole")
    await _raises(StorageError, ctx.ls.append([blank(1, 2)]), "append overwriting without truncate")
    await _raises(StorageError, ctx.ls.append([blank(0, 3)]), "append with a lower term (§5.3)")
    _eq(await ctx.ls.get_log_state(), LogState(None, lid(1, 2)), "refused appends change nothing")
    await ctx.append([blank(2, 3)])
    _eq(await ctx.ls.get_log_state(), LogState(None, lid(2, 3)), "a correct append still works")


@_case()
async def append_encoded_batch(ctx: _Ctx) -> None:
    entries = [blank(1, 1), normal(1, 2, b"a"), mem_entry(2, 3, [1, 2]), normal(2, 4, b"")]
    batch = EncodedBatch.from_entries(entries)
    await ctx.append(batch)
    r = await ctx.ls.get_log_reader()
    _eq(await r.try_get_log_entries(0, 10), entries, "entries round-trip")
    _eq((await r.try_get_log_bytes(1, 5)).data, batch.data, "the stored bytes are the appended bytes")
    _eq((await r.try_get_log_bytes(2, 4)).data, batch.slice(2, 4).data, "a sub-range")


@_case()
async def truncate_then_append_new_term(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.truncate(6)
    _eq(await ctx.ls.get_log_state(), LogState(None, lid(1, 5)), "after truncate(6)")
    await ctx.append([normal(2, 6, b"new"), normal(2, 7)])
    got = await ctx.entries()
    _eq(ids(got), [lid(0, 0)] + [lid(1, i) for i in range(1, 6)] + [lid(2, 6), lid(2, 7)], "log after re-append")
    _eq(got[6].payload, b"new", "the new entry, not the old one")


# == crash, durability and fault cases ========================================================


async def _snapshot_state(ls: RaftLogStorage) -> tuple[Any, ...]:
    r = await ls.get_log_reader()
    return (await ls.get_log_state(), await ls.read_vote(), await ls.read_committed(), await r.try_get_log_entries(0, 1 << 62))


@_case("durable")
async def reopen_equals_state_before_close(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.save_committed(lid(1, 4))
    await ctx.ls.purge(lid(1, 2))
    await ctx.ls.truncate(9)
    await ctx.append([normal(2, 9, b"after truncate")])
    await ctx.ls.save_vote(Vote(2, 1, True))
    before = await _snapshot_state(ctx.ls)
    await ctx.reopen()
    _eq(await _snapshot_state(ctx.ls), before, "state after reopen")
    await ctx.append([blank(2, 10)])
    _eq((await ctx.ls.get_log_state()).last_log_id, lid(2, 10), "append after reopen")


@_case("faults")
async def acked_entries_survive_crash(ctx: _Ctx) -> None:
    await feed_10_logs_vote_self(ctx)
    await ctx.crash_and_reopen()
    _eq(ids(await ctx.entries()), [lid(0, 0)] + [lid(1, i) for i in range(1, 11)], "acknowledged entries")
    _eq(await ctx.ls.read_vote(), Vote(1, 0), "saved vote")


@_case("faults")
async def torn_tail_every_offset(ctx: _Ctx) -> None:
    """Tear the last append at every byte: reopen keeps the acknowledged log (R8)."""
    faults = ctx.caps.faults
    assert faults is not None
    last = normal(1, 11, b"the-last-record")
    await feed_10_logs_vote_self(ctx)
    start = faults.ops
    await ctx.append([last])
    writes = [t for t in faults.ops_since(start) if t[1] == "pwrite"]
    _check(len(writes) >= 1, "append performed a write through the injector")
    size = int(writes[-1][2].split("@")[0])
    await ctx.ls.close()
    acked = [lid(0, 0)] + [lid(1, i) for i in range(1, 11)]
    for k in range(size):
        ls, sm, caps = await _build_more(ctx)
        assert caps.faults is not None
        sub = _Ctx(ls, sm, caps)
        try:
            await feed_10_logs_vote_self(sub)
            caps.faults.tear_next_write(k)
            try:
                await sub.append([last])
                raise AssertionError(f"torn write at byte {k} did not crash")
            except SimulatedCrash:
                pass
            await sub.crash_and_reopen()
            _eq(ids(await sub.entries()), acked, f"log after a write torn at byte {k} of {size}")
            await sub.append([last])
            await sub.reopen()
            _eq(ids(await sub.entries()), acked + [lid(1, 11)], f"re-append after the torn tail (byte {k})")
        finally:
            await _dispose(sub)


@_case("corrupt")
async def flipped_bit_in_middle_record(ctx: _Ctx) -> None:
    """A flipped bit in an acknowledged record is corruption, never a torn tail (R9)."""
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.close()
    assert ctx.caps.corrupt_entry is not None and ctx.caps.reopen is not None
    await _maybe_await(ctx.caps.corrupt_entry(5))
    if ctx.caps.detects_corruption_on_open:
        await _raises(StorageError, ctx.caps.reopen(), "reopen over a corrupt middle record")
        return
    ctx.ls, ctx.sm = await ctx.caps.reopen()
    await _raises(StorageError, ctx.entries(), "reading a corrupt record")


async def _crash_sweep(
    ctx: _Ctx,
    setup: Callable[[_Ctx], Awaitable[Any]],
    action: Callable[[_Ctx], Awaitable[Any]],
    verify: Callable[[_Ctx, bool, int], Awaitable[None]],
    what: str,
) -> None:
    """Crash ``action`` before its 0th, 1st, 2nd, ... file operation, each time on
    fresh stores after ``setup``; reopen and ``verify(store, crashed, crash_at)``.
    Ends with the first run that completes without crashing."""
    for crash_at in range(100):
        ls, sm, caps = await _build_more(ctx)
        assert caps.faults is not None
        sub = _Ctx(ls, sm, caps)
        try:
            await setup(sub)
            caps.faults.crash_after(crash_at)
            crashed = False
            try:
                await action(sub)
            except SimulatedCrash:
                crashed = True
            caps.faults.disarm()
            await sub.crash_and_reopen()
            await verify(sub, crashed, crash_at)
            if not crashed:
                return
        finally:
            await _dispose(sub)
    raise AssertionError(f"{what} never completed in 100 attempts")


@_case("faults")
async def crash_between_truncate_and_append(ctx: _Ctx) -> None:
    """After truncate(6) + a crashed append of term 2, no term-1 entry >= 6 survives (R11)."""

    async def setup(sub: _Ctx) -> None:
        await feed_10_logs_vote_self(sub)
        await sub.ls.truncate(6)

    async def action(sub: _Ctx) -> None:
        await sub.append([normal(2, 6, b"new-6"), normal(2, 7, b"new-7")])

    async def verify(sub: _Ctx, crashed: bool, n: int) -> None:
        got = await sub.entries()
        _eq(ids(got[:6]), [lid(0, 0)] + [lid(1, i) for i in range(1, 6)], f"entries 0..5 (crash at op {n})")
        for e in got[6:]:
            _eq(e.log_id.leader_id, 2, f"entry {e.log_id.index} after truncate (crash at op {n})")
        if not crashed:
            _eq(len(got), 8, "complete append")

    await _crash_sweep(ctx, setup, action, verify, "append")


@_case("faults")
async def crash_during_truncate(ctx: _Ctx) -> None:
    """A crash mid-truncate leaves a prefix of the log that keeps entries 0..5 (R11)."""
    full = [lid(0, 0)] + [lid(1, i) for i in range(1, 40)]

    async def setup(sub: _Ctx) -> None:
        await feed_10_logs_vote_self(sub)
        await sub.append([normal(1, i) for i in range(11, 40)])

    async def verify(sub: _Ctx, crashed: bool, n: int) -> None:
        got = ids(await sub.entries())
        _check(len(got) >= 6 and got == full[: len(got)], f"a prefix holding 0..5 (crash at op {n}): {got}")
        if not crashed:
            _eq(len(got), 6, "complete truncate")

    await _crash_sweep(ctx, setup, lambda sub: sub.ls.truncate(6), verify, "truncate")


@_case("faults")
async def crash_during_purge(ctx: _Ctx) -> None:
    """A crash mid-purge leaves the old or the new purge point, never a hole (R12)."""

    async def setup(sub: _Ctx) -> None:
        await feed_10_logs_vote_self(sub)
        for i in range(11, 40, 5):
            await sub.append([normal(1, j) for j in range(i, i + 5)])

    async def verify(sub: _Ctx, crashed: bool, n: int) -> None:
        state = await sub.ls.get_log_state()
        got = [e.log_id.index for e in await sub.entries()]
        _eq(state.last_log_id, lid(1, 40), f"last log id (crash at op {n})")
        if state.last_purged_log_id is None:
            _eq(got, list(range(41)), f"nothing purged (crash at op {n})")
        else:
            _eq(state.last_purged_log_id, lid(1, 25), f"purge point (crash at op {n})")
            _eq(got, list(range(26, 41)), f"entries after the purge point (crash at op {n})")
        if not crashed:
            _check(state.last_purged_log_id is not None, "a complete purge is durable")

    await _crash_sweep(ctx, setup, lambda sub: sub.ls.purge(lid(1, 25)), verify, "purge")


@_case("faults")
async def crash_during_vote_save(ctx: _Ctx) -> None:
    """After a crash mid-save the vote is the old or the new one, never a mix (R5, R7)."""
    old, new = Vote(3, 1), Vote(4, 2, True)

    async def setup(sub: _Ctx) -> None:
        await sub.ls.save_vote(old)
        await sub.append([blank(1, 1)])

    async def verify(sub: _Ctx, crashed: bool, n: int) -> None:
        got = await sub.ls.read_vote()
        _check(got in (old, new), f"vote after a crash at op {n}: {got!r}")
        _eq(ids(await sub.entries()), [lid(1, 1)], "log untouched by a vote save")
        if not crashed:
            _eq(got, new, "a complete save is durable")

    await _crash_sweep(ctx, setup, lambda sub: sub.ls.save_vote(new), verify, "save_vote")


@_case("faults")
async def fsync_failure_is_storage_error(ctx: _Ctx) -> None:
    """A failed fsync surfaces as StorageError and the store stays failed (R10)."""
    faults = ctx.caps.faults
    assert faults is not None
    await feed_10_logs_vote_self(ctx)
    faults.fail_next("fdatasync")
    faults.fail_next("fsync")
    await _raises(StorageError, ctx.append([blank(1, 11)]), "append whose fsync fails")
    faults.disarm()
    await _raises(StorageError, ctx.ls.save_vote(Vote(5, 0)), "save_vote on a failed store")
    await _raises(StorageError, ctx.ls.append([blank(1, 12)]), "append on a failed store")
    await _raises(StorageError, ctx.ls.read_vote(), "read on a failed store")


@_case("faults")
async def vote_fsync_failure_is_storage_error(ctx: _Ctx) -> None:
    faults = ctx.caps.faults
    assert faults is not None
    await feed_10_logs_vote_self(ctx)
    faults.fail_next("fsync")
    faults.fail_next("fdatasync")
    await _raises(StorageError, ctx.ls.save_vote(Vote(2, 0)), "save_vote whose fsync fails")
    faults.disarm()
    await _raises(StorageError, ctx.append([blank(1, 11)]), "append on a failed store")


# == power loss and operator mistakes (issue 12) ===============================================


async def _fresh(ctx: _Ctx) -> _Ctx:
    ls, sm, caps = await _build_more(ctx)
    sub = _Ctx(ls, sm, caps)
    sub.builder = ctx.builder
    return sub


def _last_write(first: int) -> list[Entry]:
    """Eight records of ~230 bytes: one write spanning several 512-byte sectors."""
    return [normal(1, i, b"w%04d-" % i * 33) for i in range(first, first + 8)]


async def _torn_last_write(sub: _Ctx, torn: str) -> list[Entry]:
    """Acknowledged 0..10, then a write whose fdatasync never happens; cut the power
    and tear it (``torn``). Returns the lost write's entries."""
    fs = sub.caps.simfs
    assert fs is not None
    await feed_10_logs_vote_self(sub)
    last = _last_write(11)
    fs.crash_after(1)  # the pwrite reaches the page cache; the process dies before the fdatasync
    try:
        await sub.ls.append(last)
        await sub.ls.save_committed(lid(1, 10))  # waits for the doomed round (R14)
    except (SimulatedCrash, StorageError):
        pass
    fs.power_loss(kept=0, torn=torn)
    return last


@_case("simfs")
async def power_loss_tears_multi_record_write(ctx: _Ctx) -> None:
    """A power loss tears the last, never-acknowledged multi-record write: one sector,
    or the tail from a sector boundary, reads as zeros, the file size kept. Reopen cuts
    the records from the first damaged one on (R8) and keeps every acknowledged one."""
    acked = [lid(0, 0)] + [lid(1, i) for i in range(1, 11)]
    for trial in range(16):
        sub = await _fresh(ctx)
        try:
            last = await _torn_last_write(sub, ("sector", "tail")[trial % 2])
            if sub.caps.verify is not None:
                _eq(await _maybe_await(sub.caps.verify()), None, f"verify of a torn write (trial {trial})")
            assert sub.caps.reopen is not None
            sub.ls, sub.sm = await sub.caps.reopen()
            got = ids(await sub.entries())
            _eq(got[:11], acked, f"acknowledged entries after a torn write (trial {trial})")
            _eq(got[11:], ids(last)[: len(got) - 11], f"a valid prefix of the torn write (trial {trial})")
            _check(len(got) < len(acked) + len(last), f"the damaged record was cut (trial {trial})")
            await sub.append(last[len(got) - 11 :])
            await sub.reopen()
            _eq(ids(await sub.entries()), acked + ids(last), f"re-append after the cut (trial {trial})")
        finally:
            await _dispose(sub)


@_case("simfs", "corrupt")
async def power_loss_after_a_flipped_bit_is_refused(ctx: _Ctx) -> None:
    """A torn last write does not excuse earlier damage: a flipped bit in acknowledged
    entry 5 with valid records after it is corruption, tear or not (R9)."""
    sub = await _fresh(ctx)
    try:
        await _torn_last_write(sub, "tail")
        assert sub.caps.corrupt_entry is not None and sub.caps.reopen is not None
        await _maybe_await(sub.caps.corrupt_entry(5))
        if sub.caps.verify is not None:
            _check(await _maybe_await(sub.caps.verify()) is not None, "verify names the flipped bit")
        await _raises(StorageError, sub.caps.reopen(), "reopen over a flipped bit before a torn write")
    finally:
        await _dispose(sub)


@_case("simfs")
async def power_loss_at_every_operation(ctx: _Ctx) -> None:
    """Cut the power before the 0th, 1st, 2nd, ... file operation of a workload of
    appends (with rotation), a vote save, a truncate, a re-append and a purge; a
    random prefix of every file's unsynced operations survives, the next one torn.
    The log always opens, and keeps what was acknowledged (R4, R5, R7, R8, R11, R12)."""
    old_vote, new_vote = Vote(1, 0), Vote(2, 0)
    for crash_at in range(400):
        sub = await _fresh(ctx)
        fs = sub.caps.simfs
        assert fs is not None and sub.caps.reopen is not None
        acked: dict[int, LogId] = {}
        done: list[str] = []
        try:
            await feed_10_logs_vote_self(sub)
            acked.update({i: e for i, e in enumerate([lid(0, 0)] + [lid(1, i) for i in range(1, 11)])})
            fs.crash_after(crash_at)
            try:
                for i in range(11, 60, 7):
                    batch = [normal(1, j, b"e%03d" % j * 50) for j in range(i, min(i + 7, 60))]
                    await sub.append(batch)
                    acked.update({e.log_id.index: e.log_id for e in batch})
                await sub.ls.save_vote(new_vote)
                done.append("vote")
                for i in range(40, 60):  # an interrupted truncate may have removed any of them
                    acked.pop(i, None)
                await sub.ls.truncate(40)
                done.append("truncate")
                batch = [normal(2, j, b"t%03d" % j * 50) for j in range(40, 46)]
                await sub.append(batch)
                acked.update({e.log_id.index: e.log_id for e in batch})
                await sub.ls.purge(lid(1, 20))
                done.append("purge")
                crashed = False
            except (SimulatedCrash, StorageError):
                crashed = True
            fs.power_loss(kept=None, torn="random")
            try:
                sub.ls, sub.sm = await sub.caps.reopen()
            except StorageError as exc:
                raise AssertionError(f"power loss before op {crash_at} left a log that does not open: {exc}") from exc
            state = await sub.ls.get_log_state()
            first = 0 if state.last_purged_log_id is None else state.last_purged_log_id.index + 1
            got = {e.log_id.index: e.log_id for e in await sub.entries()}
            _eq(sorted(got), list(range(first, first + len(got))), f"indexes after a power loss before op {crash_at}")
            lost = [v for i, v in acked.items() if i >= first and got.get(i) != v]
            _check(not lost, f"power loss before op {crash_at}: acknowledged entries lost: {lost}")
            if "truncate" in done:
                stale = [v for i, v in got.items() if i >= 40 and v.leader_id == 1]
                _check(not stale, f"power loss before op {crash_at}: truncated entries came back: {stale}")
            vote = await sub.ls.read_vote()
            _check(vote == new_vote if "vote" in done else vote in (old_vote, new_vote),
                   f"power loss before op {crash_at}: vote {vote!r} (done: {done})")
            if "purge" in done:
                _eq(state.last_purged_log_id, lid(1, 20), f"purge point after a power loss before op {crash_at}")
        finally:
            await _dispose(sub)
        if not crashed:
            return
    raise AssertionError("the workload never completed in 400 attempts")


async def _long_log(ctx: _Ctx, n: int = 200) -> None:
    """Entries 0..n-1 in batches (several segments on a segmented store), vote saved."""
    await feed_10_logs_vote_self(ctx)
    for i in range(11, n, 9):
        await ctx.append([normal(1, j) for j in range(i, min(i + 9, n))])


@_case("lose_file")
async def lost_first_segment_is_refused(ctx: _Ctx) -> None:
    """The head of a never-purged log deleted: refuse to open (acknowledged entries are
    gone), with a StorageError saying what is missing."""
    await _long_log(ctx)
    await ctx.ls.close()
    assert ctx.caps.lose_file is not None and ctx.caps.reopen is not None
    await _maybe_await(ctx.caps.lose_file("first_segment"))
    err = await _raises(StorageError, ctx.caps.reopen(), "reopen without the first segment")
    _check("missing" in str(err), f"the error says what is missing: {err}")


@_case("lose_file")
async def lost_hard_state_is_refused(ctx: _Ctx) -> None:
    """The hard state deleted after a purge: refuse to open (the vote is gone: a second
    vote in the same term would break §5.2; purged entries would come back)."""
    await _long_log(ctx)
    await ctx.ls.purge(lid(1, 30))
    await ctx.ls.close()
    assert ctx.caps.lose_file is not None and ctx.caps.reopen is not None
    await _maybe_await(ctx.caps.lose_file("hard_state"))
    err = await _raises(StorageError, ctx.caps.reopen(), "reopen without the hard state")
    _check("hard state" in str(err) and "missing" in str(err), f"the error says what is missing: {err}")


@_case()
async def truncate_right_after_purge(ctx: _Ctx) -> None:
    """A follower installs a snapshot (purge up to 5), then meets a conflict at 6."""
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.purge(lid(1, 5))
    await ctx.ls.truncate(8)
    _eq(await ctx.ls.get_log_state(), LogState(lid(1, 5), lid(1, 7)), "truncate(8) after purge(5)")
    await ctx.ls.truncate(6)
    _eq(await ctx.ls.get_log_state(), LogState(lid(1, 5), lid(1, 5)), "truncate(6) after purge(5)")
    _eq(await ctx.entries(), [], "no entry left")
    await ctx.append([normal(2, 6, b"new-6"), normal(2, 7)])
    _eq(ids(await ctx.entries()), [lid(2, 6), lid(2, 7)], "append after the truncate")
    if ctx.caps.durable and ctx.caps.reopen is not None:
        before = await _snapshot_state(ctx.ls)
        await ctx.reopen()
        _eq(await _snapshot_state(ctx.ls), before, "state after reopen")


def _bad_calls() -> list[tuple[str, tuple[Any, ...]]]:
    """Wrong arguments for every public method of a log store and its reader."""
    e11 = normal(2, 11)
    return [
        ("append", ([1, 2],)), ("append", ("abc",)), ("append", (b"abc",)), ("append", (None,)),
        ("append", (123,)), ("append", ([Entry((2, 11), b"x")],)),  # type: ignore[arg-type]
        ("append", ([Entry(LogId(2, 11), 123)],)), ("append", ([Entry(LogId(2, 11), [1, 2, 3])],)),  # type: ignore[arg-type]
        ("append", ([Entry(LogId(2, 11), "text")],)), ("append", ([normal(2, 12), e11],)),  # type: ignore[arg-type]
        ("append", ([e11], "not callable")),
        ("save_vote", (None,)), ("save_vote", ("x",)), ("save_vote", (lid(1, 1),)),
        ("save_committed", (7,)), ("save_committed", ("x",)), ("save_committed", (Vote(1, 0),)),
        ("truncate", ("6",)), ("truncate", (-1,)), ("truncate", (None,)), ("truncate", (True,)), ("truncate", (6.0,)),
        ("purge", (5,)), ("purge", (None,)), ("purge", ("x",)), ("purge", (Vote(1, 0),)),
        ("try_get_log_entries", (-1, 3)), ("try_get_log_entries", ("0", 3)), ("try_get_log_entries", (0, None)),
        ("try_get_log_bytes", (0, -5)), ("try_get_log_bytes", (1.5, 3)),
        ("reader.try_get_log_entries", (None, 3)), ("reader.try_get_log_bytes", (0, "9")),
        ("reader.limited_get_log_entries", ("a", 3)),
    ]


@_case()
async def bad_arguments_are_refused_cleanly(ctx: _Ctx) -> None:
    """Every public method refuses wrong arguments with a typed error (TypeError /
    ValueError), changes nothing, stays usable, and an append's callback hears of it
    exactly once."""
    await feed_10_logs_vote_self(ctx)
    await ctx.ls.save_committed(lid(1, 4))
    before = await _snapshot_state(ctx.ls)
    reader = await ctx.ls.get_log_reader()
    for name, args in _bad_calls():
        target: Any = reader if name.startswith("reader.") else ctx.ls
        fn = getattr(target, name.split(".")[-1])
        calls: list[BaseException | None] = []
        if name == "append" and len(args) == 1:
            args = (*args, calls.append)
        try:
            await fn(*args)
        except (TypeError, ValueError) as exc:
            _check(not isinstance(exc, StorageError),
                   f"{name}{args!r}: a caller's mistake is not a StorageError (which is fatal): {exc!r}")
            if name == "append" and callable(args[-1]):
                _check(len(calls) == 1 and calls[0] is exc, f"{name}{args!r}: callback fired {calls!r}")
        except BaseException as exc:
            raise AssertionError(f"{name}{args!r} raised {exc!r}, not TypeError/ValueError") from exc
        else:
            raise AssertionError(f"{name}{args!r} was accepted")
        _check(not getattr(ctx.ls, "failed", False), f"{name}{args!r} left the store failed")
        _eq(await _snapshot_state(ctx.ls), before, f"state after {name}{args!r}")
    await ctx.append([normal(1, 11)])
    await ctx.ls.save_vote(Vote(2, 1))
    _eq((await ctx.ls.get_log_state()).last_log_id, lid(1, 11), "the store still works")
    if ctx.caps.durable and ctx.caps.reopen is not None:
        after = await _snapshot_state(ctx.ls)
        await ctx.reopen()
        _eq(await _snapshot_state(ctx.ls), after, "nothing bad was stored (reopen)")


@_case("other_owner")
async def second_owner_is_refused(ctx: _Ctx) -> None:
    """Two owners of one log corrupt it (two leaders append to one segment): a second
    open while the first is open fails with "data directory in use by pid N"."""
    await feed_10_logs_vote_self(ctx)
    assert ctx.caps.open_other_owner is not None
    err = await _raises(StorageError, ctx.caps.open_other_owner(), "a second owner")
    _check("in use by pid" in str(err), f"the error names the owner: {err}")
    await ctx.append([normal(1, 11)])
    _eq((await ctx.ls.get_log_state()).last_log_id, lid(1, 11), "the first owner is unaffected")
    await ctx.ls.close()
    ls, _sm = await ctx.caps.open_other_owner()  # once the first is closed, the next may own it
    try:
        _eq((await ls.get_log_state()).last_log_id, lid(1, 11), "the next owner sees the log")
    finally:
        await ls.close()


@_case("verify")
async def inspect_agrees_with_open(ctx: _Ctx) -> None:
    """The offline verifier (``raftx inspect --verify``) passes exactly the data that
    ``open`` accepts: a clean log, a flipped bit, a lost first or last segment (with
    the committed index beyond what is left), a lost hard state, a torn write --
    whichever the store can produce."""
    caps = ctx.caps

    async def clean(sub: _Ctx) -> None:
        await _long_log(sub)
        await sub.ls.close()

    async def flipped(sub: _Ctx) -> None:
        await clean(sub)
        assert sub.caps.corrupt_entry is not None
        await _maybe_await(sub.caps.corrupt_entry(5))

    def lost(what: str) -> Callable[[_Ctx], Awaitable[None]]:
        async def setup(sub: _Ctx) -> None:
            await _long_log(sub)
            await sub.ls.purge(lid(1, 3))
            await sub.ls.save_committed(lid(1, 199))  # losing the tail loses committed entries
            await sub.ls.close()
            assert sub.caps.lose_file is not None
            await _maybe_await(sub.caps.lose_file(what))
        return setup

    async def torn(sub: _Ctx) -> None:
        await _torn_last_write(sub, "sector")

    scenarios: list[tuple[str, Callable[[_Ctx], Awaitable[None]]]] = [("clean", clean)]
    if caps.corrupt_entry is not None:
        scenarios.append(("flipped bit", flipped))
    if caps.lose_file is not None:
        scenarios += [("lost first segment", lost("first_segment")), ("lost last segment", lost("last_segment")),
                      ("lost hard state", lost("hard_state"))]
    if caps.simfs is not None:
        scenarios.append(("torn write", torn))
    for what, setup in scenarios:
        sub = await _fresh(ctx)
        try:
            await setup(sub)
            assert sub.caps.verify is not None and sub.caps.reopen is not None
            problem = await _maybe_await(sub.caps.verify())
            try:
                sub.ls, sub.sm = await sub.caps.reopen()
                opened: BaseException | None = None
            except StorageError as exc:
                opened = exc
            _check((problem is None) == (opened is None),
                   f"{what}: verify says {problem!r} but open {'fails: %r' % opened if opened else 'succeeds'}")
        finally:
            await _dispose(sub)


# -- plumbing ---------------------------------------------------------------------------------

async def _call_builder(builder: Callable[[], Awaitable[Any]]) -> tuple[RaftLogStorage, RaftStateMachine, StoreCapabilities]:
    got = await builder()
    if not isinstance(got, tuple) or len(got) not in (2, 3):
        raise TypeError("builder must return (log_store, state_machine) or (log_store, state_machine, extra)")
    extra = got[2] if len(got) == 3 else None
    if isinstance(extra, StoreCapabilities):
        caps = extra
    else:
        caps = StoreCapabilities(cleanup=extra)
    return got[0], got[1], caps


async def _build_more(ctx: _Ctx) -> tuple[RaftLogStorage, RaftStateMachine, StoreCapabilities]:
    assert ctx.builder is not None
    return await _call_builder(ctx.builder)


async def _dispose(ctx: _Ctx) -> None:
    try:
        await ctx.ls.close()
    except (StorageError, SimulatedCrash):
        pass
    if ctx.caps.faults is not None:
        ctx.caps.faults.kill()
    if ctx.caps.cleanup is not None:
        await _maybe_await(ctx.caps.cleanup())


def log_store_suite_cases() -> list[str]:
    """The names of every case, in order (for ``pytest.mark.parametrize``)."""
    return list(_CASES)


async def run_log_store_case(builder: Callable[[], Awaitable[Any]], name: str, *, timeout: float = 120.0) -> None:
    """Run one case on fresh stores from ``builder``.

    Raises `AssertionError` if it fails and `unittest.SkipTest` (which pytest reports
    as a skip) if the store lacks a capability the case needs.
    """
    case = _CASES[name]
    ls, sm, caps = await _call_builder(builder)
    ctx = _Ctx(ls, sm, caps)
    ctx.builder = builder
    others: list[_Ctx] = []
    try:
        reason = _missing(caps, case.needs)
        if reason is not None:
            raise unittest.SkipTest(reason)
        if name == "transfer_snapshot":
            ls2, sm2, caps2 = await _call_builder(builder)
            others.append(_Ctx(ls2, sm2, caps2))
            ctx.extra_sm = sm2
        await asyncio.wait_for(case.fn(ctx), timeout)
    except TimeoutError as exc:
        raise AssertionError(f"case {name} did not finish within {timeout} s") from exc
    finally:
        for c in [ctx, *others]:
            await _dispose(c)


async def run_log_store_suite(
    builder: Callable[[], Awaitable[Any]],
    *,
    cases: Sequence[str] | None = None,
    raise_on_failure: bool = True,
    timeout: float = 120.0,
) -> SuiteReport:
    """Run every case (or ``cases``) and return a `SuiteReport`.

    With ``raise_on_failure`` (the default) an `AssertionError` listing every failed
    case and its reason is raised after all cases ran.
    """
    report = SuiteReport()
    for name in cases if cases is not None else log_store_suite_cases():
        t0 = time.perf_counter()
        try:
            await run_log_store_case(builder, name, timeout=timeout)
        except unittest.SkipTest as exc:
            report.skipped[name] = str(exc)
        except Exception as exc:
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            logger.debug("log store suite case %s failed", name, exc_info=True)
        else:
            report.passed.append(name)
        logger.debug("case %s took %.3f s", name, time.perf_counter() - t0)
    if raise_on_failure and report.failed:
        raise AssertionError("log store suite failed:\n" + report.summary())
    return report
