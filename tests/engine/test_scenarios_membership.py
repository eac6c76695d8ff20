"""Membership scenarios (correctness-notes §1.7: S40, S41, S42, and joint-consensus
safety) against the engine.

raftx follows openraft: changes are joint only (``C_old`` -> ``C_old,new`` -> ``C_new``,
thesis §4.3), a configuration is in force once appended, the uniform entry is appended
automatically when the joint one commits, a second change while one is in flight is
refused with `InProgress` (etcd turns it into a no-op entry), and learners are added
with ``add_learner`` (a membership entry).
"""

from __future__ import annotations

import random

from raftx.engine import Engine, RestoredState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import InProgress
from raftx.messages import EntryList, TransferLeaderRequest, VoteRequest, VoteResponse
from raftx.types import BasicNode, ChangeMembers, Entry, LogId, Membership, ServerState, StoredMembership, Vote

from tests.engine.harness import (
    Cluster,
    Reply,
    booted_cluster,
    campaign,
    flush,
    make_config,
    of_type,
    responses,
)


def _leader_of(n: int, **config: object) -> Cluster:
    """C(n), lease off, node 1 elected."""
    cl = booted_cluster(n, enable_leader_lease=False, **config)
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    return cl


# -- S40 -----------------------------------------------------------------------------------------


def test_s40_one_change_at_a_time_and_quorum_shrinks_after_removal() -> None:
    """S40 (TestStepIgnoreConfig, TestNewLeaderPendingConfig, TestCommitAfterRemoveNode).

    C(2), leader 1. It proposes removing 2 (joint {1,2},{1}) and then a normal write;
    a second change while the first is in flight is refused (`InProgress`; etcd
    appends a no-op instead). 2 acknowledges only the joint entry, then is cut off:
    the joint entry commits (both halves), the uniform {1} entry is appended, and the
    write — which 2 never stored — commits with the shrunk quorum {1}.
    """
    cl = _leader_of(2)
    change = Reply()
    cl[1].handle(ev.ChangeMembership(ChangeMembers.RemoveVoters({2}), False, change))
    [joint_send] = [m for m in cl.queue if m.kind == "append_req"]
    [write] = cl.write(1, b"x")
    second = Reply()
    cl[1].handle(ev.ChangeMembership(ChangeMembers.AddNodes({3: BasicNode()}), True, second))
    assert second.done and isinstance(second.value, InProgress)
    assert not write.done
    joint_index = joint_send.body.entries[0].log_id.index
    assert cl[1].engine.committed is not None and cl[1].engine.committed.index < joint_index
    cl.deliver(lambda m: m is joint_send)
    cl.deliver(lambda m: m.kind == "append_resp")
    cl.isolate(2)
    cl.stabilize()
    assert cl[1].engine.membership.effective.membership.voter_ids() == {1}
    assert write.ok and write.value.log_id.index == joint_index + 1
    assert change.ok
    assert cl[2].last_index() == joint_index  # 2 never stored the write
    assert cl[1].engine.committed.index == joint_index + 2  # the uniform entry


def test_s40_joint_entry_cannot_commit_without_the_removed_node_while_joint() -> None:
    """S40, the other side: in the joint config {1,2},{1} the old half needs 2, so
    with 2 cut off nothing commits — neither the joint entry nor a later write."""
    cl = _leader_of(2)
    cl.isolate(2)
    change = Reply()
    cl[1].handle(ev.ChangeMembership(ChangeMembers.RemoveVoters({2}), False, change))
    [write] = cl.write(1, b"x")
    cl.run_for(200)
    assert not change.done and not write.done
    assert cl[1].engine.membership.effective.membership.is_joint()


# -- S41 -----------------------------------------------------------------------------------------


