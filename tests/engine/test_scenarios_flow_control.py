"""Flow-control scenarios (correctness-notes §1.7: S34, S35, S36, S39) against the engine.

raftx's window per follower (etcd ``Inflights`` / openraft's pipelined stream):
``Config.max_inflight_appends`` requests and an estimate of ``max_inflight_bytes``
(entries in flight x the leader's running average payload size); ``max_payload_entries``
entries per request. Acks are matched to requests by send id, so an ack frees exactly
its own request; heartbeats never take a window slot. etcd's MaxUncommittedEntriesSize
has no openraft counterpart: a partitioned leader's log is bounded by the leader lease
(writes refused once no quorum answered within ``election_timeout_max``).
"""

from __future__ import annotations

from raftx.engine import Engine, Progress, ProgressState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import ForwardToLeader
from raftx.messages import AppendEntriesResponse
from raftx.types import ServerState

from tests.engine.harness import booted_cluster, campaign, elect, flush, make_engine, of_type


def _replicating_leader(**config: object) -> tuple[Engine, Progress]:
    """Leader 1 of C(2) whose follower 2 acknowledged the first probe (REPLICATE)."""
    eng = make_engine(1, voters=(1, 2), terms=[0], **config)
    out = elect(eng, granters=[2]) + flush(eng)
    pending = [c for c in of_type(out, cmd.Replicate) if c.target == 2]
    while pending:  # the probe, then the blank entry
        pending += [c for c in of_type(ack(eng, pending.pop(0)), cmd.Replicate) if c.target == 2]
    p = eng.leader.progress[2]  # type: ignore[union-attr]
    assert p.state is ProgressState.REPLICATE and not p.replicating()
    assert p.matching == eng.log.last_log_id
    return eng, p


def ack(eng: Engine, c: cmd.Replicate) -> list[cmd.Command]:
    """Follower 2 answers ``c`` with success (it now holds everything ``c`` carried)."""
    matching = c.prev_log_id if c.is_heartbeat else eng.log.log_id_at(c.last_index)
    return eng.step(ev.AppendResponded(2, c.send_id, AppendEntriesResponse(eng.vote, True, matching)))


def write(eng: Engine, n: int, size: int = 1) -> list[cmd.Replicate]:
    """``n`` client writes of ``size`` bytes, one batch each; the Replicates to 2 they caused."""
    out: list[cmd.Command] = []
    for _ in range(n):
        out += eng.step(ev.ClientWrite([b"x" * size], [None]))
        out += flush(eng)
    return [c for c in of_type(out, cmd.Replicate) if c.target == 2 and not c.is_heartbeat]


# -- S34 -----------------------------------------------------------------------------------------


def test_s34_window_full_sends_nothing_more() -> None:
    """S34 (TestMsgAppFlowControlFull): with a window of 3 requests of one entry each,
    ten writes send exactly 3 AppendEntries; the rest wait."""
    eng, p = _replicating_leader(max_inflight_appends=3, max_payload_entries=1)
    sent = write(eng, 10)
    assert len(sent) == 3 and p.replicating() == 3
    assert [c.first_index for c in sent] == [2, 3, 4]


def test_s34_ack_frees_its_slot_and_stale_ack_frees_none() -> None:
    """S34 (TestMsgAppFlowControlMoveForward): an ack frees its request's slot and the
    window refills with the next entry; a repeated (stale) ack frees nothing.
    Adapted: acks name requests, so one ack frees one slot, not every slot below
    its index as etcd's index-based Inflights does."""
    eng, p = _replicating_leader(max_inflight_appends=3, max_payload_entries=1)
    sent = write(eng, 10)
    refill = [c for c in of_type(ack(eng, sent[0]), cmd.Replicate) if c.target == 2]
    assert [c.first_index for c in refill] == [5]
    assert p.replicating() == 3 and p.matching_index == 2
    assert not [c for c in of_type(ack(eng, sent[0]), cmd.Replicate) if c.target == 2]
    assert p.replicating() == 3 and p.matching_index == 2


def test_s34_heartbeat_answer_frees_no_slot_and_failure_resets_the_window() -> None:
    """S34 (TestMsgAppFlowControlRecvHeartbeat), adapted: heartbeats do not occupy the
    window, so their answers free no slot (etcd frees one, as a guard against lost
    acks); a lost request is reported instead (`ReplicationFailed`) and empties the
    window into probing from the matching index."""
    eng, p = _replicating_leader(max_inflight_appends=3, max_payload_entries=1)
    write(eng, 10)
    beats = [c for c in of_type(eng.step(ev.TriggerHeartbeat()), cmd.Replicate) if c.target == 2]
    assert len(beats) == 1 and beats[0].is_heartbeat
    assert not [c for c in of_type(ack(eng, beats[0]), cmd.Replicate) if c.target == 2 and not c.is_heartbeat]
    assert p.replicating() == 3
    eng.step(ev.ReplicationFailed(2))
    assert p.state is ProgressState.PROBE and p.replicating() == 0
    assert p.next_index == p.matching_index + 1


# -- S35 -----------------------------------------------------------------------------------------


