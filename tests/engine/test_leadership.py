"""Leadership transfer (thesis §3.10), pre-vote (thesis §9.6), the follower-side leader
lease, runtime toggles and triggers."""

from __future__ import annotations

from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.messages import VoteRequest
from raftx.types import ServerState, Vote

from tests.engine.harness import make_engine, of_type, running_cluster


def test_transfer_leader_to_an_up_to_date_voter() -> None:
    c = running_cluster(enable_leader_lease=True)
    c.write(1, b"a")
    c.stabilize()
    c[1].handle(ev.TriggerTransferLeader(3))
    [w] = c.write(1, b"refused while transferring")
    assert not w.ok
    c.stabilize()
    assert c.leader() == 3
    assert c[1].state is ServerState.FOLLOWER
    [w] = c.write(3, b"b")
    c.run_for(40)
    assert w.ok and c[1].payloads() == [b"a", b"b"]


def test_transfer_to_a_learner_or_self_is_ignored() -> None:
    c = running_cluster()
    assert c[1].handle(ev.TriggerTransferLeader(1)) == []
    assert c[1].handle(ev.TriggerTransferLeader(9)) == []
    assert c.leader() == 1


def test_pre_vote_keeps_a_partitioned_node_from_raising_terms() -> None:
    c = running_cluster(enable_pre_vote=True)
    term = c[1].engine.vote.term
    c.isolate(3)
    c.run_for(1000)
    assert c[3].engine.vote.term == term  # pre-vote rounds change nothing
    c.heal()
    c.run_for(200)
    assert c.leader() == 1 and c[1].engine.vote.term == term


def test_without_pre_vote_a_partitioned_node_raises_its_term() -> None:
    c = running_cluster(enable_pre_vote=False)
    term = c[1].engine.vote.term
    c.isolate(3)
    c.run_for(1000)
    assert c[3].engine.vote.term > term + 2


def test_pre_vote_round_writes_nothing_until_won() -> None:
    eng = make_engine(enable_pre_vote=True)
    cmds = eng.step(ev.Tick(eng.config.election_timeout_max))
    assert of_type(cmds, cmd.SaveVote) == []
    reqs = of_type(cmds, cmd.SendVote)
    assert reqs and all(r.req.pre_vote and r.when is None for r in reqs)
    assert eng.vote == Vote(0) and eng.server_state is ServerState.FOLLOWER


def test_follower_in_leader_lease_refuses_other_candidates() -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True), enable_leader_lease=True)
    from raftx.messages import AppendEntriesRequest
    from raftx.types import LogId

    eng.step(ev.AppendRequested(AppendEntriesRequest(Vote(1, 2, True), LogId(1, 0), (), None), "a"))
    [r] = eng.step(ev.VoteRequested(VoteRequest(Vote(2, 3), LogId(1, 0)), "r"))
    assert not r.value.vote_granted and eng.vote == Vote(1, 2, True)
    eng.step(ev.Tick(eng.config.election_timeout_max))  # the lease has run out
    cmds = eng.step(ev.VoteRequested(VoteRequest(Vote(3, 3), LogId(1, 0)), "r"))
    assert of_type(cmds, cmd.Respond)[0].value.vote_granted


def test_runtime_toggles_stop_elections_and_heartbeats() -> None:
    eng = make_engine()
    eng.step(ev.SetRuntimeConfig(elect=False))
    assert eng.step(ev.Tick(10_000)) == []
    eng.step(ev.SetRuntimeConfig(elect=True, tick=False))
    assert eng.step(ev.Tick(20_000)) == []
    eng.step(ev.SetRuntimeConfig(tick=True))
    assert of_type(eng.step(ev.Tick(30_000)), cmd.SendVote)


def test_trigger_elect_and_heartbeat() -> None:
    c = running_cluster(enable_leader_lease=False)  # with the lease, 1's followers would refuse 2
    c[1].handle(ev.SetRuntimeConfig(heartbeat=False))
    c.tick(c.config.heartbeat_interval * 3)
    assert not c.queue
    c[1].handle(ev.TriggerHeartbeat())
    assert {m.dst for m in c.queue} == {2, 3}
    c.stabilize()
    c[2].handle(ev.TriggerElect())
    c.stabilize()
    assert c.leader() == 2
