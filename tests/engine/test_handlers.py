"""Engine unit tests in openraft's style: a known state, one event, the exact commands."""

from __future__ import annotations

from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.engine.commands import Condition
from raftx.engine.progress import ProgressState
from raftx.errors import ClientWriteError, ForwardToLeader, NotAllowed, NotInMembers, ProtocolError
from raftx.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    EntryList,
    PayloadBatch,
    VoteRequest,
    VoteResponse,
)
from raftx.types import Entry, LogId, Membership, ServerState, Vote

from tests.engine.harness import elect, flush, make_engine, of_type


def ents(*ids: tuple[int, int]) -> EntryList:
    return EntryList([Entry(LogId(t, i), b"x") for t, i in ids])


def test_higher_vote_request_saves_vote_then_responds_after_flush() -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True))
    cmds = eng.step(ev.VoteRequested(VoteRequest(Vote(2, 3), LogId(1, 0)), "r"))
    assert cmds == [
        cmd.SaveVote(0, Vote(2, 3)),
        cmd.Respond("r", VoteResponse(Vote(2, 3), True, LogId(1, 0)), Condition.flushed(0)),
    ]
    assert eng.vote == Vote(2, 3)


def test_repeated_vote_request_needs_no_new_write() -> None:
    eng = make_engine(terms=[1], vote=Vote(2, 3))
    cmds = eng.step(ev.VoteRequested(VoteRequest(Vote(2, 3), LogId(1, 0)), "r"))
    assert cmds == [cmd.Respond("r", VoteResponse(Vote(2, 3), True, LogId(1, 0)), None)]


def test_vote_request_from_stale_log_adopts_term_but_refuses() -> None:
    eng = make_engine(terms=[1, 2], vote=Vote(2))
    cmds = eng.step(ev.VoteRequested(VoteRequest(Vote(3, 3), LogId(1, 5)), "r"))
    assert cmds == [
        cmd.SaveVote(0, Vote(3, None)),
        cmd.Respond("r", VoteResponse(Vote(3, None), False, LogId(2, 1)), Condition.flushed(0)),
    ]


def test_malformed_vote_request_is_answered_with_protocol_error() -> None:
    eng = make_engine(terms=[1], vote=Vote(1))
    [resp] = eng.step(ev.VoteRequested(VoteRequest(Vote(5, None), None), "r"))
    assert isinstance(resp.value, ProtocolError)
    assert eng.vote == Vote(1)


def test_conflicting_append_truncates_then_appends_then_responds_after_flush() -> None:
    eng = make_engine(terms=[1, 1, 1], vote=Vote(1), committed=0)
    req = AppendEntriesRequest(Vote(2, 2, True), LogId(1, 0), ents((2, 1), (2, 2), (2, 3)), LogId(2, 3))
    cmds = eng.step(ev.AppendRequested(req, "r"))
    assert cmds == [
        cmd.SaveVote(0, Vote(2, 2, True)),
        cmd.TruncateLog(1, LogId(1, 0)),
        cmd.AppendToLog(2, ents((2, 1), (2, 2), (2, 3))),
        cmd.SaveCommitted(LogId(2, 3)),
        cmd.Apply(1, LogId(2, 3), []),
        cmd.Respond("r", AppendEntriesResponse(Vote(2, 2, True), True, LogId(2, 3)), Condition.flushed(2)),
    ]
    assert eng.log.last_log_id == LogId(2, 3)


def test_append_of_entries_already_present_writes_nothing() -> None:
    eng = make_engine(terms=[1, 1, 1], vote=Vote(1, 2, True))
    req = AppendEntriesRequest(Vote(1, 2, True), LogId(1, 0), ents((1, 1)), None)
    cmds = eng.step(ev.AppendRequested(req, "r"))
    assert cmds == [cmd.Respond("r", AppendEntriesResponse(Vote(1, 2, True), True, LogId(1, 1)), None)]
    assert eng.log.last_index == 2  # a stale request never deletes later entries (§5.3)


def test_append_that_does_not_follow_prev_is_a_protocol_error() -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True))
    req = AppendEntriesRequest(Vote(1, 2, True), LogId(1, 0), ents((1, 5)), None)
    [resp] = eng.step(ev.AppendRequested(req, "r"))
    assert isinstance(resp.value, ProtocolError)
    assert eng.log.last_index == 0


def test_append_conflicting_with_committed_entry_is_a_protocol_error() -> None:
    eng = make_engine(terms=[1, 1], vote=Vote(1, 2, True), committed=1)
    req = AppendEntriesRequest(Vote(2, 3, True), LogId(1, 0), ents((2, 1)), None)
    cmds = eng.step(ev.AppendRequested(req, "r"))
    assert isinstance(cmds[-1].value, ProtocolError)
    assert of_type(cmds, cmd.TruncateLog) == [] and eng.log.last_log_id == LogId(1, 1)


