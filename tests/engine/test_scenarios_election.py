"""Election scenarios (correctness-notes §1.7, S01-S07, S16-S24) against the engine, through the
deterministic multi-node harness (`tests.engine.harness.Cluster`).

Each test names its scenario id and the etcd-io/raft test it re-expresses. raftx
follows openraft: a log starts at index 0 with the membership entry, every new
leader appends a blank entry of its term, and a vote is openraft's ``Vote``
(``(term, node)``, committed once a quorum granted it). etcd's CheckQuorum maps to
``Config.enable_leader_lease`` (followers refuse votes while a leader is fresh, a
leader refuses writes once no quorum answered within ``election_timeout_max``);
tests that re-express a paper-only etcd test turn the lease off.
"""

from __future__ import annotations

from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import ForwardToLeader
from raftx.types import LogId, ServerState, Vote

from tests.engine.harness import Cluster, booted_cluster, campaign, restored_cluster


def terms_of(cluster: Cluster, node_id: int) -> list[int]:
    """The entry terms of a node's log, index 0 on."""
    return [log_id.term for log_id in cluster[node_id].log_ids()]


def elect_leader(cluster: Cluster, node_id: int, pre_vote: bool = False) -> None:
    """Campaign ``node_id`` and deliver everything; it must win."""
    campaign(cluster, node_id, pre_vote)
    cluster.stabilize()
    assert cluster[node_id].state is ServerState.LEADER, cluster[node_id].engine


# -- S16 ----------------------------------------------------------------------------------------


def test_s16_leader_election_overwrites_newer_uncommitted_logs() -> None:
    """S16 (TestLeaderElectionOverwriteNewerLogs).

    Nodes 1, 2 hold a term-1 entry, node 3 a term-2 entry, nodes 4, 5 voted for 3 in
    term 2 with empty logs. Node 1's first campaign (term 2) fails: 3's log is newer
    and 4, 5 already voted in term 2. Its second campaign wins term 3 and every log
    ends as [membership, t1, t3 blank]: 3's uncommitted term-2 entry is overwritten.
    Adapted: index 0 is the membership entry; the new leader's blank entry plays the
    role of etcd's empty entry.
    """
    cl = restored_cluster(
        {1: [0, 1], 2: [0, 1], 3: [0, 2], 4: [0], 5: [0]},
        votes={1: Vote(1, 1, True), 2: Vote(1, 1, True), 3: Vote(2, 3), 4: Vote(2, 3), 5: Vote(2, 3)},
        enable_leader_lease=False,
    )
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].state is ServerState.FOLLOWER
    assert cl[1].engine.vote.term == 2
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    assert cl[1].engine.vote.term == 3
    for i in range(1, 6):
        assert terms_of(cl, i) == [0, 1, 3], (i, cl[i].log_ids())
    assert cl[1].engine.committed == LogId(3, 2)
    cl[1].handle(ev.TriggerHeartbeat())  # followers learn the commit index (§5.3)
    cl.stabilize()
    assert cl[3].engine.committed == LogId(3, 2)
    cl.check_log_matching()


# -- S17 / S18 -----------------------------------------------------------------------------------


def test_s17_dueling_candidates() -> None:
    """S17 (TestDuelingCandidates), leader lease off (etcd runs it without CheckQuorum).

    C(3), cut(1,3): 1 wins term 1 with 2's vote; 3 campaigns and stays candidate (2
    already follows 1). After the heal 3 campaigns at term 2: everyone adopts term 2,
    so 1 is deposed, but 3 loses (its log lacks 1's blank entry). Expected: all
    followers at term 2, last log index 1, 1, 0.
    """
    cl = booted_cluster(3, enable_leader_lease=False)
    cl.cut(1, 3)
    elect_leader(cl, 1)
    assert cl[1].engine.vote.term == 1
    campaign(cl, 3)
    cl.stabilize()
    assert cl[3].state is ServerState.CANDIDATE
    assert cl[3].engine.vote == Vote(1, 3)
    cl.heal()
    campaign(cl, 3)
    cl.stabilize()
    assert [cl[i].state for i in (1, 2, 3)] == [ServerState.FOLLOWER] * 3
    assert [cl[i].engine.vote.term for i in (1, 2, 3)] == [2, 2, 2]
    assert [cl[i].last_index() for i in (1, 2, 3)] == [1, 1, 0]
    assert cl.leader() is None


