"""``Config.enable_leader_restore`` (openraft): a restarted leader leads its term again at once."""

from __future__ import annotations

import pytest

from raftx.types import ServerState

from tests.engine.harness import Cluster, make_config


def _restart_sole_leader(**config: object) -> tuple[Cluster, int]:
    c = Cluster(ids=(1,), config=make_config(**config))
    c.initialize(1)
    c.run_for(300)
    assert c.leader() == 1
    [w] = c.write(1, b"x")
    c.run_for(20)
    assert w.ok
    term = c[1].engine.vote.term
    durable = c[1].vote
    assert durable.committed and durable.node_id == 1
    terms = [e.log_id.term for _, e in sorted(c[1].entries.items())]
    c.add_node(1, terms=terms, vote=durable, voters=[1])  # crash-restart
    return c, term


def test_a_restarted_sole_leader_restores_its_leadership_at_once() -> None:
    c, term = _restart_sole_leader(enable_leader_restore=True)
    assert c[1].state is ServerState.LEADER  # no election timeout waited
    assert c[1].engine.vote.term == term  # the same term: no election
    [w] = c.write(1, b"after")
    c.stabilize()
    assert w.ok
    assert [e.payload for e in c[1].sm][-1:] == [b"after"]


def test_without_it_a_restarted_leader_campaigns_for_a_new_term() -> None:
    c, term = _restart_sole_leader()
    assert c[1].state is ServerState.FOLLOWER
    c.run_for(300)
    assert c.leader() == 1 and c[1].engine.vote.term == term + 1


@pytest.mark.parametrize("restore", [True, False])
def test_a_restarted_leader_of_three_rejoins_safely(restore: bool) -> None:
    c = Cluster(config=make_config(enable_leader_restore=restore))
    c.initialize(1)
    c.run_for(100)
    assert c.leader() == 1
    [w] = c.write(1, b"x")
    c.run_for(40)
    durable = c[1].vote
    terms = [e.log_id.term for _, e in sorted(c[1].entries.items())]
    c.add_node(1, terms=terms, vote=durable, voters=[1, 2, 3])
    assert (c[1].state is ServerState.LEADER) is restore
    c.run_for(600)
    leader = c.leader()
    assert leader is not None
    [w2] = c.write(leader, b"y")
    c.run_for(60)
    assert w.ok and w2.ok
    # (the harness restores a log with synthetic payloads: compare log ids, not entries)
    assert c[1].log_ids() == c[2].log_ids() == c[3].log_ids()