def test_client_write_on_follower_forwards_to_leader() -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True))
    cmds = eng.step(ev.ClientWrite([b"a", b"b"], ["r1", "r2"]))
    assert [c.responder for c in cmds] == ["r1", "r2"]
    for c in cmds:
        assert isinstance(c, cmd.Respond) and isinstance(c.value, ForwardToLeader)
        assert c.value.leader_id == 2


def test_client_write_is_one_append_and_one_replicate_per_follower() -> None:
    eng = make_engine(terms=[], voters=[1, 2, 3])
    elect(eng)
    flush(eng)
    for t, p in eng.leader.progress.items():
        for s in list(p.sends):
            eng.step(ev.AppendResponded(t, s, AppendEntriesResponse(eng.vote, True)))
    cmds = eng.step(ev.ClientWrite([b"a", b"b", b"c"], ["r1", "r2", "r3"]))
    io = eng.io.submitted
    assert cmds == [
        cmd.AppendToLog(io, PayloadBatch(1, 1, (b"a", b"b", b"c"))),
        cmd.Replicate(2, 3, eng.vote, LogId(1, 0), 1, 3, LogId(1, 0)),
        cmd.Replicate(3, 4, eng.vote, LogId(1, 0), 1, 3, LogId(1, 0)),
    ]


def test_a_payload_no_frame_can_carry_is_refused_alone() -> None:
    eng = make_engine(terms=[], voters=[1, 2, 3], max_frame_bytes=8192)
    elect(eng)
    flush(eng)
    for t, p in eng.leader.progress.items():
        for s in list(p.sends):
            eng.step(ev.AppendResponded(t, s, AppendEntriesResponse(eng.vote, True)))
    limit = eng.config.max_payload_bytes
    cmds = eng.step(ev.ClientWrite([b"a", b"x" * (limit + 1), b"y" * limit], ["r1", "r2", "r3"]))
    refused = of_type(cmds, cmd.Respond)
    assert [c.responder for c in refused] == ["r2"] and isinstance(refused[0].value, ClientWriteError)
    assert of_type(cmds, cmd.AppendToLog)[0].entries == PayloadBatch(1, 1, (b"a", b"y" * limit))
    assert eng.responders.take_upto(2) == [(1, ["r1", "r3"])]


def test_leader_counts_own_entries_only_when_flushed() -> None:
    eng = make_engine(voters=[1])
    eng.step(ev.TriggerElect())  # single voter: leader at once
    assert eng.is_leader and eng.committed is None  # blank entry not durable yet
    assert flush(eng) == [cmd.SaveCommitted(LogId(1, 0)), cmd.Apply(0, LogId(1, 0), [])]
    eng.step(ev.ClientWrite([b"a"], ["r"]))
    assert eng.committed == LogId(1, 0)
    assert flush(eng) == [cmd.SaveCommitted(LogId(1, 1)), cmd.Apply(1, LogId(1, 1), [(1, ["r"])])]


def test_leader_ack_commits_only_current_term_entries() -> None:
    eng = make_engine(terms=[1, 1], vote=Vote(1))
    elect(eng, granters=[2])
    flush(eng)
    [send] = list(eng.leader.progress[2].sends.values())
    cmds = eng.step(ev.AppendResponded(2, send.send_id, AppendEntriesResponse(eng.vote, True, LogId(1, 1))))
    assert of_type(cmds, cmd.Apply) == [] and eng.committed is None
    p = eng.leader.progress[2]
    more = [s for s in p.sends.values() if not s.heartbeat]
    assert [(s.prev_log_id, s.last_index) for s in more] == [(LogId(1, 1), 2)]
    cmds = eng.step(ev.AppendResponded(2, more[0].send_id, AppendEntriesResponse(eng.vote, True)))
    assert cmds[:2] == [cmd.SaveCommitted(LogId(2, 2)), cmd.Apply(0, LogId(2, 2), [])]


