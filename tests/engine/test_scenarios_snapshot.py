"""Snapshot scenarios (correctness-notes §1.7: S30, S31, S32, S33) against the engine.

raftx follows openraft (§7): a leader whose follower needs purged entries sends its
whole snapshot (`SendSnapshot`); the follower deletes conflicting uncommitted entries,
installs the snapshot, adopts its membership and purges the covered log; a snapshot
at or below the follower's commit index is ignored. The clusters here start with
``initialize`` so the membership entry is a real log entry a snapshot can carry.
"""

from __future__ import annotations

from raftx.config import SnapshotPolicy
from raftx.engine import ProgressState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.messages import SnapshotResponse
from raftx.types import LogId, Membership, ServerState, SnapshotMeta, StoredMembership, Vote

from tests.engine.harness import Cluster, make_config, make_engine, of_type, responses


def _cluster_with_snapshot(writes: int = 100) -> Cluster:
    """C(3) initialized on 1; 3 isolated while ``writes`` writes commit on 1 and 2; the
    leader then snapshots and purges everything the snapshot covers; then the heal."""
    cl = Cluster((1, 2, 3), make_config(snapshot_policy=SnapshotPolicy.Never(), max_in_snapshot_log_to_keep=0))
    assert cl.initialize(1).ok
    assert cl.leader() == 1
    cl.isolate(3)
    for i in range(writes):
        cl.write(1, b"w%d" % i)
    cl.stabilize()
    leader = cl[1].engine
    cl[1].handle(ev.TriggerSnapshot())
    cl[1].handle(ev.TriggerPurgeLog(leader.committed.index))  # type: ignore[union-attr]
    assert leader.snapshot is not None and leader.snapshot.last_log_id == leader.committed
    assert leader.log.purged == leader.committed
    cl.heal()
    return cl


def _progress(cl: Cluster, target: int) -> object:
    leader = cl[1].engine.leader
    assert leader is not None
    return leader.progress[target]


# -- S30 -----------------------------------------------------------------------------------------


def test_s30_lagging_follower_catches_up_via_snapshot() -> None:
    """S30 (TestSlowNodeRestore, slow_follower_after_compaction.txt): 3 missed 100
    entries the leader has since purged; after the heal it receives the snapshot,
    then the entries after it, and ends with the leader's commit index and state."""
    cl = _cluster_with_snapshot(100)
    cl.run_for(60)  # heartbeats find 3 behind the purged prefix
    [reply] = cl.write(1, b"after")
    cl.stabilize()
    cl[1].handle(ev.TriggerHeartbeat())
    cl.stabilize()
    assert reply.ok
    assert [c.target for c in of_type(cl[1].commands, cmd.SendSnapshot)] == [3]
    assert len(of_type(cl[3].commands, cmd.InstallSnapshot)) == 1
    assert cl[3].engine.committed == cl[1].engine.committed
    assert cl[3].payloads() == cl[1].payloads()
    assert cl[3].payloads()[-1] == b"after" and len(cl[3].payloads()) == 101
    assert cl[3].state is ServerState.FOLLOWER
    assert cl[3].engine.membership.effective.membership.voter_ids() == {1, 2, 3}


# -- S31 / S32 -------------------------------------------------------------------------------------


def test_s31_snapshot_send_failure_returns_to_probe_then_retries() -> None:
    """S31 (TestSnapshotFailure): the snapshot send to 3 fails; 3's progress goes back
    to probing from its matching index with nothing in flight; the next heartbeat
    round sends the snapshot again, and this time 3 catches up."""
    cl = _cluster_with_snapshot(20)
    cl.drop(lambda m: m.kind == "snap_req")  # a send queued while 3 was cut off
    cl[1].handle(ev.TriggerHeartbeat())
    assert [m.dst for m in cl.queue if m.kind == "snap_req"] == [3]
    p = _progress(cl, 3)
    assert p.state is ProgressState.SNAPSHOT  # type: ignore[attr-defined]
    cl.drop(lambda m: m.kind == "snap_req")
    assert p.state is ProgressState.PROBE  # type: ignore[attr-defined]
    assert not p.replicating()  # type: ignore[attr-defined]
    assert p.next_index == p.matching_index + 1  # type: ignore[attr-defined]
    sent = len(of_type(cl[1].commands, cmd.SendSnapshot))
    cl.stabilize()
    cl.tick(cl.config.heartbeat_interval)  # the next heartbeat round
    cl.stabilize()
    assert [c.target for c in of_type(cl[1].commands, cmd.SendSnapshot)[sent:]] == [3]
    assert p.state is ProgressState.REPLICATE  # type: ignore[attr-defined]
    assert p.matching == cl[1].engine.snapshot.last_log_id  # type: ignore[attr-defined,union-attr]