def test_s35_byte_budget_caps_the_window_for_large_entries() -> None:
    """S35 (TestProgressFlowControl): window 3 requests, 9000 bytes, one entry per
    request. Small entries fill all 3 slots; after a run of ~5000-byte entries the
    byte estimate allows only 2 requests (2 x ~5000 >= 9000), as in etcd's table."""
    eng, p = _replicating_leader(max_inflight_appends=3, max_payload_entries=1, max_inflight_bytes=9000)
    small = write(eng, 3, size=1)
    assert len(small) == 3 and p.replicating() == 3
    for c in small:
        ack(eng, c)
    pending: list[cmd.Replicate] = []
    for _ in range(40):  # the leader learns the new payload size while everything is acked
        pending += write(eng, 1, size=5000)
        while pending:
            pending += [c for c in of_type(ack(eng, pending.pop(0)), cmd.Replicate) if c.target == 2]
    assert p.replicating() == 0
    big = write(eng, 5, size=5000)
    assert len(big) == 2 and p.replicating() == 2
    refill = [c for c in of_type(ack(eng, big[0]), cmd.Replicate) if c.target == 2]
    assert len(refill) == 1 and p.replicating() == 2


def test_large_payloads_get_fewer_entries_per_request() -> None:
    """Entries per AppendEntries are capped so that, at the leader's average payload
    size, a request fills at most half of ``max_frame_bytes`` (raftx's own rule: a
    larger frame would be refused by the transport)."""
    eng, p = _replicating_leader(max_inflight_appends=1, max_payload_entries=300, max_frame_bytes=100_000)
    pending: list[cmd.Replicate] = []
    for _ in range(40):  # one request in flight: the rest waits while the leader learns the size
        pending += write(eng, 1, size=10_000)
    sizes = []
    while pending:
        c = pending.pop(0)
        sizes.append(len(c))
        pending += [r for r in of_type(ack(eng, c), cmd.Replicate) if r.target == 2]
    assert sum(sizes) == 40 and max(sizes) == 100_000 // 2 // 10_000
    assert p.matching == eng.log.last_log_id


# -- S36 -----------------------------------------------------------------------------------------


def test_s36_probe_sends_one_at_a_time_replicate_pipelines() -> None:
    """S36 (TestSendAppendForProgressProbe/Replicate, TestRecvMsgUnreachable,
    heartbeat_resp_recovers_from_probing.txt).

    A new leader probes: one AppendEntries in flight however many writes arrive (a
    heartbeat round adds only a heartbeat). Its ack switches to REPLICATE, which
    pipelines up to the window. A failure (unreachable) returns to PROBE from
    Match + 1; the next acked append restores REPLICATE.
    """
    eng = make_engine(1, voters=(1, 2), terms=[0], max_inflight_appends=4, max_payload_entries=1)
    out = elect(eng, granters=[2]) + flush(eng)
    [probe] = [c for c in of_type(out, cmd.Replicate) if c.target == 2]
    p = eng.leader.progress[2]  # type: ignore[union-attr]
    assert p.state is ProgressState.PROBE
    assert write(eng, 3) == [] and p.replicating() == 1
    beats = [c for c in of_type(eng.step(ev.TriggerHeartbeat()), cmd.Replicate) if c.target == 2]
    assert [c.is_heartbeat for c in beats] == [True]
    follow = [c for c in of_type(ack(eng, probe), cmd.Replicate) if c.target == 2]
    assert p.state is ProgressState.REPLICATE
    assert len(follow) == 4 and p.replicating() == 4  # the blank + 3 writes, pipelined
    eng.step(ev.ReplicationFailed(2))
    assert p.state is ProgressState.PROBE and p.next_index == p.matching_index + 1
    [retry] = [c for c in of_type(eng.step(ev.TriggerHeartbeat()), cmd.Replicate) if c.target == 2]
    assert not retry.is_heartbeat and retry.first_index == p.matching_index + 1
    ack(eng, retry)
    assert p.state is ProgressState.REPLICATE


# -- S39 -----------------------------------------------------------------------------------------


def test_s39_partitioned_leader_log_stays_bounded() -> None:
    """S39 (TestUncommittedEntryLimit, TestRawNodeBoundedLogGrowthWithPartition),
    adapted to openraft's lease: leader 1 of C(3) is cut off; its writes are still
    appended (uncommitted) while the lease lasts, and refused with `ForwardToLeader`
    once no quorum answered within ``election_timeout_max``, so its uncommitted
    log stops growing however long the client keeps writing."""
    cl = booted_cluster(3)
    campaign(cl, 1)
    cl.stabilize()
    cl.isolate(1)
    accepted = refused = 0
    last_index_at_refusal = None
    for _ in range(100):
        cl.tick(10, nodes=[1])
        cl.stabilize()
        [reply] = cl.write(1, b"w")
        if reply.done and isinstance(reply.value, ForwardToLeader):
            refused += 1
            if last_index_at_refusal is None:
                last_index_at_refusal = cl[1].last_index()
        else:
            accepted += 1
    assert cl[1].state is ServerState.LEADER  # openraft: the leader does not step down
    assert 0 < accepted <= cl.config.election_timeout_max // 10
    assert refused == 100 - accepted
    assert cl[1].last_index() == last_index_at_refusal
    assert cl[1].engine.committed is not None and cl[1].engine.committed.index == 1
