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


def test_a_stale_leader_with_entries_conflicting_with_our_commit_is_told_our_term() -> None:
    """Sweep seed 6357 (liveness): leader 1 of term 1 was cut off holding uncommitted
    entries (1, 12..13); nodes 2 and 3 went on in term 3, committed up to (3, 14) and
    entered a joint configuration ({1, 2, 3}, {1, 3}) that needs node 1's vote. After
    healing, node 1's AppendEntries carried (1, 13), which conflicts with their commit;
    they refused the request as a protocol error (no answer with their term), so node 1
    stayed leader of term 1 for ever, refused every pre-vote, and nothing could be
    elected. §5.1: a request with a stale term is rejected with the current term; the
    Log Matching check against the commit is for a leader we would follow."""
    restored = RestoredState(
        vote=Vote(3, 2, committed=True),
        log_runs=EntryList([Entry(LogId(1, i)) for i in range(12)] + [Entry(LogId(3, i)) for i in range(12, 15)]
                           ).term_runs(),
        last_index=14,
        committed=LogId(3, 14),
        memberships=[StoredMembership(None, Membership.new({1, 2, 3}))],
    )
    eng = Engine(2, Config(enable_leader_lease=False).validate(), random.Random(0), restored)
    eng.startup(0)
    stale = AppendEntriesRequest(Vote(1, 1, committed=True), LogId(1, 11),
                                 EntryList([Entry(LogId(1, 12)), Entry(LogId(1, 13))]), LogId(1, 11))
    cmds = eng.step(AppendRequested(stale, "r", sender=1))
    cmds += eng.step(IOFlushed(eng.io.submitted))
    answers = [c.value for c in cmds if isinstance(c, Respond) and c.responder == "r"]
    assert len(answers) == 1 and isinstance(answers[0], AppendEntriesResponse), answers
    assert not answers[0].success and answers[0].vote == Vote(3, 2, committed=True)
    assert eng.vote == Vote(3, 2, committed=True) and eng.log.last_index == 14  # nothing changed
    # the same entries from a leader of term 3 or later are still a protocol violation
    bad = AppendEntriesRequest(Vote(3, 2, committed=True), LogId(1, 11),
                               EntryList([Entry(LogId(1, 12)), Entry(LogId(1, 13))]), LogId(1, 11))
    cmds = eng.step(AppendRequested(bad, "r2", sender=2))
    answers = [c.value for c in cmds if isinstance(c, Respond) and c.responder == "r2"]
    assert len(answers) == 1 and not isinstance(answers[0], AppendEntriesResponse), answers
