"""Seeded random runs of small clusters with partitions and message loss; Raft's safety
properties are checked after every step (a small precursor of the simulation suite)."""

from __future__ import annotations

import random

import pytest

from raftx.config import SnapshotPolicy
from raftx.engine import events as ev
from raftx.types import BasicNode, ChangeMembers, LogId

from tests.engine.harness import Cluster, make_config


def check_safety(c: Cluster, leaders_by_term: dict[int, int], committed: dict[int, tuple[LogId, int]]) -> None:
    # Election Safety (§5.2): at most one leader per term
    for n in c.nodes.values():
        if n.engine.is_leader:
            term = n.engine.vote.term
            assert leaders_by_term.setdefault(term, n.id) == n.id, f"two leaders in term {term}"
    # Log Matching (§5.3) and State Machine Safety (§5.4.3)
    c.check_log_matching()
    # Leader Completeness (§5.4): an entry committed by term T is in the log of every
    # leader of a later term (T is bounded by the observer's term when first seen)
    for n in c.nodes.values():
        ci = n.engine.committed
        if ci is not None:
            for i in range(ci.index + 1):
                lid = n.engine.log.log_id_at(i)
                if lid is not None:
                    seen, _ = committed.setdefault(i, (lid, n.engine.vote.term))
                    assert seen == lid, f"committed entry {i} changed from {seen} to {lid}"
    for n in c.nodes.values():
        if n.engine.is_leader:
            for i, (lid, term) in committed.items():
                if n.engine.vote.term > term and i > n.engine.log.purged_index:
                    assert n.engine.log.log_id_at(i) == lid, f"leader {n.id} lacks committed {lid}"


@pytest.mark.parametrize("seed", range(int(__import__("os").environ.get("RAFTX_SAFETY_SEEDS", "12"))))
def test_random_partitions_keep_raft_safe(seed: int) -> None:
    rng = random.Random(seed)
    pre_vote = seed % 2 == 0
    five = seed % 3 == 0
    snapshots = SnapshotPolicy.LogsSinceLast(10) if seed % 5 in (1, 2) else SnapshotPolicy.Never()
    c = Cluster(ids=(1, 2, 3, 4, 5) if five else (1, 2, 3), seed=seed,
                config=make_config(enable_pre_vote=pre_vote, enable_leader_lease=seed % 4 < 2,
                                   snapshot_policy=snapshots, max_in_snapshot_log_to_keep=seed % 3))
    c.initialize(1, voters=[1, 2, 3])
    if five:  # 4 and 5 join as learners; voters change at random below
        c.call(1, lambda r: ev.ChangeMembership(ChangeMembers.AddNodes({4: BasicNode(), 5: BasicNode()}), True, r))
    leaders_by_term: dict[int, int] = {}
    committed: dict[int, tuple[LogId, int]] = {}
    acked: list[bytes] = []
    replies = []
    for step in range(400):
        r = rng.random()
        if r < 0.3:
            leader = c.leader()
            if leader is not None:
                payload = b"%d-%d" % (seed, step)
                replies.extend((payload, rep) for rep in c.write(leader, payload))
        elif r < 0.35:
            c.isolate(rng.choice(list(c.nodes)))
        elif r < 0.42:
            c.heal()
        elif r < 0.5:
            c.drop(lambda m: rng.random() < 0.5)
        elif r < 0.53 and five and c.leader() is not None:
            voters = set(rng.sample(range(1, 6), 3))
            c.call(c.leader(), lambda r: ev.ChangeMembership(ChangeMembers.ReplaceAllVoters(voters), True, r))
        c.tick(rng.choice((5, 10, 20)))
        c.deliver()
        check_safety(c, leaders_by_term, committed)
    c.heal()
    c.run_for(1500)
    check_safety(c, leaders_by_term, committed)
    leader = c.leader()
    assert leader is not None, "no leader after healing"
    c.run_for(200)  # let the last commit index reach everyone
    acked = [p for p, rep in replies if rep.ok]
    for n in c.nodes.values():
        applied = [e.payload for e in n.sm]
        assert set(acked) <= set(applied), f"node {n.id} lost acknowledged writes"
