"""Membership changes through the engine: learners, joint consensus, step-down (thesis §4.3)."""

from __future__ import annotations

from raftx.engine import events as ev
from raftx.errors import ChangeMembershipError, EmptyMembership, ForwardToLeader, InProgress, LearnerNotFound
from raftx.types import BasicNode, ChangeMembers, Membership, ServerState

from tests.engine.harness import Cluster


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


def test_removed_leader_steps_down_and_the_rest_elect() -> None:
    c = three_of_five()
    r = change(c, 1, ChangeMembers.RemoveVoters({1}))
    c.run_for(60)
    assert r.ok
    assert c[1].state is ServerState.LEARNER and not c[1].engine.is_leader
    c.run_for(600)
    assert c.leader() in (2, 3)
    new = c.leader()
    [w] = c.write(new, b"after")
    c.run_for(60)
    assert w.ok
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