def test_s41_removed_leader_does_not_count_itself_and_cannot_campaign() -> None:
    """S41 (confchange_v1_remove_leader.txt, confchange_v2_replace_leader.txt).

    C(3), leader 1 removes itself (kept as a learner, openraft ``retain``). The joint
    entry commits; once the uniform {2,3} entry is appended, 1 no longer counts
    toward commit: with 3 cut off, 1's and 2's copies do not commit it. After the
    heal it commits, 1 steps down (thesis §4.2.2) to learner once
    ``removed_leader_step_down`` (150 ms) and its handover passed, never campaigns, a
    leader is among 2 and 3, and 1 still receives the log.
    """
    cl = _leader_of(3)
    change = Reply()
    cl[1].handle(ev.ChangeMembership(ChangeMembers.RemoveVoters({1}), True, change))
    cl.deliver()  # the joint entry reaches 2 and 3
    cl.deliver(lambda m: m.kind == "append_resp")  # joint commits; uniform appended, sent
    eng = cl[1].engine
    uniform = eng.membership.effective
    assert uniform.membership.configs == (frozenset({2, 3}),)
    joint_id = eng.committed
    assert joint_id is not None and uniform.log_id == LogId(1, joint_id.index + 1)
    cl.cut(1, 3)
    cl.stabilize()
    assert cl[2].log_ids()[-1] == uniform.log_id  # on 1 and 2 ...
    assert eng.committed == joint_id  # ... yet not committed: 1 is no voter of {2,3}
    assert cl[1].state is ServerState.LEADER and not change.done
    cl.heal()
    cl.run_for(40)
    assert change.ok
    cl.run_for(200)
    assert cl[1].state is ServerState.LEARNER
    n_votes = len(of_type(cl[1].commands, cmd.SendVote))
    cl.run_for(1000)
    assert len(of_type(cl[1].commands, cmd.SendVote)) == n_votes  # 1 never campaigns
    leader = cl.leader()
    assert leader in (2, 3)
    [reply] = cl.write(leader, b"after")
    cl.run_for(100)
    assert reply.ok
    assert cl[1].payloads()[-1] == b"after"  # the learner still receives the log


# -- S42 -----------------------------------------------------------------------------------------


def test_s42_learner_never_campaigns_and_receives_the_log() -> None:
    """S42 (TestLearnerElectionTimeout, TestLearnerCampaign, TestLearnerLogReplication).

    C(3) + learner 4 (added with ``add_learner``): ticked far past its election
    timeout it never campaigns, a TransferLeader naming it makes it do nothing, and
    it receives and applies every committed entry.
    """
    cl = _leader_of(3)
    added = cl.call(1, lambda r: ev.AddLearner(4, BasicNode(), r))
    cl.add_node(4)
    cl.run_for(100)
    assert added.ok
    assert cl[4].state is ServerState.LEARNER
    [reply] = cl.write(1, b"x")
    cl.run_for(100)
    assert reply.ok and cl[4].payloads()[-1] == b"x"
    assert cl[4].log_ids() == cl[1].log_ids()
    cl.isolate(4)
    votes_before = cl[4].engine.vote
    cl.tick(10 * cl.config.election_timeout_max, nodes=[4])
    cl[4].handle(ev.TriggerElect())
    cl[4].handle(ev.TransferLeaderRequested(TransferLeaderRequest(cl[4].engine.vote, 4, cl[4].engine.last_log_id)))
    assert cl[4].engine.vote == votes_before
    assert cl[4].state is ServerState.LEARNER
    assert not [m for m in cl.queue if m.src == 4 and m.kind == "vote_req"]


def test_s42_learner_votes_for_a_candidate_whose_config_makes_it_a_voter() -> None:
    """S42 (campaign_learner_must_vote.txt): node 4 is still a learner locally, but the
    candidate's (newer) config has it as a voter; asked, it must grant the vote, or
    the group could become unavailable."""
    restored = RestoredState(
        vote=Vote(1, 1, True),
        log_runs=EntryList([Entry(LogId(0, 0)), Entry(LogId(1, 1))]).term_runs(),
        last_index=1,
        memberships=[StoredMembership(None, Membership.new({1, 2, 3}, learners={4}))],
    )
    learner = Engine(4, make_config(enable_leader_lease=False), random.Random(0), restored)
    learner.startup(0)
    assert learner.server_state is ServerState.LEARNER
    out = learner.step(ev.VoteRequested(VoteRequest(Vote(2, 2), LogId(1, 2)), "r"))
    out += flush(learner)
    [resp] = responses(out)
    assert isinstance(resp, VoteResponse) and resp.vote_granted
    assert learner.vote == Vote(2, 2)
    assert of_type(out, cmd.SaveVote)  # the grant is persisted before it is answered


