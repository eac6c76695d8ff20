"""Log replication scenarios (correctness-notes §1.7: S09, S12, S37, S38) against the
engine: the multi-node harness for convergence, two bare engines wired by hand where
the scenario needs one exact message.

raftx/openraft semantics: index 0 holds the membership entry (term 0), a new leader
appends a blank entry of its term, and a new leader probes each follower from its
own last entry; a failed consistency check answers a hint ``(conflict_index,
conflict_term)`` = the follower's largest index <= prev whose term is <= prev's term.
"""

from __future__ import annotations

import random

import pytest

from raftx.engine import Engine, ProgressState, RestoredState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, EntryList
from raftx.types import Entry, LogId, Membership, ServerState, SnapshotMeta, StoredMembership, Vote

from tests.engine.harness import (
    append_request,
    booted_cluster,
    campaign,
    elect,
    flush,
    make_config,
    make_engine,
    of_type,
    responses,
    restored_cluster,
)

# -- S09 -----------------------------------------------------------------------------------------


def test_s09_commit_index_reaches_followers_and_they_apply_in_order() -> None:
    """S09 (TestLeaderCommitEntry / TestFollowerCommitEntry), C(3).

    Three writes commit on the leader once a majority stored them; the followers
    learn the commit index from the leader's next AppendEntries (here: the heartbeat
    it sends) and apply the entries in log order (§5.3).
    """
    cl = booted_cluster(3, enable_leader_lease=False)
    campaign(cl, 1)
    cl.stabilize()
    replies = cl.write(1, b"a") + cl.write(1, b"b") + cl.write(1, b"c")
    cl.stabilize()
    assert all(r.ok for r in replies)
    leader_commit = cl[1].engine.committed
    assert leader_commit == LogId(1, 4)
    assert all(cl[i].engine.committed is not None and cl[i].engine.committed < leader_commit for i in (2, 3))
    out = cl[1].handle(ev.TriggerHeartbeat())
    beats = of_type(out, cmd.Replicate)
    assert {c.target for c in beats} == {2, 3}
    assert all(c.leader_commit == leader_commit for c in beats)
    cl.stabilize()
    for i in (2, 3):
        assert cl[i].engine.committed == leader_commit
        assert cl[i].payloads()[1:] == [b"a", b"b", b"c"]  # after the restored entry 0
        applied = [c for c in cl[i].commands if isinstance(c, cmd.Apply)]
        assert [a.first_index for a in applied] == sorted(a.first_index for a in applied)


# -- S12 -----------------------------------------------------------------------------------------