def test_s31_s32_snapshot_success_moves_follower_to_replicate_at_once() -> None:
    """S31 (TestSnapshotSucceed) / S32 (snapshot_succeed_via_app_resp.txt): the snapshot
    covers the leader's whole log (its last index == commit). Once 3 installed it,
    its progress is REPLICATE with matching = the snapshot's last log id and
    next = that + 1, without waiting for a new entry to be written."""
    cl = _cluster_with_snapshot(20)
    snap_last = cl[1].engine.snapshot.last_log_id  # type: ignore[union-attr]
    assert snap_last == cl[1].engine.log.last_log_id
    cl.run_for(60)
    p = _progress(cl, 3)
    assert p.state is ProgressState.REPLICATE  # type: ignore[attr-defined]
    assert p.matching == snap_last  # type: ignore[attr-defined]
    assert p.next_index == snap_last.index + 1  # type: ignore[attr-defined,union-attr]
    assert cl[3].engine.committed == snap_last


# -- S33 -------------------------------------------------------------------------------------------


def _snapshot_meta(last: LogId, voters: set[int]) -> SnapshotMeta:
    return SnapshotMeta(last, StoredMembership(LogId(1, 1), Membership.new(voters)), "snap")


def test_s33_snapshot_deletes_conflicting_uncommitted_entries_and_adopts_its_membership() -> None:
    """S33 (openraft t33_snapshot_delete_conflict_logs): follower 2 holds uncommitted
    term-2 entries 3, 4 that conflict with the leader's snapshot ending at (3,4).
    Installing it first truncates after the commit index, then installs, adopts the
    snapshot's membership ({1,2,3,4}) and purges the covered log."""
    eng = make_engine(2, voters=(1, 2, 3), terms=[0, 1, 1, 2, 2], vote=Vote(2, 1, True), committed=2)
    meta = _snapshot_meta(LogId(3, 4), {1, 2, 3, 4})
    out = eng.step(ev.SnapshotReceived(Vote(3, 1, True), meta, "r"))
    [truncate] = of_type(out, cmd.TruncateLog)
    [install] = of_type(out, cmd.InstallSnapshot)
    [purge] = of_type(out, cmd.PurgeLog)
    assert truncate.after == LogId(1, 2)
    assert install.meta == meta and purge.upto == LogId(3, 4)
    assert out.index(truncate) < out.index(install) < out.index(purge)
    assert eng.membership.effective.membership.voter_ids() == {1, 2, 3, 4}
    assert eng.committed == LogId(3, 4)
    assert eng.log.last_log_id == LogId(3, 4)
    eng.step(ev.IOFlushed(eng.io.submitted))
    assert eng.applied == LogId(3, 4)


def test_s33_snapshot_at_or_below_the_commit_index_is_ignored() -> None:
    """S33 (TestRestoreIgnoreSnapshot): follower 2 already committed index 4; a
    snapshot ending at (1,3) changes nothing: no install, no purge, same commit and
    membership, and it still answers the leader."""
    eng = make_engine(2, voters=(1, 2, 3), terms=[0, 1, 1, 1, 1], vote=Vote(1, 1, True), committed=4)
    out = eng.step(ev.SnapshotReceived(Vote(1, 1, True), _snapshot_meta(LogId(1, 3), {1, 2}), "r"))
    assert not of_type(out, cmd.InstallSnapshot) and not of_type(out, cmd.PurgeLog)
    assert not of_type(out, cmd.TruncateLog)
    assert eng.committed == LogId(1, 4)
    assert eng.membership.effective.membership.voter_ids() == {1, 2, 3}
    assert eng.log.purged is None and eng.log.last_log_id == LogId(1, 4)
    assert responses(out) == [SnapshotResponse(Vote(1, 1, True))]
