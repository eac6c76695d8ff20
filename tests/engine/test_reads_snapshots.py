"""ReadIndex reads (thesis §6.4) and snapshots / log purging (§7) through the engine."""

from __future__ import annotations

from raftx.config import SnapshotPolicy
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import ForwardToLeader, QuorumNotEnough
from raftx.messages import AppendEntriesResponse
from raftx.types import LogId, SnapshotMeta, StoredMembership, Vote

from tests.engine.harness import Cluster, elect, flush, make_config, make_engine, of_type, running_cluster


# -- reads ------------------------------------------------------------------------------------


def test_read_log_id_waits_for_one_quorum_round() -> None:
    c = running_cluster()
    c.write(1, b"a")
    c.stabilize()
    r = c.call(1, lambda r: ev.GetReadLogId(r))
    assert not r.done  # needs a heartbeat round first
    c.stabilize()
    read_log_id, applied = r.value
    assert read_log_id == c[1].engine.committed == LogId(1, 2)
    assert applied == LogId(1, 2)


def test_read_log_id_covers_the_leaders_blank_entry() -> None:
    eng = make_engine(terms=[1, 1], vote=Vote(1))
    elect(eng)
    flush(eng)
    eng.step(ev.GetReadLogId("r"))
    for t, p in eng.leader.progress.items():
        for s in [s for s in p.sends.values() if s.heartbeat]:
            cmds = eng.step(ev.AppendResponded(t, s.send_id, AppendEntriesResponse(eng.vote, True)))
            if of_type(cmds, cmd.Respond):
                [resp] = of_type(cmds, cmd.Respond)
                assert resp.value[0] == LogId(2, 2)  # the blank entry, not yet committed
                return
    raise AssertionError("read never answered")


def test_read_on_follower_forwards() -> None:
    c = running_cluster()
    r = c.call(2, lambda r: ev.GetReadLogId(r))
    assert isinstance(r.value, ForwardToLeader) and r.value.leader_id == 1


def test_read_on_partitioned_leader_fails_with_quorum_not_enough() -> None:
    c = running_cluster()
    c.isolate(1)
    r = c.call(1, lambda r: ev.GetReadLogId(r))
    c.tick(c.config.election_timeout_max, nodes=[1])
    c.stabilize()
    assert isinstance(r.value, QuorumNotEnough)


def test_answers_before_the_read_do_not_confirm_it() -> None:
    eng = make_engine(voters=[1, 2, 3])
    elect(eng)
    flush(eng)
    old = {t: list(p.sends) for t, p in eng.leader.progress.items()}
    eng.step(ev.GetReadLogId("r"))
    for t, ids in old.items():  # answers to requests sent before the read began
        for s in ids:
            out = eng.step(ev.AppendResponded(t, s, AppendEntriesResponse(eng.vote, True)))
            assert of_type(out, cmd.Respond) == []


def test_leader_lease_refuses_writes_without_quorum() -> None:
    c = running_cluster(enable_leader_lease=True)
    c.isolate(1)
    c.tick(c.config.election_timeout_max, nodes=[1])
    [w] = c.write(1, b"x")
    assert isinstance(w.value, ForwardToLeader) and w.value.leader_id is None


def test_single_voter_leader_keeps_its_lease_without_followers() -> None:
    """A one-voter cluster is its own quorum: its lease never lapses (no follower acks)."""
    c = Cluster(ids=[1], config=make_config(enable_leader_lease=True))
    c.initialize(1)
    c.run_for(c.config.election_timeout_max * 2)
    assert c.leader() == 1
    c.run_for(c.config.election_timeout_max * 3)  # well past one lease period
    [w] = c.write(1, b"x")
    c.run_for(20)
    assert w.ok, w


# -- snapshots and purge --------------------------------------------------------------------------


def test_snapshot_policy_builds_and_purges() -> None:
    c = running_cluster(snapshot_policy=SnapshotPolicy.LogsSinceLast(5), max_in_snapshot_log_to_keep=2)
    for k in range(6):
        c.write(1, b"%d" % k)
    c.run_for(40)
    snap = c[1].engine.snapshot
    assert snap is not None and snap.last_log_id.index >= 4  # 5 entries (0..4) applied
    assert c[1].engine.log.purged.index == snap.last_log_id.index - 2
    assert min(c[1].entries) == c[1].engine.log.purged.index + 1
    assert sum(isinstance(x, cmd.BuildSnapshot) for x in c[1].commands) == 1


def test_lagging_follower_catches_up_by_snapshot() -> None:
    c = running_cluster(snapshot_policy=SnapshotPolicy.LogsSinceLast(5), max_in_snapshot_log_to_keep=0, enable_pre_vote=True)
    c.isolate(3)
    for k in range(12):
        c.write(1, b"v%d" % k)
        c.run_for(20)
    assert c[1].engine.log.purged is not None
    c.heal()
    c.run_for(200)
    assert c.leader() == 1
    assert any(isinstance(x, cmd.InstallSnapshot) for x in c[3].commands)
    assert c[3].payloads() == [b"v%d" % k for k in range(12)]
    assert c[3].engine.committed == c[1].engine.committed
    c.check_log_matching()


def test_stale_snapshot_is_ignored() -> None:
    eng = make_engine(terms=[1, 1, 1], vote=Vote(1, 2, True), committed=2)
    meta = SnapshotMeta(LogId(1, 1), StoredMembership(), "old")
    cmds = eng.step(ev.SnapshotReceived(Vote(1, 2, True), meta, "r"))
    assert of_type(cmds, cmd.InstallSnapshot) == [] and of_type(cmds, cmd.PurgeLog) == []
    assert len(of_type(cmds, cmd.Respond)) == 1


def test_snapshot_install_truncates_conflicting_uncommitted_entries() -> None:
    eng = make_engine(terms=[1, 1, 1, 1], vote=Vote(1), committed=0)
    meta = SnapshotMeta(LogId(2, 2), StoredMembership(), "s")
    cmds = eng.step(ev.SnapshotReceived(Vote(2, 2, True), meta, "r"))
    kinds = [type(x) for x in cmds if not isinstance(x, (cmd.SaveVote, cmd.Respond))]
    assert kinds == [cmd.TruncateLog, cmd.InstallSnapshot, cmd.PurgeLog]
    assert of_type(cmds, cmd.TruncateLog)[0].after == LogId(1, 0)
    assert eng.committed == LogId(2, 2) and eng.log.last_log_id == LogId(2, 2)
    assert eng.log.purged == LogId(2, 2)


def test_trigger_purge_never_passes_the_snapshot() -> None:
    c = running_cluster(snapshot_policy=SnapshotPolicy.Never())
    for k in range(5):
        c.write(1, b"%d" % k)
    c.run_for(40)
    c[1].handle(ev.TriggerPurgeLog(3))
    assert c[1].engine.log.purged is None  # no snapshot yet
    c[1].handle(ev.TriggerSnapshot())
    c[1].handle(ev.TriggerPurgeLog(100))
    assert c[1].engine.log.purged == c[1].engine.snapshot.last_log_id
