"""Engine regressions found by the deterministic simulation (raftx.testing.simulation).

Each test is the minimal engine-level form of a failing seed; the docstring names
the seed and what the simulation saw.
"""

from __future__ import annotations

import random

from raftx.config import Config
from raftx.engine import AppendRequested, Engine, IOFlushed, Respond, RestoredState
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, EntryList
from raftx.types import Entry, LogId, Membership, StoredMembership, Vote


def _follower(vote: Vote) -> Engine:
    restored = RestoredState(
        vote=vote,
        log_runs=EntryList([Entry(LogId(1, i)) for i in range(3)]).term_runs(),
        last_index=2,
        memberships=[StoredMembership(None, Membership.new({1, 3, 4}))],
    )
    eng = Engine(1, Config(enable_leader_lease=False).validate(), random.Random(0), restored)
    eng.startup(0)
    return eng


def test_voter_of_a_losing_candidate_follows_the_elected_leader_of_that_term() -> None:
    """Sweep seed 33, run against the engine working tree while 9a0c45a was being made
    (not reproducible at any engine commit, so a guard against regressions): nodes 1 and 3
    had voted for candidate 3 in term 2 (``Vote(2, 3)``, uncommitted); node 4 won term 2
    (``Vote(2, 4, committed)``). The voters answered every AppendEntries of node 4 with
    ``success=False, vote=Vote(2, 3)`` and the leader ignored those answers (same term),
    so nothing committed after healing: a permanent livelock. A committed vote of the
    same term beats an uncommitted one (openraft vote order; §5.2: a candidate that
    sees a legitimate leader of its term becomes a follower)."""
    eng = _follower(Vote(2, 3))
    cmds = eng.step(AppendRequested(AppendEntriesRequest(Vote(2, 4, committed=True), LogId(1, 2), (), None), "r"))
    cmds += eng.step(IOFlushed(eng.io.submitted))
    answers = [c.value for c in cmds if isinstance(c, Respond) and c.responder == "r"]
    assert len(answers) == 1 and isinstance(answers[0], AppendEntriesResponse)
    assert answers[0].success, answers[0]
    assert eng.vote == Vote(2, 4, committed=True)
