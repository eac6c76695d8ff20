"""`raftx.engine.peer_check`: who may send which Raft RPC (issue 11), at the engine.

Each refusal is a `PeerNotAuthorized` answer with no other command: nothing saved,
nothing appended, nothing sent.
"""

from __future__ import annotations

import random

import pytest

from raftx.engine import Engine, RestoredState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import PeerNotAuthorized, ProtocolError
from raftx.messages import AppendEntriesRequest, TransferLeaderRequest, VoteRequest
from raftx.types import BasicNode, Entry, LogId, Membership, StoredMembership, Vote
from tests.engine.harness import make_config, make_engine


def answer(cmds: list[cmd.Command]) -> object:
    """The one value the engine answered with (asserting nothing else was emitted
    when it is a refusal)."""
    responds = [c for c in cmds if isinstance(c, cmd.Respond)]
    assert len(responds) == 1
    value = responds[0].value
    if isinstance(value, ProtocolError):
        assert cmds == responds, cmds  # refused: no storage write, no message
    return value


def heartbeat(vote: Vote, sender: int | None) -> ev.AppendRequested:
    return ev.AppendRequested(AppendEntriesRequest(vote, None), "r", sender)


@pytest.mark.parametrize("sender", [4, 99])
def test_a_non_member_is_refused(sender: int) -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True), committed=0)
    assert isinstance(answer(eng.step(heartbeat(Vote(2, sender, True), sender))), PeerNotAuthorized)
    assert eng.refusals.unauthorized == 1 and eng.vote == Vote(1, 2, True)


def test_a_learner_and_both_halves_of_a_joint_config_are_members() -> None:
    joint = Membership((frozenset({1, 2, 3}), frozenset({1, 4})), {i: BasicNode() for i in (1, 2, 3, 4, 5)})
    restored = RestoredState(vote=Vote(1), log_runs=[(0, 1)], last_index=0,
                             memberships=[StoredMembership(LogId(1, 0), joint)])
    for sender in (2, 4, 5):  # old half, new half, learner
        eng = Engine(1, make_config(), random.Random(0), restored)
        eng.startup(0)
        resp = answer(eng.step(heartbeat(Vote(2, sender, True), sender)))
        assert not isinstance(resp, ProtocolError), (sender, resp)


def test_an_uninitialized_node_accepts_any_sender() -> None:
    """The bootstrapping rule: no membership yet, so the first leader is a stranger."""
    eng = Engine(1, make_config(), random.Random(0), RestoredState())
    eng.startup(0)
    m = Membership.new({1, 7})
    req = AppendEntriesRequest(Vote(1, 7, True), None, [Entry(LogId(1, 0), m)], None)
    resp = answer(eng.step(ev.AppendRequested(req, "r", 7)))
    assert not isinstance(resp, ProtocolError)
    assert eng.membership.effective.membership == m
    # from now on node 7's cluster is known: a stranger is refused
    assert isinstance(answer(eng.step(heartbeat(Vote(2, 99, True), 99))), PeerNotAuthorized)


def test_the_current_leader_is_served_after_removing_itself() -> None:
    eng = make_engine(voters=(1, 3), terms=[1], vote=Vote(1, 2, True), committed=0)  # 2 is no member
    assert not isinstance(answer(eng.step(heartbeat(Vote(1, 2, True), 2))), ProtocolError)


@pytest.mark.parametrize("event", [
    heartbeat(Vote(2, 3, True), 2),  # the leader vote names another member
    ev.VoteRequested(VoteRequest(Vote(2, 3), None), "r", 2),  # a vote for another candidate
    heartbeat(Vote(2, 1, True), 1),  # a connection claiming to be this node
    ev.TransferLeaderRequested(TransferLeaderRequest(Vote(1, 2, True), 1, None), "r", 3),  # not the leader
])
def test_a_request_must_name_its_sender(event: ev.Event) -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True), committed=0)
    assert isinstance(answer(eng.step(event)), PeerNotAuthorized)
    assert eng.vote == Vote(1, 2, True) and eng.candidate is None


def test_an_unchecked_caller_is_not_authorized_by_membership() -> None:
    """``sender=None``: the application's own transport, content checks only."""
    eng = make_engine(terms=[1], vote=Vote(1, 2, True), committed=0)
    assert not isinstance(answer(eng.step(heartbeat(Vote(2, 99, True), None))), ProtocolError)
    assert isinstance(answer(eng.step(heartbeat(Vote(2**62 + 1, 99, True), None))), ProtocolError)


def test_refusals_are_logged_at_most_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    eng = make_engine(terms=[1], vote=Vote(1, 2, True), committed=0)
    for _ in range(50):
        eng.step(heartbeat(Vote(2, 99, True), 99))
    eng.step(ev.Tick(1000))
    eng.step(heartbeat(Vote(2, 99, True), 99))
    lines = [r.getMessage() for r in caplog.records if r.name == "raftx.engine.peer_check"]
    assert eng.refusals.unauthorized == 51
    assert len(lines) == 2 and "and 49 more unauthorized" in lines[1]
