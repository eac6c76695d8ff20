"""`restore_state` keeps currentTerm >= the last log term (Figure 2) for data assembled
by hand: a state machine restored from a term-2 snapshot next to an empty log (README
"Backup by snapshot") starts the engine in term 2, not 0. Before the fix the vote
stayed at term 0, the restored cluster elected a leader of term 1, and its first
append after the term-2 snapshot failed ("terms never decrease"). The storage helper
`get_initial_state` keeps openraft's contract (the saved vote as is; log suite)."""

from __future__ import annotations

from raftx.runtime.core import restore_state
from raftx.storage import MemLogStore
from raftx.storage.state_machine import MemStateMachine
from raftx.types import Entry, LogId, Membership, Vote


async def _sm() -> MemStateMachine:
    sm = MemStateMachine()
    await sm.apply([Entry(LogId(1, 0), Membership.new({1, 2, 3})), Entry(LogId(2, 1), b"x")])
    return sm


async def test_a_snapshot_ahead_of_an_empty_log_raises_the_term_to_its_last_term() -> None:
    st = await restore_state(MemLogStore(), await _sm())
    assert st.vote == Vote(2)  # the term of the last entry, no vote cast in it


async def test_a_saved_vote_at_or_above_the_last_term_is_kept() -> None:
    store = MemLogStore()
    await store.save_vote(Vote(5, 3))
    st = await restore_state(store, await _sm())
    assert st.vote == Vote(5, 3)
