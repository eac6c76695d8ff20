"""`Invariants` rejects each kind of unsafe state (real engines put into bad states)."""

from __future__ import annotations

import random

import pytest

from raftx.config import Config
from raftx.engine import Engine, IOFlushed, RestoredState, TriggerElect, VoteResponded
from raftx.engine.progress import ProgressState, Send
from raftx.messages import EntryList, VoteResponse
from raftx.testing.simulation import InvariantViolation, Invariants
from raftx.types import Entry, LogId, Membership, StoredMembership, Vote


def engine(node_id: int, terms: list[int], vote: Vote | None = None, committed: int | None = None) -> Engine:
    """A 3-voter engine restored with a log of entry ``terms`` (index 0 on)."""
    cfg = Config(election_timeout_min=150, election_timeout_max=300, heartbeat_interval=50,
                 enable_leader_lease=False, max_inflight_appends=2)
    c = None if committed is None else LogId(terms[committed], committed)
    restored = RestoredState(
        vote=vote or Vote(max(terms, default=0)),
        log_runs=EntryList([Entry(LogId(t, i)) for i, t in enumerate(terms)]).term_runs(),
        last_index=len(terms) - 1, committed=c, applied=c,
        memberships=[StoredMembership(None, Membership.new({1, 2, 3}))],
    )
    e = Engine(node_id, cfg, random.Random(node_id), restored)
    e.startup(0)
    return e


def make_leader(e: Engine) -> Engine:
    """Campaign and win with one other grant (a majority of 3)."""
    e.step(TriggerElect())
    e.step(IOFlushed(e.io.submitted))
    cand = e.candidate
    assert cand is not None
    other = 2 if e.id != 2 else 3
    e.step(VoteResponded(other, cand.vote, VoteResponse(cand.vote, True, None)))
    assert e.is_leader
    return e


def test_a_healthy_leader_passes() -> None:
    inv = Invariants()
    a = make_leader(engine(1, [1, 1]))
    inv.after_step(1, a, [(1, a)])
    assert inv.leaders == {a.vote.term: 1}


def test_election_safety_two_leaders_in_one_term() -> None:
    inv = Invariants()
    a, b = make_leader(engine(1, [1])), make_leader(engine(2, [1]))
    assert a.vote.term == b.vote.term
    inv.after_step(1, a, [(1, a)])
    with pytest.raises(InvariantViolation, match="election safety"):
        inv.after_step(2, b, [(1, a), (2, b)])


def test_log_matching_same_log_id_different_payload_or_predecessor() -> None:
    inv = Invariants()
    inv.on_append(1, None, [Entry(LogId(1, 0), b"a"), Entry(LogId(1, 1), b"b")])
    inv.on_append(2, None, [Entry(LogId(1, 0), b"a")])
    with pytest.raises(InvariantViolation, match="log matching"):
        inv.on_append(2, LogId(1, 0), [Entry(LogId(1, 1), b"X")])
    with pytest.raises(InvariantViolation, match="log matching"):
        inv.on_append(3, LogId(0, 0), [Entry(LogId(1, 1), b"b")])


def test_state_machine_safety_and_apply_above_commit() -> None:
    inv = Invariants()
    e = engine(1, [1, 1, 1], committed=2)
    inv.on_apply(1, e, Entry(LogId(1, 2), b"x"))
    with pytest.raises(InvariantViolation, match="state machine safety"):
        inv.on_apply(2, e, Entry(LogId(1, 2), b"y"))
    low = engine(3, [1, 1, 1], committed=0)
    with pytest.raises(InvariantViolation, match="state machine safety"):
        inv.on_apply(3, low, Entry(LogId(1, 1), b"x"))


def test_an_acknowledged_write_must_be_applied_as_written() -> None:
    inv = Invariants()
    e = engine(1, [1, 1], committed=1)
    inv.on_apply(1, e, Entry(LogId(1, 1), b"w"))
    inv.on_ack(1, LogId(1, 1), b"w")
    with pytest.raises(InvariantViolation, match="acknowledged write"):
        inv.on_ack(1, LogId(1, 1), b"other")


def test_leader_completeness_new_leader_lacks_a_committed_entry() -> None:
    inv = Invariants()
    follower = engine(1, [1, 1, 1], committed=2)
    inv.after_step(1, engine(1, [1, 1, 1]), [])  # track before the commit...
    inv.after_step(1, follower, [])  # ...then it commits 0..2 in term 1
    short = make_leader(engine(2, [1]))
    with pytest.raises(InvariantViolation, match="leader completeness"):
        inv.after_step(2, short, [(2, short)])


def test_monotonic_vote_commit_and_restart() -> None:
    inv = Invariants()
    inv.after_step(1, engine(1, [1, 1], vote=Vote(5, 2)), [])
    with pytest.raises(InvariantViolation, match="monotonic vote"):
        inv.after_step(1, engine(1, [1, 1], vote=Vote(4, 2)), [])
    inv.forget(1)
    inv.after_step(1, engine(1, [1, 1, 1], committed=2), [])
    with pytest.raises(InvariantViolation, match="monotonic (commit|applied)"):
        inv.after_step(1, engine(1, [1, 1, 1], committed=1), [])
    inv.forget(1)
    inv.after_step(1, engine(1, [1, 1, 1], committed=2), [])
    back = engine(1, [1, 1, 1], committed=2)
    back.state.committed = LogId(1, 1)  # commit index moved back, applied did not
    with pytest.raises(InvariantViolation, match="monotonic commit"):
        inv.after_step(1, back, [])
    with pytest.raises(InvariantViolation, match="monotonic vote"):
        inv.on_start(1, engine(1, [1], vote=Vote(2, 1)), Vote(3, 1), -1)
    with pytest.raises(InvariantViolation, match="monotonic snapshot"):
        inv.on_start(1, engine(1, [1], vote=Vote(3, 1)), Vote(3, 1), 4)


def test_leader_append_only() -> None:
    inv = Invariants()
    a = make_leader(engine(1, [1, 1, 1]))
    inv.after_step(1, a, [(1, a)])
    a.log.truncate_after(1)  # a leader losing its own entries
    with pytest.raises(InvariantViolation, match="append-only"):
        inv.after_step(1, a, [(1, a)])


def test_bounded_in_flight_window() -> None:
    inv = Invariants()
    a = make_leader(engine(1, [1, 1, 1]))
    inv.after_step(1, a, [(1, a)])
    p = a.leader.progress[2]  # type: ignore[union-attr]
    p.state = ProgressState.REPLICATE
    for k in range(100, 100 + a.config.max_inflight_appends + 1):
        p.add(Send(k, 0, None, 0, 1))
    with pytest.raises(InvariantViolation, match="bounded in-flight"):
        inv.after_step(1, a, [(1, a)])


def test_check_final_finds_diverged_logs_and_lost_acks() -> None:
    inv = Invariants()
    logs = {1: [Entry(LogId(1, 0)), Entry(LogId(1, 1), b"a")], 2: [Entry(LogId(1, 0)), Entry(LogId(1, 1), b"b")]}
    with pytest.raises(InvariantViolation, match="log matching"):
        inv.check_final(logs, None, None)
    inv = Invariants()
    e = engine(1, [1, 1, 1], committed=2)
    inv.on_apply(1, e, Entry(LogId(1, 2), b"w"))
    inv.on_ack(2, LogId(1, 2), b"w")
    leader = make_leader(engine(2, [1, 1]))
    with pytest.raises(InvariantViolation, match="acknowledged write lost"):
        inv.check_final({}, 2, leader)