def test_s18_dueling_pre_candidates() -> None:
    """S18 (TestDuelingPreCandidates): S17 with pre-vote (thesis §9.6).

    3's pre-vote fails while cut off (2 heard from leader 1) and, after the heal,
    again (1 leads, 2 still hears from it). 1 stays leader at term 1; 3 is a
    follower that learned term 1 from the rejections and never bumped its own term.
    """
    cl = booted_cluster(3, enable_leader_lease=False)
    cl.cut(1, 3)
    elect_leader(cl, 1, pre_vote=True)
    campaign(cl, 3, pre_vote=True)
    cl.stabilize()
    # a pre-candidate never votes for itself; it only learned term 1 from 2's refusal
    assert cl[3].engine.vote == Vote(1, None)
    assert cl[3].state is ServerState.FOLLOWER
    cl.heal()
    campaign(cl, 3, pre_vote=True)
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    assert cl[1].engine.vote == Vote(1, 1, True)
    assert cl[2].engine.vote == Vote(1, 1, True)
    assert cl[3].state is ServerState.FOLLOWER
    assert cl[3].engine.vote.term == 1
    assert cl[3].engine.candidate is None


# -- S19 -----------------------------------------------------------------------------------------


def _disruptive_follower(pre_vote: bool) -> Cluster:
    """C(3)+lease, leader 1; 3 times out while its inbound link is down, then a late
    heartbeat from 1 reaches it and 3's answer reaches 1."""
    cl = booted_cluster(3, enable_pre_vote=pre_vote)
    elect_leader(cl, 1)
    cl.cut(1, 3)
    cl.cut(2, 3)
    deadline = cl[3].engine.election_deadline
    cl.tick(deadline - cl.now, nodes=[3])  # only 3's timer fires
    cl.stabilize()  # its (pre-)vote requests are lost
    cl.heal()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    return cl


def test_s19_disruptive_follower_without_pre_vote_deposes_leader() -> None:
    """S19 (TestDisruptiveFollower): without pre-vote, 3 became a candidate of term 2
    while cut off; the late heartbeat's answer carries term 2 and leader 1 steps down
    to it (§5.1)."""
    cl = _disruptive_follower(pre_vote=False)
    assert cl[3].engine.vote.term == 2
    assert cl[1].state is ServerState.FOLLOWER
    assert cl[1].engine.vote.term == 2


def test_s19_disruptive_follower_with_pre_vote_keeps_leader() -> None:
    """S19 (TestDisruptiveFollowerPreVote): with pre-vote, 3 stayed a pre-candidate at
    term 1, accepted the late heartbeat, and 1 keeps leading term 1."""
    cl = _disruptive_follower(pre_vote=True)
    assert cl[1].state is ServerState.LEADER
    assert cl[1].engine.vote == Vote(1, 1, True)
    assert cl[3].engine.vote == Vote(1, 1, True)
    assert cl[3].engine.current_leader == 1


# -- S21 / S22 -----------------------------------------------------------------------------------


def test_s21_leader_lease_blocks_votes_until_it_lapses() -> None:
    """S21 (TestLeaderSupersedingWithCheckQuorum, checkquorum.txt), openraft lease.

    C(3)+lease, leader 1. 3 campaigns while 2 (and 1) recently heard from the
    leader: refused, no new leader. 2's timer is then ticked past the lease (its own
    elections disabled so only the lease lapses) and 3 campaigns again: 2 grants and
    3 wins. Adapted: a refused candidate falls back to follower instead of staying a
    candidate (openraft has no lingering candidate state).
    """
    cl = booted_cluster(3)
    elect_leader(cl, 1)
    cl[2].handle(ev.SetRuntimeConfig(elect=False))
    campaign(cl, 3)
    cl.stabilize()
    assert cl[3].state is not ServerState.LEADER
    assert cl[1].state is ServerState.LEADER
    assert cl[2].engine.vote == Vote(1, 1, True)
    cl.tick(cl.config.election_timeout_max + 1, nodes=[2])
    campaign(cl, 3)
    cl.stabilize()
    assert cl[3].state is ServerState.LEADER
    assert cl[3].engine.vote.term == 3
    assert cl.leader() == 3


