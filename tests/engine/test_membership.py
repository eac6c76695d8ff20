"""Membership changes through the engine: learners, joint consensus, step-down (thesis §4.3)."""

from __future__ import annotations

from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import ChangeMembershipError, EmptyMembership, ForwardToLeader, InProgress, LearnerNotFound
from raftx.types import BasicNode, ChangeMembers, Membership, ServerState

from tests.engine.harness import Cluster, make_config


def three_of_five() -> Cluster:
    c = Cluster(ids=(1, 2, 3, 4, 5))
    c.initialize(1, voters=[1, 2, 3])
    c.run_for(40)
    assert c.leader() == 1
    return c


def change(c: Cluster, node: int, changes: ChangeMembers, retain: bool = True):
    return c.call(node, lambda r: ev.ChangeMembership(changes, retain, r))


def test_add_learner_replicates_but_does_not_vote() -> None:
    c = three_of_five()
    r = c.call(1, lambda r: ev.AddLearner(4, BasicNode("n4"), r))
    c.run_for(60)
    assert r.ok and r.value.membership.learner_ids() == {4}
    assert c[4].state is ServerState.LEARNER
    c.write(1, b"x")
    c.run_for(40)
    assert c[4].payloads() == [b"x"]
    # the learner does not count toward commit: with 2 and 3 cut off nothing commits
    c.isolate(2)
    c.isolate(3)
    [w] = c.write(1, b"y")
    c.run_for(40)
    assert not w.done and c[4].log_ids()[-1] == c[1].log_ids()[-1]


def test_add_voter_goes_through_joint_then_uniform() -> None:
    c = three_of_five()
    c.call(1, lambda r: ev.AddLearner(4, BasicNode(), r))
    c.run_for(40)
    r = change(c, 1, ChangeMembers.AddVoterIds({4}))
    configs = [e.payload.configs for e in c[1].entries.values() if isinstance(e.payload, Membership)]
    assert configs[-1] == (frozenset({1, 2, 3}), frozenset({1, 2, 3, 4}))  # joint, effective at once
    c.run_for(60)
    assert r.ok
    final = c[1].engine.membership.effective.membership
    assert final.configs == (frozenset({1, 2, 3, 4}),)
    assert r.value.membership == final
    for i in (1, 2, 3, 4):
        assert c[i].engine.membership.effective.membership == final
    assert c[4].state is ServerState.FOLLOWER


def test_change_rejections() -> None:
    c = three_of_five()
    assert isinstance(change(c, 1, ChangeMembers.AddVoterIds({5})).value, LearnerNotFound)
    assert isinstance(change(c, 1, ChangeMembers.ReplaceAllVoters(set())).value, EmptyMembership)
    assert isinstance(change(c, 1, ChangeMembers.RemoveNodes({2})).value, ChangeMembershipError)
    fwd = change(c, 2, ChangeMembers.RemoveVoters({3})).value
    assert isinstance(fwd, ForwardToLeader) and fwd.leader_id == 1
    first = change(c, 1, ChangeMembers.RemoveVoters({3}))
    second = change(c, 1, ChangeMembers.RemoveVoters({2}))
    assert isinstance(second.value, InProgress)
    c.run_for(60)
    assert first.ok


def test_removed_voter_kept_as_learner_with_retain() -> None:
    c = three_of_five()
    r = change(c, 1, ChangeMembers.RemoveVoters({3}), retain=True)
    c.run_for(60)
    m = r.value.membership
    assert m.voter_ids() == {1, 2} and m.learner_ids() == {3}
    assert c[3].state is ServerState.LEARNER


def test_removed_voter_dropped_without_retain() -> None:
    c = three_of_five()
    r = change(c, 1, ChangeMembers.RemoveVoters({3}), retain=False)
    c.run_for(60)
    assert 3 not in r.value.membership.nodes
    assert 3 not in c[1].engine.leader.progress


def _removed_leader_cluster(**config: object) -> Cluster:
    """Voters 1, 2, 3 led by 1, with elections far slower than a handover (1-2 s)."""
    c = Cluster(ids=(1, 2, 3), config=make_config(election_timeout_min=1000, election_timeout_max=2000, **config))
    c.initialize(1)
    c.run_for(1500)
    assert c.leader() == 1
    return c


def test_removed_leader_hands_over_then_steps_down() -> None:
    """openraft ``removed_leader_step_down`` (After(150)): the removed leader keeps leading
    for 150 ms, then transfers leadership (thesis §3.10) to its most up-to-date voter, so
    a new leader is there well before any election timeout (1 s here) could elect one."""
    c = _removed_leader_cluster()
    r = change(c, 1, ChangeMembers.RemoveVoters({1}))
    c.run_for(40)
    assert r.ok
    assert c[1].engine.is_leader  # still leading during the delay
    c.run_for(150 + 100)
    assert any(isinstance(x, cmd.SendTransferLeader) for x in c[1].commands)
    assert not c[1].engine.is_leader and c[1].state is ServerState.LEARNER
    new = c.leader()
    assert new in (2, 3)
    [w] = c.write(new, b"after")
    c.run_for(60)
    assert w.ok


def test_removed_leader_step_down_never_keeps_leading() -> None:
    c = _removed_leader_cluster(removed_leader_step_down=None)
    r = change(c, 1, ChangeMembers.RemoveVoters({1}))
    c.run_for(2500)
    assert r.ok and c[1].engine.is_leader and c.leader() == 1
    [w] = c.write(1, b"still")
    c.run_for(60)
    assert w.ok  # a leader outside the voters still commits with a quorum of them


def test_removed_leader_steps_down_after_a_heartbeat_if_the_handover_fails() -> None:
    c = _removed_leader_cluster(removed_leader_step_down=0)
    r = change(c, 1, ChangeMembers.RemoveVoters({1}))
    for _ in range(30):  # 300 ms with every TransferLeader lost
        c.tick(10)
        for _ in range(50):
            c.drop(lambda m: m.kind == "transfer")
            if not c.deliver():
                break
    assert r.ok
    assert not c[1].engine.is_leader  # stepped down one heartbeat after the failed handover
    assert c.leader() is None  # no transfer arrived and elections are 1 s away
    c.check_log_matching()


def test_new_leader_finishes_a_joint_change_left_by_the_old_one() -> None:
    c = three_of_five()
    c.call(1, lambda r: ev.AddLearner(4, BasicNode(), r))
    c.run_for(40)
    change(c, 1, ChangeMembers.AddVoterIds({4}))
    joint_index = c[1].engine.membership.effective.log_id.index
    # deliver until the leader commits the joint entry, then cut it off before the
    # uniform entry it appends at that moment leaves
    for _ in range(20):
        if c[1].engine.committed.index >= joint_index:
            break
        c.deliver()
    assert c[1].engine.membership.effective.membership.configs == (frozenset({1, 2, 3, 4}),)
    c.isolate(1)
    c.drop()
    for i in (2, 3, 4):
        assert c[i].engine.membership.effective.membership.is_joint()
    c.run_for(800)
    new = c.leader()
    assert new is not None and new != 1
    assert c[new].engine.membership.effective.membership.configs == (frozenset({1, 2, 3, 4}),)
    assert c[new].engine.membership.is_effective_committed()
