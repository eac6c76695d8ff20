"""Start-up helpers over any store pair (openraft ``StorageHelper``).

`get_initial_state` rebuilds what a node knows at start-up from its log store and
state machine: vote, last log id, purge point, committed id, the key log ids and
the committed / effective membership (thesis §4.3: a membership takes effect when
it is appended, so the log may hold up to two not-yet-applied configurations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from raftx import _core
from raftx.errors import StorageError
from raftx.storage.protocols import RaftLogReader, RaftLogStorage, RaftStateMachine
from raftx.types import Entry, LogId, StoredMembership, Vote

__all__ = [
    "InitialState",
    "MembershipState",
    "get_initial_state",
    "get_key_log_ids",
    "get_log_id",
    "get_membership_state",
    "last_membership_in_log",
    "try_get_log_entry",
]

logger = logging.getLogger(__name__)

#: Entries read per step when scanning the log backwards for memberships.
_SCAN_CHUNK = 64


@dataclass(frozen=True, slots=True)
class MembershipState:
    """The last committed membership and the effective (last appended) one."""

    committed: StoredMembership = field(default_factory=StoredMembership)
    effective: StoredMembership = field(default_factory=StoredMembership)


@dataclass(frozen=True, slots=True)
class InitialState:
    """What a node restores at start-up (openraft ``RaftState``, storage part)."""

    vote: Vote
    last_log_id: LogId | None
    last_purged_log_id: LogId | None
    committed: LogId | None
    last_applied: LogId | None
    membership: MembershipState
    key_log_ids: list[LogId]


async def try_get_log_entry(reader: RaftLogReader, index: int) -> Entry | None:
    """The entry at ``index``, or None if it is not stored (purged or beyond the end)."""
    if index < 0:
        return None
    got = await reader.try_get_log_entries(index, index + 1)
    return got[0] if got else None


async def get_log_id(store: RaftLogStorage, index: int) -> LogId:
    """The id of the stored entry at ``index`` (openraft ``get_log_id``).

    Raises `raftx.errors.StorageError` if no entry is stored there (purged, including
    the purge point itself, or beyond the last entry).
    """
    entry = await try_get_log_entry(await store.get_log_reader(), index)
    if entry is None:
        state = await store.get_log_state()
        raise StorageError(
            f"no log entry at index {index} (purged {state.last_purged_log_id}, last {state.last_log_id})"
        )
    return entry.log_id


async def last_membership_in_log(store: RaftLogStorage, since_index: int) -> list[StoredMembership]:
    """Up to the last two membership entries with ``index >= since_index``, in log
    order, read backwards from the end of the log (the state machine is ignored)."""
    state = await store.get_log_state()
    if state.last_log_id is None:
        return []
    reader = await store.get_log_reader()
    first = max(since_index, 0 if state.last_purged_log_id is None else state.last_purged_log_id.index + 1)
    found: list[StoredMembership] = []
    hi = state.last_log_id.index + 1
    while hi > first and len(found) < 2:
        lo = max(first, hi - _SCAN_CHUNK)
        for entry in reversed(await reader.try_get_log_entries(lo, hi)):
            m = entry.get_membership()
            if m is not None:
                found.append(StoredMembership(entry.log_id, m))
                if len(found) == 2:
                    break
        hi = lo
    return list(reversed(found))


async def get_membership_state(store: RaftLogStorage, sm: RaftStateMachine) -> MembershipState:
    """Committed and effective membership from the state machine plus the log above it.

    Log memberships at or below the last applied index are already reflected by the
    state machine and ignored; one above it is effective (committed stays the state
    machine's); two above it: the older is committed, the newer effective (at most one
    uncommitted configuration at a time, thesis §4.3).
    """
    applied, sm_mem = await sm.applied_state()
    in_log = await last_membership_in_log(store, 0 if applied is None else applied.index + 1)
    if not in_log:
        return MembershipState(sm_mem, sm_mem)
    if len(in_log) == 1:
        return MembershipState(sm_mem, in_log[0])
    return MembershipState(in_log[0], in_log[1])


async def get_key_log_ids(store: RaftLogStorage) -> list[LogId]:
    """The purged id (if any), the first id of every term run after it, and the last id.

    Found by bisection on terms, so the cost is O(runs x log n) reads, not O(n).
    """
    state = await store.get_log_state()
    purged, last = state.last_purged_log_id, state.last_log_id
    out: list[LogId] = [] if purged is None else [purged]
    if last is None or last == purged:
        return out
    reader = await store.get_log_reader()
    first_index = 0 if purged is None else purged.index + 1
    head = await reader.limited_get_log_entries(first_index, last.index + 1)
    if not head or (purged is not None and head[0].log_id.index != first_index):
        raise StorageError(f"log has no entry at {first_index} although its last id is {last} (hole)")
    first = head[0].log_id

    async def at(i: int) -> LogId:
        e = await try_get_log_entry(reader, i)
        if e is None:
            raise StorageError(f"log has a hole at index {i}")
        return e.log_id

    async def runs(a: LogId, b: LogId) -> list[LogId]:
        # a, b: ids with a.index <= b.index; return run starts in (a.index, b.index]
        if a.term == b.term:
            return []
        if b.index == a.index + 1:
            return [b]
        mid = await at((a.index + b.index) // 2)
        return await runs(a, mid) + await runs(mid, b)

    if purged is not None and first.term == purged.term:
        pass  # continues the purged run; the purged id already marks it
    else:
        out.append(first)
    out.extend(await runs(first, last))
    if out[-1] != last:
        out.append(last)
    return out


async def get_initial_state(
    store: RaftLogStorage, sm: RaftStateMachine, node_id: int | None = None
) -> InitialState:
    """Rebuild a node's start-up state from its stores (openraft ``get_initial_state``).

    * A state machine ahead of the log (its last applied id above the last log id)
      means the log was purged into a snapshot: the log is purged up to it, so
      ``last_log_id = last_purged_log_id = last_applied``. If the log's last id is
      *below* the applied id yet at an index >= it, the stores disagree: raises
      `raftx.errors.StorageError` ("inverted log order").
    * Entries in ``(last_applied, committed]`` (the saved committed id, R6) are
      re-applied so the state machine is not behind what was reported committed.
    * The vote defaults to ``Vote(0, node_id)`` when none was saved.
    """
    vote = await store.read_vote()
    if vote is None:
        vote = Vote(0, node_id)
    committed = await store.read_committed()
    state = await store.get_log_state()
    applied, _ = await sm.applied_state()
    last = state.last_log_id
    if applied is not None and (last is None or last < applied):
        if last is not None and last.index >= applied.index:
            raise StorageError(
                f"inverted log order: last log id {last} is below the applied id {applied} at an index >= it"
            )
        logger.info("state machine applied %s beyond the log's last id %s: purging the log up to it", applied, last)
        await store.purge(applied)
        state = await store.get_log_state()

    if committed is not None and (applied is None or applied.index < committed.index):
        reader = await store.get_log_reader()
        start = 0 if applied is None else applied.index + 1
        entries = await reader.try_get_log_entries(start, committed.index + 1)
        if entries and entries[0].log_id.index != start:
            raise StorageError(f"cannot re-apply from {start}: the log starts at {entries[0].log_id.index}")
        if entries:
            logger.info("re-applying %d committed entries up to %s", len(entries), committed)
            await sm.apply(entries)
        applied, _ = await sm.applied_state()

    membership = await get_membership_state(store, sm)
    key_ids = await get_key_log_ids(store)
    return InitialState(
        vote=vote,
        last_log_id=state.last_log_id,
        last_purged_log_id=state.last_purged_log_id,
        committed=_core.vote.log_id_max(committed, applied),
        last_applied=applied,
        membership=membership,
        key_log_ids=key_ids,
    )