def test_s22_free_stuck_candidate() -> None:
    """S22 (TestFreeStuckCandidateWithCheckQuorum), openraft lease.

    C(3)+lease, leader 1; 3 is cut off and campaigns twice (term 3), refused by 2's
    lease. After the heal a heartbeat from 1 reaches 3: 3 answers with term 3, so 1
    steps down to term 3 (it is not stuck below). 1 then follows no leader, so its
    lease no longer binds it, and 3's next campaign wins with 1's vote.
    """
    cl = booted_cluster(3)
    elect_leader(cl, 1)
    cl.isolate(3)
    campaign(cl, 3)
    cl.stabilize()
    campaign(cl, 3)
    cl.stabilize()
    assert cl[3].engine.vote.term == 3
    assert cl[1].state is ServerState.LEADER
    cl.heal()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    assert cl[1].state is ServerState.FOLLOWER
    assert cl[1].engine.vote.term == 3
    campaign(cl, 3)
    cl.stabilize()
    assert cl[3].state is ServerState.LEADER
    assert cl[3].engine.vote.term == 4


# -- S23 / S24 -----------------------------------------------------------------------------------


def test_s23_lagging_node_completes_election_after_leader_loss_under_pre_vote() -> None:
    """S23 (TestNodeWithSmallerTermCanCompleteElection), pre-vote on.

    C(3): 3 is partitioned while 2 becomes leader at term 3 (1 first leads term 1,
    then 2 campaigns twice). Then 3 rejoins exactly as 2 is cut from everyone. With
    time running, a leader must emerge among {1, 3}: a stalled cluster is the bug
    this guards against. Leader lease off, as in etcd's test (no CheckQuorum).
    """
    cl = booted_cluster(3, enable_pre_vote=True, enable_leader_lease=False)
    elect_leader(cl, 1)
    cl.isolate(3)
    cl[1].handle(ev.SetRuntimeConfig(elect=False))  # keep 2's campaigns deterministic
    cl.cut(1, 2)
    campaign(cl, 2)  # a real vote (no pre-vote): term 2, lost
    cl.stabilize()
    cl.heal()
    cl.isolate(3)
    campaign(cl, 2)
    cl.stabilize()
    assert cl.leader() == 2 and cl[2].engine.vote.term == 3
    assert cl[3].engine.vote.term == 1
    cl[1].handle(ev.SetRuntimeConfig(elect=True))
    cl.heal()
    cl.isolate(2)
    cl.run_for(3000)
    leaders = [i for i in (1, 3) if cl[i].state is ServerState.LEADER]
    assert len(leaders) == 1, [cl[i].engine for i in (1, 2, 3)]
    assert cl[leaders[0]].engine.vote.term > 3


def test_s24_pre_vote_split_vote_recovers() -> None:
    """S24 (TestPreVoteWithSplitVote), pre-vote on.

    C(3), leader 1 isolated; once the lease lapsed, 2 and 3 campaign at the same
    moment: both win the pre-vote, both start term 2 voting for themselves, and the
    vote splits (no leader of term 2). The next timeouts elect exactly one leader
    among {2, 3} at a higher term.
    """
    cl = booted_cluster(3, enable_pre_vote=True)
    elect_leader(cl, 1)
    cl.isolate(1)
    for i in (2, 3):
        cl[i].handle(ev.SetRuntimeConfig(elect=False))
    cl.tick(cl.config.election_timeout_max + 1, nodes=[2, 3])
    campaign(cl, 2, pre_vote=True)
    campaign(cl, 3, pre_vote=True)
    cl.stabilize()
    assert cl[2].engine.vote == Vote(2, 2) and cl[3].engine.vote == Vote(2, 3)
    assert cl[2].state is not ServerState.LEADER and cl[3].state is not ServerState.LEADER
    for i in (2, 3):
        cl[i].handle(ev.SetRuntimeConfig(elect=True))
    for _ in range(100):
        cl.tick(10, nodes=[2, 3])
        cl.stabilize()
        if any(cl[i].state is ServerState.LEADER for i in (2, 3)):
            break
    leaders = [i for i in (2, 3) if cl[i].state is ServerState.LEADER]
    assert len(leaders) == 1
    assert cl[leaders[0]].engine.vote.term >= 3


# -- S20 -----------------------------------------------------------------------------------------