def test_conflict_hint_backtracks_a_whole_term_per_round_trip() -> None:
    # leader log terms by index: 1 1 1 4 4 5 5 6 6 6 (+ blank 8 at 10)
    eng = make_engine(terms=[1, 1, 1, 4, 4, 5, 5, 6, 6, 6], vote=Vote(7))
    elect(eng, granters=[3])
    flush(eng)
    [send] = [s for s in eng.leader.progress[2].sends.values() if not s.heartbeat]
    assert send.prev_log_id == LogId(6, 8)
    # follower f of Figure 7: 1 1 1 2 2 2 3 3 3 3 3 -> hint: index 8, term 3
    cmds = eng.step(ev.AppendResponded(2, send.send_id, AppendEntriesResponse(Vote(8, 1, True), False, None, 8, 3)))
    [rep] = of_type(cmds, cmd.Replicate)
    assert rep.prev_log_id == LogId(1, 2)  # the last index whose term <= 3 in the leader's log
    assert eng.leader.progress[2].state is ProgressState.PROBE


def test_replication_window_bounds_requests_in_flight() -> None:
    eng = make_engine(voters=[1, 2], max_inflight_appends=2, max_payload_entries=1)
    elect(eng)
    flush(eng)
    [s] = list(eng.leader.progress[2].sends)
    eng.step(ev.AppendResponded(2, s, AppendEntriesResponse(eng.vote, True)))
    assert eng.leader.progress[2].state is ProgressState.REPLICATE
    cmds = eng.step(ev.ClientWrite([b"1", b"2", b"3", b"4", b"5"], [None] * 5))
    reps = of_type(cmds, cmd.Replicate)
    assert [(r.first_index, r.last_index) for r in reps] == [(1, 1), (2, 2)]
    cmds = eng.step(ev.AppendResponded(2, reps[0].send_id, AppendEntriesResponse(eng.vote, True)))
    assert [(r.first_index, r.last_index) for r in of_type(cmds, cmd.Replicate)] == [(3, 3)]


def test_replication_failure_probes_again_at_next_heartbeat() -> None:
    eng = make_engine(voters=[1, 2])
    elect(eng)
    flush(eng)
    [s] = list(eng.leader.progress[2].sends)
    assert eng.step(ev.ReplicationFailed(2, s)) == []
    p = eng.leader.progress[2]
    assert p.state is ProgressState.PROBE and not p.sends
    [rep] = of_type(eng.step(ev.Tick(eng.config.heartbeat_interval)), cmd.Replicate)
    assert (rep.prev_log_id, rep.first_index, rep.last_index) == (None, 0, 0)


def test_higher_vote_in_append_response_deposes_the_leader() -> None:
    eng = make_engine(voters=[1, 2, 3])
    elect(eng)
    [s] = list(eng.leader.progress[2].sends)
    cmds = eng.step(ev.AppendResponded(2, s, AppendEntriesResponse(Vote(5, 3, True), False)))
    assert cmds == [cmd.SaveVote(eng.io.submitted, Vote(5, None))]
    assert eng.server_state is ServerState.FOLLOWER and eng.leader is None


def test_stale_vote_response_is_ignored() -> None:
    eng = make_engine(voters=[1, 2, 3])
    eng.step(ev.TriggerElect())
    eng.step(ev.TriggerElect())  # a second election: term 2
    assert eng.step(ev.VoteResponded(2, Vote(1, 1), VoteResponse(Vote(1, 1), True))) == []
    assert eng.server_state is ServerState.CANDIDATE


def test_initialize_pristine_node() -> None:
    eng = make_engine(voters=[])  # pristine: no membership, no log, no vote
    m = Membership.new({1, 2})
    cmds = eng.step(ev.Initialize(m, "r"))
    assert cmds == [
        cmd.AppendToLog(0, PayloadBatch(0, 0, (m,))),
        cmd.Respond("r", None, Condition.flushed(0)),
        cmd.SaveVote(1, Vote(1, 1)),
        cmd.SendVote(2, VoteRequest(Vote(1, 1), LogId(0, 0)), Condition.flushed(1)),
    ]
    assert eng.server_state is ServerState.CANDIDATE


def test_initialize_refused_twice_and_when_not_a_member() -> None:
    eng = make_engine(voters=[])
    [r] = eng.step(ev.Initialize(Membership.new({2, 3}), "r"))
    assert isinstance(r.value, NotInMembers)
    eng.step(ev.Initialize(Membership.new({1}), "r"))
    [r] = eng.step(ev.Initialize(Membership.new({1}), "r2"))
    assert isinstance(r.value, NotAllowed)


def test_client_write_with_non_bytes_payload_is_refused_whole() -> None:
    from raftx.errors import ClientWriteError

    eng = make_engine(voters=[1])
    eng.step(ev.TriggerElect())
    last = eng.log.last_log_id
    cmds = eng.step(ev.ClientWrite([b"ok", "not bytes"], ["r1", "r2"]))  # type: ignore[list-item]
    assert [type(c.value) for c in cmds] == [ClientWriteError, ClientWriteError]
    assert eng.log.last_log_id == last
