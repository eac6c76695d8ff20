"""Commitment scenarios (correctness-notes §1.7: S08, S13, S14, S15) against the engine,
through the deterministic multi-node harness.

raftx follows openraft: index 0 holds the membership entry and every new leader
appends a blank entry of its term at once (§8), which is what commits the entries of
earlier terms (§5.4.2). The leader lease is off where the etcd test has no
CheckQuorum.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raftx.messages import AppendEntriesRequest
from raftx.types import LogId, ServerState, Vote

from tests.engine.harness import Cluster, Msg, booted_cluster, campaign, elect_without_appends, restored_cluster


def _appends_from(src: int, dst: int | None = None) -> Callable[[Msg], bool]:
    return lambda m: m.kind == "append_req" and m.src == src and (dst is None or m.dst == dst)


def app_payloads(cl: Cluster, node_id: int) -> list[object]:
    """What the node's state machine applied, without the restored index-0 entry."""
    return [e.payload for e in cl[node_id].sm if e.log_id.index > 0]


def _committed_index(cl: Cluster, node_id: int) -> int:
    c = cl[node_id].engine.committed
    return -1 if c is None else c.index


# -- S08 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "reachable", "commits"),
    [(1, 0, True), (3, 0, False), (3, 1, True), (3, 2, True),
     (5, 0, False), (5, 1, False), (5, 2, True), (5, 4, True)],
)
def test_s08_write_commits_iff_a_majority_acknowledges(size: int, reachable: int, commits: bool) -> None:
    """S08 (TestLeaderAcknowledgeCommit), through the network: leader 1 of C(size) can
    reach ``reachable`` followers; its write commits (and is answered) iff those acks
    plus its own make a majority (§5.3). Lease off (the write must be accepted)."""
    cl = booted_cluster(size, enable_leader_lease=False)
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    for follower in range(2 + reachable, size + 1):
        cl.cut(1, follower)
    blank = cl[1].engine.committed
    [reply] = cl.write(1, b"x")
    cl.stabilize()
    assert reply.ok is commits
    assert (cl[1].engine.committed != blank) is commits
    if commits:
        assert cl[1].engine.committed == LogId(1, 2)


# -- S13: Figure 8 -------------------------------------------------------------------------------


def _figure8_until_c() -> Cluster:
    """Figure 8 (a)-(c): S1 led term 2 and holds (2,2) (and has since seen term 3); S5
    led term 3 and holds (3,2). S1 is elected for term 4 by S2 and S3 (S4 cut, S5 down), appends its blank entry
    (4,3) and brings S2 and S3 up to (2,2); its sends of (4,3) are lost."""
    cl = restored_cluster(
        {1: [0, 1, 2], 2: [0, 1], 3: [0, 1], 4: [0, 1], 5: [0, 1, 3]},
        votes={1: Vote(3, None), 2: Vote(2, 1, True), 3: Vote(3, 5, True), 4: Vote(3, 5, True),
               5: Vote(3, 5, True)},
        enable_leader_lease=False, max_payload_entries=1,
    )
    cl.isolate(5)
    cl.cut(1, 4)
    campaign(cl, 1)
    cl.deliver()  # vote requests
    cl.deliver()  # grants from 2 and 3
    assert cl[1].state is ServerState.LEADER and cl[1].engine.vote.term == 4
    assert cl[1].log_ids()[-1] == LogId(4, 3)
    for _ in range(10):  # probe (2,2) rejected, then (2,2) itself sent and acknowledged
        if all(cl[i].log_ids()[-1] == LogId(2, 2) for i in (2, 3)) and not any(
                m.kind == "append_resp" for m in cl.queue):
            break
        cl.deliver(lambda m: not (m.kind == "append_req" and _sends_index(m, 3)))
    assert [cl[i].log_ids()[-1] for i in (1, 2, 3)] == [LogId(4, 3), LogId(2, 2), LogId(2, 2)]
    return cl


def _sends_index(m: Msg, index: int) -> bool:
    body = m.body
    assert isinstance(body, AppendEntriesRequest)
    return any(e.log_id.index == index for e in body.entries)