def _quorum_check(acks: bool) -> tuple[Cluster, list[object]]:
    """C(3)+lease, leader 1; time runs for election_timeout_max + 20 ms, with the
    followers' answers delivered (``acks``) or all of 1's links down."""
    cl = booted_cluster(3)
    elect_leader(cl, 1)
    if not acks:
        cl.isolate(1)
    for i in (2, 3):
        cl[i].handle(ev.SetRuntimeConfig(elect=False))
    cl.run_for(cl.config.election_timeout_max + 20)
    replies = cl.write(1, b"x")
    cl.stabilize()
    return cl, replies


def test_s20_check_quorum_without_acks_refuses_writes() -> None:
    """S20 (TestLeaderStepdownWhenQuorumLost), openraft CheckQuorum: a leader that heard
    from no quorum for ``election_timeout_max`` refuses writes (`ForwardToLeader`
    naming no leader). Adapted: etcd's leader steps down; openraft's keeps its role
    but stops acting as leader for clients."""
    cl, [reply] = _quorum_check(acks=False)
    assert reply.done and isinstance(reply.value, ForwardToLeader)
    assert reply.value.leader_id is None
    assert cl[1].engine.log.last_index == 1  # nothing appended


def test_s20_check_quorum_with_acks_keeps_leading() -> None:
    """S20 (TestLeaderStepdownWhenQuorumActive): with heartbeat answers flowing the
    leader's lease keeps being renewed, so the same write is accepted and committed."""
    cl, [reply] = _quorum_check(acks=True)
    assert reply.ok
    assert cl[1].state is ServerState.LEADER and cl[1].engine.vote.term == 1


# -- S01-S07: the paper's election rules, through the network ---------------------------------------


def test_s01_higher_term_demotes_leader_candidate_and_follower() -> None:
    """S01 (paper §5.1; etcd raft_paper_test 1-3), lease off: leader 1 and follower 2
    at term 2, candidate 3 at term 2 (cut off). 3 campaigns again (term 3): its vote
    requests make 1 and 2 adopt term 3 as followers (§5.1: 1 steps down; both refuse,
    3's log being shorter), and the answers' term 3 ends 3's candidacy."""
    cl = restored_cluster({1: [0], 2: [0], 3: [0]}, votes={i: Vote(1) for i in (1, 2, 3)}, enable_leader_lease=False)
    cl.isolate(3)
    elect_leader(cl, 1)
    campaign(cl, 3)
    cl.stabilize()
    assert [cl[i].engine.vote.term for i in (1, 2, 3)] == [2, 2, 2]
    assert [cl[i].state for i in (1, 2, 3)] == [ServerState.LEADER, ServerState.FOLLOWER, ServerState.CANDIDATE]
    cl.heal()
    campaign(cl, 3)
    cl.stabilize()
    assert [cl[i].engine.vote.term for i in (1, 2, 3)] == [3, 3, 3]
    assert [cl[i].state for i in (1, 2, 3)] == [ServerState.FOLLOWER] * 3


def test_s02_stale_term_append_is_refused_and_changes_nothing() -> None:
    """S02 (paper §5.1): after 2 won term 2, the old leader 1's AppendEntries of term 1
    reach 3: refused with 3's term, 3's log, vote and leader untouched; 1 steps down
    on the answer and its write, never committed, fails."""
    cl = booted_cluster(3, enable_leader_lease=False)
    elect_leader(cl, 1)
    cl.isolate(1)
    elect_leader(cl, 2)
    [stale] = cl.write(1, b"stale")
    before = (cl[3].log_ids(), cl[3].engine.vote)
    cl.heal()
    cl.deliver(lambda m: m.src == 1 and m.dst == 3 and m.kind == "append_req")
    assert (cl[3].log_ids(), cl[3].engine.vote) == before
    [answer] = [m for m in cl.queue if m.src == 3 and m.dst == 1]
    assert not answer.body.success and answer.body.vote.term == 2
    cl.stabilize()
    assert cl[1].state is ServerState.FOLLOWER and cl[1].engine.vote.term == 2
    cl.run_for(40)  # leader 2's AppendEntries overwrite 1's uncommitted stale entry
    assert stale.done and not stale.ok
    assert b"stale" not in cl[1].payloads()