#: Figure 7 of the paper, with raftx's index 0 (membership, term 0) in front.
FIG7_LEADER = [0, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = {
    2: [0, 1, 1, 1, 4, 4, 5, 5, 6, 6],  # (a) missing one entry
    3: [0, 1, 1, 1, 4],  # (b) missing many
    4: [0, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  # (c) one extra uncommitted entry
    5: [0, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  # (d) extra entries of term 7
    6: [0, 1, 1, 1, 4, 4, 4, 4],  # (e) missing and extra entries
    7: [0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  # (f) entries of terms 2 and 3 only it has
}


def test_s12_figure7_all_six_followers_converge_to_the_leaders_log() -> None:
    """S12 (TestLeaderSyncFollowerLog, probe_and_replicate.txt): the leader of term 8
    with Figure 7's log and the six followers (a)-(f) in one 7-node cluster.

    It is elected by (a), (b), (e), (f) — (c) and (d) hold longer/newer logs and
    refuse (§5.4.1) — probes every follower (backtracking by term, §5.3), replicates
    its blank entry and one write, and every follower log ends identical to the
    leader's, conflicting suffixes of (c), (d), (e), (f) deleted.
    """
    logs = {1: FIG7_LEADER, **FIG7_FOLLOWERS}
    cl = restored_cluster(logs, votes={i: Vote(7) for i in logs}, enable_leader_lease=False)
    campaign(cl, 1)
    cl.stabilize()
    assert cl.leader() == 1 and cl[1].engine.vote.term == 8
    [reply] = cl.write(1, b"x")
    cl.stabilize()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    assert reply.ok
    want = cl[1].log_ids()
    assert want[-2:] == [LogId(8, 11), LogId(8, 12)]
    for i in FIG7_FOLLOWERS:
        assert cl[i].log_ids() == want, i
        assert cl[i].entries == cl[1].entries, i
        assert cl[i].engine.committed == LogId(8, 12), i
    leader = cl[1].engine.leader
    assert leader is not None
    assert all(p.state is ProgressState.REPLICATE and p.matching == LogId(8, 12) for p in leader.progress.values())
    cl.check_log_matching()


# -- S37 -----------------------------------------------------------------------------------------

# (leader log, follower log, reject hint (term, index) or None for success, next append
# prev (term, index)): etcd's TestFastLogRejection table with index 0 (term 0) prepended
# and etcd's indexes kept. Adapted: raftx's first probe already carries the leader's
# last entry (prev = the entry before it, openraft), one entry lower than etcd's; so
# the hints of the first two rows are one index lower, and "no-conflict" matches at
# once. The next append points are etcd's in every rejected row.
FAST_REJECTION = {
    "leader-skips-term": ([0, 1, 2, 2, 4, 4, 4, 4], [0, 1, 2, 2] + [3] * 8, (3, 6), (2, 3)),
    "leader-skips-to-term-3": ([0, 1, 2, 2, 3, 4, 4, 4, 5], [0, 1, 2, 2] + [3] * 8, (3, 7), (3, 4)),
    "follower-skips": ([0, 1, 1, 1, 1], [0, 1, 2, 2, 4], (1, 1), (1, 1)),
    "leader-longer-tail": ([0, 1, 1, 1, 1, 1, 1], [0, 1, 2, 2, 4], (1, 1), (1, 1)),
    "follower-longer-tail": ([0, 1, 1, 1, 1], [0, 1, 2, 2, 4, 4, 4], (1, 1), (1, 1)),
    "no-conflict": ([0, 1, 1, 1, 4, 5], [0, 1, 1, 1, 4], None, (6, 6)),  # matched up to the blank (6,6)
    "step-leader-example": ([0, 2, 5, 5, 5, 5, 5, 5, 5, 5], [0, 2, 4, 4, 4, 4, 4], (4, 6), (2, 1)),
    "follower-example": ([0, 2, 2, 2, 2, 2], [0, 2, 4, 4, 4, 4, 4, 4, 4], (2, 1), (2, 1)),
}


def _leader_and_follower(leader_log: list[int], follower_log: list[int]) -> tuple[Engine, Engine, cmd.Replicate]:
    """Leader 1 elected at term max+1 over C(2) with these logs; its first probe to 2."""
    top = max(leader_log + follower_log)
    leader = make_engine(1, voters=(1, 2), terms=leader_log, vote=Vote(top))
    follower = make_engine(2, voters=(1, 2), terms=follower_log, vote=Vote(top))
    out = elect(leader, granters=[2])
    out += flush(leader)
    [probe] = [c for c in of_type(out, cmd.Replicate) if c.target == 2]
    return leader, follower, probe


@pytest.mark.parametrize("case", sorted(FAST_REJECTION))
def test_s37_fast_backtracking(case: str) -> None:
    """S37 (TestFastLogRejection): one rejected AppendEntries carries the follower's hint
    (term, index), and the leader's next AppendEntries starts at the table's point,
    skipping whole terms in one round trip (§5.3); see the table's adaptation note."""
    leader_log, follower_log, hint, (next_term, next_index) = FAST_REJECTION[case]
    leader, follower, probe = _leader_and_follower(leader_log, follower_log)
    last = len(leader_log) - 1
    assert probe.prev_log_id == LogId(leader_log[last - 1], last - 1)
    [resp] = responses(follower.step(ev.AppendRequested(append_request(leader, probe), "r")))
    assert isinstance(resp, AppendEntriesResponse)
    out = leader.step(ev.AppendResponded(2, probe.send_id, resp))
    if hint is None:
        assert resp.success
        assert leader.leader is not None and leader.leader.progress[2].matching == LogId(next_term, next_index)
        return
    assert not resp.success
    assert (resp.conflict_term, resp.conflict_index) == hint
    [retry] = [c for c in of_type(out, cmd.Replicate) if c.target == 2]
    assert retry.prev_log_id == LogId(next_term, next_index)


def test_s37_stale_append_below_the_followers_purged_prefix_is_accepted() -> None:
    """S37, compacted-follower row: a stale AppendEntries whose prev (3,3) lies inside
    the follower's purged (snapshotted) prefix up to (3,5). Adapted: etcd rejects with
    hint (0, 3); raftx treats purged entries as committed and therefore matching
    (openraft), so it answers success and keeps its log untouched."""
    purged = LogId(3, 5)
    restored = RestoredState(
        vote=Vote(3, 1, True), last_index=5, purged=purged, committed=purged, applied=purged,
        snapshot=SnapshotMeta(purged, StoredMembership(None, Membership.new({1, 2})), "s"),
        memberships=[StoredMembership(None, Membership.new({1, 2}))],
    )
    follower = Engine(2, make_config(), random.Random(0), restored)
    follower.startup(0)
    req = AppendEntriesRequest(Vote(3, 1, True), LogId(3, 3), EntryList([Entry(LogId(3, 4))]), LogId(3, 3))
    out = follower.step(ev.AppendRequested(req, "r"))
    [resp] = responses(out)
    assert isinstance(resp, AppendEntriesResponse) and resp.success
    assert not of_type(out, cmd.TruncateLog) and not of_type(out, cmd.AppendToLog)
    assert follower.log.last_log_id == purged and follower.committed == purged


# -- S38 -----------------------------------------------------------------------------------------


def _two_pipelined_appends() -> tuple[Engine, Engine, cmd.Replicate, cmd.Replicate]:
    """C(2) leader 1 with follower 2 in REPLICATE; two writes sent as two pipelined
    AppendEntries req1 (index 2) and req2 (index 3)."""
    leader, follower, probe = _leader_and_follower([0], [0])
    [resp] = responses(follower.step(ev.AppendRequested(append_request(leader, probe), "r")))
    leader.step(ev.AppendResponded(2, probe.send_id, resp))
    assert leader.leader is not None and leader.leader.progress[2].state is ProgressState.REPLICATE
    reqs = []
    for payload in (b"a", b"b"):
        out = leader.step(ev.ClientWrite([payload], [None]))
        out += flush(leader)
        reqs += [c for c in of_type(out, cmd.Replicate) if c.target == 2]
    req1, req2 = reqs
    assert (req1.first_index, req2.first_index) == (2, 3)
    return leader, follower, req1, req2


def test_s38_late_reject_after_unreachable_does_not_regress_match() -> None:
    """S38 (TestLogReplicationWithReorderedMessage), first half: req2 reaches the
    follower before req1 and is rejected; req1 succeeds and the leader's Match
    becomes 2; the link then fails (probe); the late rejection of req2 must not
    move Match back, and the next AppendEntries starts at Match + 1."""
    leader, follower, req1, req2 = _two_pipelined_appends()
    [resp2] = responses(follower.step(ev.AppendRequested(append_request(leader, req2), "r")))
    assert not resp2.success
    [resp1] = responses(follower.step(ev.AppendRequested(append_request(leader, req1), "r")))
    assert resp1.success
    leader.step(ev.AppendResponded(2, req1.send_id, resp1))
    p = leader.leader.progress[2]  # type: ignore[union-attr]
    assert p.matching == LogId(1, 2)
    leader.step(ev.ReplicationFailed(2))
    assert p.state is ProgressState.PROBE
    leader.step(ev.AppendResponded(2, req2.send_id, resp2))
    assert p.matching == LogId(1, 2)
    out = leader.step(ev.TriggerHeartbeat())
    [resend] = [c for c in of_type(out, cmd.Replicate) if c.target == 2]
    assert resend.prev_log_id == LogId(1, 2) and resend.first_index == 3


def test_s38_stale_reject_of_an_in_flight_append_does_not_regress_match() -> None:
    """S38 (TestLogReplicationWithReorderedMessage), reordering without a link failure:
    the rejection of req2 (prev = index 2) arrives after req1's success set Match to
    2. It is stale (etcd ``MaybeDecrTo``: rejected <= Match), so Match must stay 2 and
    the follower must not be probed from scratch; the resend starts at Match + 1."""
    leader, follower, req1, req2 = _two_pipelined_appends()
    [resp2] = responses(follower.step(ev.AppendRequested(append_request(leader, req2), "r")))
    [resp1] = responses(follower.step(ev.AppendRequested(append_request(leader, req1), "r")))
    leader.step(ev.AppendResponded(2, req1.send_id, resp1))
    p = leader.leader.progress[2]  # type: ignore[union-attr]
    assert p.matching == LogId(1, 2)
    out = leader.step(ev.AppendResponded(2, req2.send_id, resp2))
    assert p.matching == LogId(1, 2)
    assert all(c.first_index >= 3 for c in of_type(out, cmd.Replicate) if c.target == 2)


def test_s38_reordered_cluster_delivery_converges() -> None:
    """S38 through the harness: C(2) where the two pipelined AppendEntries are delivered
    in reverse order; the cluster still converges and commits both writes."""
    cl = booted_cluster(2, enable_leader_lease=False)
    campaign(cl, 1)
    cl.stabilize()
    r = cl.write(1, b"a") + cl.write(1, b"b")
    appends = [m for m in cl.queue if m.kind == "append_req"]
    assert len(appends) == 2
    cl.queue.reverse()
    cl.run_for(100)
    assert all(x.ok for x in r)
    assert cl[2].payloads()[-2:] == [b"a", b"b"]
    assert cl[1].state is ServerState.LEADER
