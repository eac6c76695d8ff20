"""The engine's starting state, read from a node's stores (openraft ``get_initial_state``)."""

from __future__ import annotations

import logging

from raftx.engine import RestoredState
from raftx.runtime.tasks import close_quietly
from raftx.storage.helper import get_initial_state
from raftx.storage.protocols import RaftLogStorage, RaftStateMachine
from raftx.types import StoredMembership, Vote

__all__ = ["restore_state"]

logger = logging.getLogger(__name__)


async def restore_state(log_store: RaftLogStorage, sm: RaftStateMachine) -> RestoredState:
    """The engine's `RestoredState` from the stores (openraft ``get_initial_state``)."""
    init = await get_initial_state(log_store, sm)
    snap = await sm.get_current_snapshot()
    meta = None
    if snap is not None:
        # A snapshot of nothing (built before the first entry was applied) is no state:
        # adopting it would make a pristine node refuse `initialize` forever (as the
        # engine ignores such a snapshot when it is built).
        if snap.meta.last_log_id is not None:
            meta = snap.meta
        close_quietly(snap.snapshot)
    purged, last = init.last_purged_log_id, init.last_log_id
    runs: list[tuple[int, int]] = []
    if last is not None and last != purged:
        first_index = 0 if purged is None else purged.index + 1
        keys = [k for k in init.key_log_ids if purged is None or k.index > purged.index]
        if purged is not None and (not keys or keys[0].index != first_index):
            runs.append((first_index, purged.term))  # the first run continues the purged term
        for k in keys:
            if not runs or runs[-1][1] != k.term:
                runs.append((k.index, k.term))
    m = init.membership
    memberships: list[StoredMembership] = [m.committed]
    if m.effective != m.committed:
        memberships.append(m.effective)
    vote = init.vote
    if last is not None and vote.term < last.term:
        # currentTerm >= every term in the log (Figure 2: entries come from leaders of
        # the node's term, §5.3). Only data assembled by hand breaks it, e.g. a backup
        # snapshot restored into a fresh data directory (README "Backup by snapshot"):
        # without this the restored cluster elects a leader of a term below the
        # snapshot's, whose first append fails ("terms never decrease").
        logger.warning("saved vote %s is below the last log id %s (restored data?): starting in term %d",
                       vote, last, last.term)
        vote = Vote(last.term)
    return RestoredState(
        vote=vote,
        log_runs=runs,
        last_index=-1 if last is None else last.index,
        purged=purged,
        committed=init.committed,
        applied=init.last_applied,
        snapshot=meta,
        memberships=memberships,
    )