def test_s03_s04_election_start_and_one_round_outcome() -> None:
    """S03 (paper §5.2) and S04 (TestLeaderElectionInOneRoundRPC), C(5), lease off: a
    follower ticked past its timeout becomes candidate of term+1, persists its
    self-vote before asking the 4 others (with its last log id); with 2 of the 4
    reachable it wins, with 1 it stays candidate, with 0 reachable it stays too and
    times out again into the next term."""
    for reachable, won in ((2, True), (1, False)):
        cl = booted_cluster(5, enable_leader_lease=False)
        for other in range(2 + reachable, 6):
            cl.cut(1, other)
        out = cl[1].handle(ev.Tick(cl[1].engine.election_deadline))
        saves = [c for c in out if isinstance(c, cmd.SaveVote)]
        asks = [c for c in out if isinstance(c, cmd.SendVote)]
        assert [s.vote for s in saves] == [Vote(1, 1)]
        assert sorted(c.target for c in asks) == [2, 3, 4, 5]
        assert all(c.when is None or c.when.io_id >= saves[0].io_id for c in asks)
        assert all(c.req.last_log_id == LogId(0, 0) for c in asks)
        cl.stabilize()
        assert (cl[1].state is ServerState.LEADER) is won
        if not won:
            assert cl[1].state is ServerState.CANDIDATE
            cl[1].handle(ev.Tick(cl[1].engine.election_deadline))  # times out again
            assert cl[1].engine.vote == Vote(2, 1)


def test_s05_one_vote_per_term_survives_restart() -> None:
    """S05 (TestFollowerVote + restart): 3 grants its term-1 vote to 1 and crash-restarts
    from its durable vote; 2's request for term 1 is refused, while a retransmission of
    1's request is granted again (§5.2: one vote per term, persisted)."""
    cl = booted_cluster(3, enable_leader_lease=False)
    campaign(cl, 1)
    [ask_3] = [m for m in cl.queue if m.kind == "vote_req" and m.dst == 3]
    cl.queue.clear()
    cl[3].receive(ask_3)
    assert cl[3].vote == Vote(1, 1)  # durable before the answer left
    durable = cl[3].vote
    del cl.nodes[3]
    cl.add_node(3, terms=[0], vote=durable, voters=[1, 2, 3])  # crash-restart
    cl.queue.clear()
    cl.isolate(1)
    campaign(cl, 2)
    cl.stabilize()
    assert cl[2].state is not ServerState.LEADER
    assert cl[3].engine.vote == Vote(1, 1)
    cl.queue.clear()
    cl[3].receive(ask_3)  # 1's request, retransmitted
    [answer] = [m for m in cl.queue if m.kind == "vote_resp"]
    assert answer.body.vote_granted and answer.body.vote == Vote(1, 1)


def test_s06_candidate_yields_to_a_leader_of_its_term() -> None:
    """S06 (TestCandidateFallback), openraft votes: 3 is a candidate of term 1 when 1
    wins term 1; the first AppendEntries of 1 (a committed vote of term 1, which
    beats 3's uncommitted one) makes 3 a follower of 1 at term 1."""
    cl = booted_cluster(3, enable_leader_lease=False)
    cl.cut(1, 3)
    elect_leader(cl, 1)
    campaign(cl, 3)
    cl.stabilize()
    assert cl[3].state is ServerState.CANDIDATE and cl[3].engine.vote == Vote(1, 3)
    cl.heal()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    assert cl[3].state is ServerState.FOLLOWER
    assert cl[3].engine.vote == Vote(1, 1, True) and cl[3].engine.current_leader == 1


def test_s07_vote_restriction_through_elections() -> None:
    """S07 (TestVoter, §5.4.1), C(2): voter 2's log against candidate 1's, each row
    one election. Granted iff the candidate's (last term, last index) >= the voter's."""
    rows = [
        # candidate log, voter log, granted
        ([0, 1], [0, 1], True),
        ([0, 1, 1], [0, 1], True),
        ([0, 1], [0, 1, 1], False),
        ([0, 2], [0, 1], True),
        ([0, 2], [0, 1, 1], True),
        ([0, 2, 2], [0, 2], True),
        ([0, 1], [0, 2], False),
        ([0, 1, 1], [0, 2], False),
        ([0, 1, 1, 1], [0, 2, 2], False),
        ([0, 2], [0, 2, 2], False),
    ]
    for cand, voter, granted in rows:
        cl = restored_cluster({1: cand, 2: voter}, votes={1: Vote(2), 2: Vote(2)}, enable_leader_lease=False)
        campaign(cl, 1)
        cl.stabilize()
        assert (cl[1].state is ServerState.LEADER) is granted, (cand, voter)