# -- joint consensus: no decision by one half alone ----------------------------------------------


def _joint_engine() -> Engine:
    """Node 1 with an uncommitted joint config {1,2,3},{3,4,5} at index 1."""
    joint = Membership((frozenset({1, 2, 3}), frozenset({3, 4, 5})), {i: BasicNode() for i in range(1, 6)})
    restored = RestoredState(
        vote=Vote(1, 1, True),
        log_runs=[(0, 0), (1, 1)],
        last_index=1,
        committed=LogId(0, 0),
        applied=LogId(0, 0),
        memberships=[StoredMembership(None, Membership.new({1, 2, 3})), StoredMembership(LogId(1, 1), joint)],
    )
    eng = Engine(1, make_config(enable_leader_lease=False), random.Random(0), restored)
    eng.startup(0)
    return eng


def _grant(eng: Engine, voter: int) -> list[cmd.Command]:
    cand = eng.candidate
    assert cand is not None
    return eng.step(ev.VoteResponded(voter, cand.vote, VoteResponse(cand.vote, True, LogId(1, 1))))


def test_joint_election_needs_both_majorities() -> None:
    """Thesis §4.3: in C_old,new a candidate needs a majority of C_old and of C_new.
    Votes from the old majority alone (1, 2) or the new majority alone (4, 5, with
    1 outside it) do not elect; both together do."""
    eng = _joint_engine()
    eng.step(ev.TriggerElect())
    flush(eng)
    _grant(eng, 2)  # old {1,2,3}: 1, 2 = majority; new {3,4,5}: none
    assert not eng.is_leader
    _grant(eng, 4)  # new: 4 only
    assert not eng.is_leader
    _grant(eng, 5)  # new: 4, 5 = majority
    assert eng.is_leader


def test_joint_election_new_majority_alone_does_not_elect() -> None:
    """Thesis §4.3: the new half's majority (3, 4, 5) without the old one's does not elect."""
    eng = _joint_engine()
    eng.step(ev.TriggerElect())
    flush(eng)
    for voter in (4, 5):
        _grant(eng, voter)
    assert not eng.is_leader
    _grant(eng, 3)  # 3 is in both halves: old 1, 3 = majority
    assert eng.is_leader


def _ack(eng: Engine, target: int, out: list[cmd.Command], index: int) -> None:
    from raftx.messages import AppendEntriesResponse

    [send] = [c for c in of_type(out, cmd.Replicate) if c.target == target]
    eng.step(ev.AppendResponded(target, send.send_id, AppendEntriesResponse(eng.vote, True, eng.log.log_id_at(index))))


def test_joint_commit_needs_both_majorities() -> None:
    """Thesis §4.3: in C_old,new an entry commits only when a majority of C_old and a
    majority of C_new stored it. Leader 1 (old half only) with acks from 2 (old
    majority) and then 4: not committed; with 5 as well (new majority 4, 5): committed."""
    eng = _joint_engine()
    eng.step(ev.TriggerElect())
    flush(eng)
    probes: list[cmd.Command] = []
    for voter in (2, 3, 4):
        probes += _grant(eng, voter)  # the last grant elects: one probe per target
    assert eng.is_leader
    flush(eng)
    blank = eng.leader.noop_log_id  # type: ignore[union-attr]
    _ack(eng, 2, probes, blank.index)
    assert eng.committed == LogId(0, 0)
    _ack(eng, 4, probes, blank.index)
    assert eng.committed == LogId(0, 0)
    _ack(eng, 5, probes, blank.index)
    assert eng.committed is not None and eng.committed >= blank