def test_s13_figure8_old_term_entry_on_a_majority_is_not_committed_and_may_be_overwritten() -> None:
    """S13 (Figure 8; TestLeaderOnlyCommitsLogFromCurrentTerm), as the paper draws it.

    (c) The term-2 entry at index 2 is on S1, S2, S3 — a majority of five — but the
    leader of term 4 must not count replicas for it (§5.4.2): commit stays below 2.
    (d) S1 goes down; S5 (last log id (3,2)) is elected at term 5 by S2, S3, S4 and
    overwrites index 2 everywhere with its term-3 entry. Had S1 committed (2,2) this
    would lose a committed entry; it did not, so logs and state machines agree.
    """
    cl = _figure8_until_c()
    cl.drop(_appends_from(1))
    assert _committed_index(cl, 1) < 2
    cl.heal()
    cl.isolate(1)
    campaign(cl, 5)  # term 4: S2 and S3 already voted for S1 in term 4
    cl.stabilize()
    campaign(cl, 5)  # term 5
    cl.stabilize()
    assert cl[5].state is ServerState.LEADER and cl[5].engine.vote.term == 5
    for i in (2, 3, 4, 5):
        assert cl[i].log_ids()[2] == LogId(3, 2), i
    assert cl[5].engine.committed == LogId(5, 3)
    assert all(e.log_id != LogId(2, 2) for i in cl.nodes for e in cl[i].sm)
    cl.check_log_matching()


def test_s13_figure8_old_term_entry_commits_with_the_leaders_own_entry() -> None:
    """S13 (Figure 8 (e)): if instead S1's term-4 entry (4,3) reaches the majority,
    committing it commits (2,2) before it (§5.4.2), and S5 can no longer win."""
    cl = _figure8_until_c()
    assert _committed_index(cl, 1) < 2
    cl.stabilize()  # the sends of (4,3) now arrive
    assert cl[1].engine.committed == LogId(4, 3)
    assert cl[1].applied_index == 3 and cl[1].sm[-1].log_id == LogId(2, 2)  # the blank (4,3) is no app data
    cl.isolate(1)
    cl.heal()
    cl.isolate(1)
    for _ in range(2):
        campaign(cl, 5)
        cl.stabilize()
    assert cl[5].state is not ServerState.LEADER  # §5.4.1: S2, S3 hold a newer log


# -- S14 / S15 -----------------------------------------------------------------------------------


def _s14_setup() -> Cluster:
    """C(5) leader 1 (term 1, blank at 1); 1 is cut from 3, 4, 5 and two writes land on
    1 and 2 only (indexes 2, 3)."""
    cl = booted_cluster(5, enable_leader_lease=False)
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].engine.committed == LogId(1, 1)
    for i in (3, 4, 5):
        cl.cut(1, i)
    replies = cl.write(1, b"a") + cl.write(1, b"b")
    cl.stabilize()
    assert not any(r.done for r in replies)
    assert cl[2].log_ids()[-1] == LogId(1, 3)
    assert _committed_index(cl, 1) == 1
    cl.heal()
    return cl


def test_s14_no_commit_without_a_current_term_entry() -> None:
    """S14 (TestCannotCommitWithoutNewTermEntry).

    After the heal node 2 is elected (term 2) while every AppendEntries is lost: its
    commit index stays at 1 although the old entries 2, 3 are in its log. Once its
    AppendEntries flow, its own blank entry (2,4) commits and with it 2, 3; a
    current-term write then commits at 5. Adapted: etcd's "propose a current-term
    entry" is openraft's blank entry, appended at election.
    """
    cl = _s14_setup()
    elect_without_appends(cl, 2)
    assert cl[2].state is ServerState.LEADER and cl[2].engine.vote.term == 2
    assert cl[2].log_ids()[-1] == LogId(2, 4)
    assert _committed_index(cl, 2) == 1
    cl.run_for(100)  # heartbeats re-probe every follower; nothing is lost any more
    assert cl[2].engine.committed == LogId(2, 4)
    [reply] = cl.write(2, b"c")
    cl.stabilize()
    assert reply.ok and cl[2].engine.committed == LogId(2, 5)
    cl.run_for(40)
    assert all(cl[i].engine.committed == LogId(2, 5) for i in cl.nodes)
    assert all(app_payloads(cl, i) == [b"a", b"b", b"c"] for i in cl.nodes)


def test_s15_new_leaders_blank_entry_commits_old_entries() -> None:
    """S15 (TestCommitWithoutNewTermEntry): as S14, but node 2 is elected normally;
    its blank entry (2,4) commits at once and carries the old entries: commit = 4."""
    cl = _s14_setup()
    campaign(cl, 2)
    cl.stabilize()
    assert cl[2].state is ServerState.LEADER
    assert cl[2].engine.committed == LogId(2, 4)
    assert app_payloads(cl, 2) == [b"a", b"b"]
