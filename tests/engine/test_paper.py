"""The claims of the Raft paper, one test each (etcd-io/raft ``raft_paper_test.go``).

Each test sets up an engine (or a small cluster), feeds it one or a few events,
and checks the commands it emits and the state it ends in. Indexes start at 0 in
raftx (etcd's start at 1); the leader lease is off (paper semantics) unless said.
"""

from __future__ import annotations

import random

import pytest

from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.engine import Engine, each_responder
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, EntryList, VoteRequest, VoteResponse
from raftx.types import Entry, LogId, ServerState, Vote

from tests.engine.harness import Cluster, elect, flush, make_engine, of_type


def entries(*ids: tuple[int, int]) -> EntryList:
    """Entries from ``(term, index)`` pairs, payload ``b"<index>"``."""
    return EntryList([Entry(LogId(t, i), f"{i}".encode()) for t, i in ids])


def append_req(term: int, leader: int, prev: tuple[int, int] | None, ents: EntryList = EntryList(()),
               commit: tuple[int, int] | None = None) -> ev.AppendRequested:
    return ev.AppendRequested(
        AppendEntriesRequest(
            Vote(term, leader, True),
            None if prev is None else LogId(*prev),
            ents,
            None if commit is None else LogId(*commit),
        ),
        responder="r",
    )


def responses(cmds: list[cmd.Command]) -> list[object]:
    return [c.value for c in of_type(cmds, cmd.Respond)]


def make_role(role: str, term: int = 1) -> Engine:
    """A node of {1,2,3} in ``role`` at ``term``."""
    eng = make_engine(terms=[], vote=Vote(term - 1 if role != "follower" else term))
    if role == "candidate":
        eng.step(ev.TriggerElect())
    elif role == "leader":
        elect(eng)
    assert eng.vote.term == term
    return eng


# -- §5.1 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["follower", "candidate", "leader"])
@pytest.mark.parametrize("message", ["append", "vote"])
def test_update_term_from_message(role: str, message: str) -> None:
    """If one server's current term is smaller than the other's, it updates its current
    term to the larger value; a candidate or leader with an out-of-date term reverts
    to follower state. (etcd TestFollower/Candidate/LeaderUpdateTermFromMessage)

    Reference: §5.1
    """
    eng = make_role(role, term=1)
    if message == "append":
        cmds = eng.step(append_req(2, 2, None))
    else:
        cmds = eng.step(ev.VoteRequested(VoteRequest(Vote(2, 2), None), "r"))
    assert eng.vote.term == 2
    assert eng.server_state is ServerState.FOLLOWER
    assert eng.leader is None and eng.candidate is None
    assert of_type(cmds, cmd.SaveVote)[-1].vote.term == 2


def test_reject_stale_term_message() -> None:
    """If a server receives a request with a stale term number, it rejects the request.
    (etcd TestRejectStaleTermMessage)

    Reference: §5.1
    """
    eng = make_engine(terms=[1, 2], vote=Vote(2, 3, True))
    cmds = eng.step(append_req(1, 2, (1, 0), entries((1, 1))))
    assert responses(cmds) == [AppendEntriesResponse(Vote(2, 3, True), False)]
    assert of_type(cmds, cmd.AppendToLog) == [] and of_type(cmds, cmd.TruncateLog) == []
    assert of_type(cmds, cmd.SaveVote) == []
    assert eng.log.last_log_id == LogId(2, 1)


# -- §5.2 --------------------------------------------------------------------------------------


def test_start_as_follower() -> None:
    """When servers start up, they begin as followers. (etcd TestStartAsFollower)

    Reference: §5.2
    """
    eng = make_engine()
    assert eng.server_state is ServerState.FOLLOWER
    assert eng.leader is None and eng.candidate is None


def test_leader_bcast_beat() -> None:
    """Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries)
    to all followers to maintain their authority. (etcd TestLeaderBcastBeat)

    Reference: §5.2
    """
    eng = make_role("leader")
    last = eng.log.last_log_id
    for target in (2, 3):  # followers match the blank entry: nothing left to send
        send_id = next(s for s in eng.leader.progress[target].sends)
        eng.step(ev.AppendResponded(target, send_id, AppendEntriesResponse(eng.vote, True)))
    cmds = eng.step(ev.Tick(eng.config.heartbeat_interval))
    beats = of_type(cmds, cmd.Replicate)
    assert sorted(b.target for b in beats) == [2, 3]
    for b in beats:
        assert b.is_heartbeat and len(b) == 0
        assert b.prev_log_id == last and b.vote == eng.vote


@pytest.mark.parametrize("role", ["follower", "candidate"])
def test_start_election_on_timeout(role: str) -> None:
    """If a follower receives no communication over the election timeout, it begins an
    election: it increments its term, votes for itself, transitions to candidate and
    issues RequestVote RPCs to every other server; a candidate whose election times
    out starts a new one. (etcd TestFollowerStartElection, TestCandidateStartNewElection)

    Reference: §5.2
    """
    eng = make_role(role, term=1)
    cmds = eng.step(ev.Tick(eng.config.election_timeout_max))
    assert eng.server_state is ServerState.CANDIDATE
    assert eng.vote == Vote(2, 1)
    assert of_type(cmds, cmd.SaveVote) == [cmd.SaveVote(eng.io.submitted, Vote(2, 1))]
    votes = of_type(cmds, cmd.SendVote)
    assert sorted(v.target for v in votes) == [2, 3]
    for v in votes:
        assert v.req == VoteRequest(Vote(2, 1), eng.log.last_log_id)
        assert v.when == cmd.Condition.flushed(eng.io.submitted)  # vote durable first


@pytest.mark.parametrize(
    "size,grants,rejects,expected",
    [
        (1, [], [], ServerState.LEADER),
        (3, [2], [], ServerState.LEADER),
        (3, [2, 3], [], ServerState.LEADER),
        (5, [2, 3], [], ServerState.LEADER),
        (5, [2, 3, 4, 5], [], ServerState.LEADER),
        (5, [2, 3], [4, 5], ServerState.LEADER),
        (3, [], [2, 3], ServerState.FOLLOWER),
        (5, [], [2, 3, 4], ServerState.FOLLOWER),
        (5, [2], [3, 4, 5], ServerState.FOLLOWER),
        (3, [], [], ServerState.CANDIDATE),
        (5, [2], [], ServerState.CANDIDATE),
        (5, [2], [3], ServerState.CANDIDATE),
        (5, [], [2, 3], ServerState.CANDIDATE),
    ],
)
def test_leader_election_in_one_round_rpc(size: int, grants: list[int], rejects: list[int], expected: ServerState) -> None:
    """A candidate wins an election if it receives votes from a majority of the servers
    in the full cluster for the same term; it reverts to follower once a majority
    rejected it, and stays candidate while undecided. (etcd TestLeaderElectionInOneRoundRPC)

    Reference: §5.2
    """
    eng = make_engine(voters=range(1, size + 1))
    eng.step(ev.TriggerElect())
    vote = Vote(1, 1)
    for g in grants:
        eng.step(ev.VoteResponded(g, vote, VoteResponse(vote, True)))
    for r in rejects:
        eng.step(ev.VoteResponded(r, vote, VoteResponse(Vote(1, r), False)))
    assert eng.server_state is expected
    assert eng.vote.term == 1


@pytest.mark.parametrize(
    "voted_for,candidate,granted",
    [
        (None, 2, True),
        (None, 3, True),
        (2, 2, True),
        (3, 3, True),
        (2, 3, False),
        (3, 2, False),
    ],
)
def test_follower_vote(voted_for: int | None, candidate: int, granted: bool) -> None:
    """Each server will vote for at most one candidate in a given term, on a
    first-come-first-served basis (a repeated request from the same candidate is
    granted again). (etcd TestFollowerVote)

    Reference: §5.2
    """
    eng = make_engine(vote=Vote(1, voted_for))
    cmds = eng.step(ev.VoteRequested(VoteRequest(Vote(1, candidate), None), "r"))
    [resp] = responses(cmds)
    assert resp.vote_granted is granted
    assert eng.vote == (Vote(1, candidate) if granted else Vote(1, voted_for))


@pytest.mark.parametrize("leader_term", [1, 2])
def test_candidate_fallback(leader_term: int) -> None:
    """A candidate that receives an AppendEntries RPC from a leader whose term is at
    least as large as its own recognizes the leader and returns to follower state.
    (etcd TestCandidateFallback)

    Reference: §5.2
    """
    eng = make_role("candidate", term=1)
    cmds = eng.step(append_req(leader_term, 2, None))
    assert eng.server_state is ServerState.FOLLOWER
    assert eng.vote == Vote(leader_term, 2, True)
    assert eng.current_leader == 2
    assert responses(cmds)[0].success


def _time_to_next_election(eng: Engine, start: int) -> int:
    """Tick 1 ms at a time from ``start`` until ``eng`` starts an election; the elapsed ms."""
    t, term = start, eng.vote.term
    while eng.vote.term == term:
        t += 1
        eng.step(ev.Tick(t))
    return t - start


@pytest.mark.parametrize("role", ["follower", "candidate"])
def test_election_timeout_randomized(role: str) -> None:
    """Raft uses randomized election timeouts chosen from a fixed interval [T, 2T); every
    value of it occurs. (etcd TestFollowerElectionTimeoutRandomized,
    TestCandidateElectionTimeoutRandomized)

    Reference: §5.2
    """
    eng = make_engine(election_timeout_min=10, election_timeout_max=20, heartbeat_interval=5, seed=7)
    if role == "candidate":
        eng.step(ev.TriggerElect())
    seen: set[int] = set()
    now = 0
    for _ in range(300):
        if role == "follower":
            eng.step(append_req(eng.vote.term + 1, 2, None))  # a leader: the timer restarts now
        else:
            assert eng.server_state is ServerState.CANDIDATE
        timeout = _time_to_next_election(eng, now)
        now += timeout
        seen.add(timeout)
    assert seen == set(range(10, 20))


def _conflicts(rounds: int, seed: int, candidates: bool) -> float:
    """Share of rounds in which more than one of 5 servers times out in the same ms."""
    rng = random.Random(seed)
    conflicts = 0
    for r in range(rounds):
        engines = [make_engine(node_id=i, voters=range(1, 6), seed=rng.randrange(1 << 30),
                               election_timeout_min=10, election_timeout_max=20, heartbeat_interval=5)
                   for i in range(1, 6)]
        if candidates:
            for e in engines:
                e.step(ev.TriggerElect())
        t = 0
        fired: list[Engine] = []
        while not fired:
            t += 1
            for e in engines:
                before = e.vote.term
                e.step(ev.Tick(t))
                if e.vote.term > before:
                    fired.append(e)
        conflicts += len(fired) > 1
    return conflicts / rounds


@pytest.mark.parametrize("candidates", [False, True])
def test_election_timeout_nonconflict(candidates: bool) -> None:
    """Randomized election timeouts spread servers out so that in most cases only a
    single server (follower or candidate) times out first. (etcd
    TestFollowersElectionTimeoutNonconflict, TestCandidatesElectionTimeoutNonconflict)

    Reference: §5.2
    """
    assert _conflicts(200, seed=3, candidates=candidates) <= 0.3


# -- §5.3 --------------------------------------------------------------------------------------


def _leader_with_replicating_followers(voters: range = range(1, 4), terms: list[int] | None = None) -> Engine:
    """A leader whose followers acknowledged everything (progress REPLICATE)."""
    eng = make_engine(voters=voters, terms=terms or [])
    elect(eng, granters=list(voters)[1:])
    flush(eng)
    for target, p in eng.leader.progress.items():
        for send_id in list(p.sends):
            eng.step(ev.AppendResponded(target, send_id, AppendEntriesResponse(eng.vote, True)))
    return eng


def test_leader_start_replication() -> None:
    """When the leader receives a client command it appends it to its log as a new entry
    and issues AppendEntries RPCs in parallel to each of the other servers, with the
    index and term of the entry that immediately precedes the new ones.
    (etcd TestLeaderStartReplication)

    Reference: §5.3
    """
    eng = _leader_with_replicating_followers()
    prev = eng.log.last_log_id
    cmds = eng.step(ev.ClientWrite([b"some data"], ["r"]))
    [append] = of_type(cmds, cmd.AppendToLog)
    assert [e.log_id for e in append.entries] == [LogId(1, prev.index + 1)]
    assert [e.payload for e in append.entries] == [b"some data"]
    reps = of_type(cmds, cmd.Replicate)
    assert sorted(r.target for r in reps) == [2, 3]
    for r in reps:
        assert (r.prev_log_id, r.first_index, r.last_index) == (prev, prev.index + 1, prev.index + 1)
    assert eng.log.last_log_id == LogId(1, prev.index + 1)


def test_leader_commit_entry() -> None:
    """When the entry has been safely replicated, the leader applies it to its state
    machine and returns the result to the client; it includes the highest known
    committed index in future AppendEntries RPCs. (etcd TestLeaderCommitEntry)

    Reference: §5.3
    """
    eng = _leader_with_replicating_followers()
    cmds = eng.step(ev.ClientWrite([b"x"], ["client"]))
    flush(eng)
    new = eng.log.last_log_id
    rep = of_type(cmds, cmd.Replicate)[0]
    out = eng.step(ev.AppendResponded(rep.target, rep.send_id, AppendEntriesResponse(eng.vote, True)))
    assert eng.committed == new
    [apply] = of_type(out, cmd.Apply)
    assert apply.last == new and list(each_responder(apply.responders)) == [(new.index, "client")]
    later = of_type(eng.step(ev.ClientWrite([b"y"], ["c2"])), cmd.Replicate)
    assert {r.leader_commit for r in later} == {new}


@pytest.mark.parametrize(
    "size,acks,commits",
    [
        (1, [], True),
        (3, [], False),
        (3, [2], True),
        (3, [2, 3], True),
        (5, [], False),
        (5, [2], False),
        (5, [2, 3], True),
        (5, [2, 3, 4, 5], True),
    ],
)
def test_leader_acknowledge_commit(size: int, acks: list[int], commits: bool) -> None:
    """A log entry is committed once the leader that created it has replicated it on a
    majority of the servers (the leader's own durable copy counts).
    (etcd TestLeaderAcknowledgeCommit)

    Reference: §5.3
    """
    eng = _leader_with_replicating_followers(range(1, size + 1))
    cmds = eng.step(ev.ClientWrite([b"x"], ["c"]))
    flush(eng)
    new = eng.log.last_log_id
    reps = {r.target: r for r in of_type(cmds, cmd.Replicate)}
    for a in acks:
        eng.step(ev.AppendResponded(a, reps[a].send_id, AppendEntriesResponse(eng.vote, True)))
    assert (eng.committed == new) is commits


def test_leader_commit_preceding_entries() -> None:
    """When the leader commits an entry it also commits all preceding entries in its
    log, including entries created by previous leaders, and they are applied in log
    order. (etcd TestLeaderCommitPrecedingEntries)

    Reference: §5.3
    """
    for earlier in ([], [2], [1, 2], [1]):
        eng = make_engine(terms=earlier, vote=Vote(2))
        elect(eng)
        flush(eng)
        cmds = []
        for target, p in eng.leader.progress.items():
            for send_id, send in list(p.sends.items()):
                cmds += eng.step(ev.AppendResponded(target, send_id, AppendEntriesResponse(eng.vote, True)))
        [apply] = of_type(cmds, cmd.Apply)
        assert apply.first_index == 0
        assert apply.last == LogId(3, len(earlier))
        assert eng.committed == LogId(3, len(earlier))


def test_follower_commit_entry() -> None:
    """Once a follower learns that a log entry is committed, it applies the entry to its
    local state machine (in log order). (etcd TestFollowerCommitEntry)

    Reference: §5.3
    """
    for n_entries, commit in ((1, 0), (2, 1), (2, 0)):
        eng = make_engine(vote=Vote(1))
        ents = entries(*[(1, i) for i in range(n_entries)])
        cmds = eng.step(append_req(1, 2, None, ents, (1, commit)))
        [apply] = of_type(cmds, cmd.Apply)
        assert (apply.first_index, apply.last) == (0, LogId(1, commit))
        assert eng.committed == LogId(1, commit)


@pytest.mark.parametrize(
    "prev,accepted,hint",
    [
        ((0, 0), True, None),  # prev before the log (etcd: index 0 term 0); raftx: no prev
        ((1, 0), True, None),  # match with committed entry
        ((2, 1), True, None),  # match with uncommitted entry
        ((1, 1), False, (0, 1)),  # unmatched term
        ((3, 2), False, (1, 2)),  # beyond the log
    ],
)
def test_follower_check_append_entries(prev: tuple[int, int], accepted: bool, hint: tuple[int, int] | None) -> None:
    """If the follower does not find an entry in its log with the same index and term
    as the one in the AppendEntries RPC, it refuses the new entries; the refusal
    carries a hint for backtracking by term. (etcd TestFollowerCheckMsgApp)

    Reference: §5.3
    """
    eng = make_engine(terms=[1, 2], vote=Vote(2), committed=0)
    prev_id = None if prev == (0, 0) else prev
    [resp] = responses(eng.step(append_req(2, 2, prev_id, commit=(1, 0))))
    assert resp.success is accepted
    if hint is not None:
        assert (resp.conflict_index, resp.conflict_term) == hint


@pytest.mark.parametrize(
    "prev,new,want,truncated_after",
    [
        ((2, 1), [(3, 2)], [1, 2, 3], None),
        ((1, 0), [(3, 1), (4, 2)], [1, 3, 4], 0),
        (None, [(1, 0)], [1, 2], None),
        (None, [(3, 0)], [3], -1),
    ],
)
def test_follower_append_entries(prev, new, want, truncated_after) -> None:
    """On an AppendEntries that passes the consistency check, the follower deletes the
    first conflicting entry and all that follow it, then appends any new entries not
    already in the log, and stores them durably. (etcd TestFollowerAppendEntries)

    Reference: §5.3
    """
    eng = make_engine(terms=[1, 2], vote=Vote(2))
    cmds = eng.step(append_req(4, 2, prev, entries(*new)))
    assert [lid.term for lid in (eng.log.log_id_at(i) for i in range(eng.log.last_index + 1))] == want
    truncs = of_type(cmds, cmd.TruncateLog)
    if truncated_after is None:
        assert truncs == []
    else:
        [t] = truncs
        assert t.after == (None if truncated_after < 0 else eng.log.log_id_at(truncated_after))
        kinds = [type(c) for c in cmds if isinstance(c, (cmd.TruncateLog, cmd.AppendToLog))]
        assert kinds == [cmd.TruncateLog, cmd.AppendToLog]
    [resp] = of_type(cmds, cmd.Respond)
    assert resp.value.success and resp.when == cmd.Condition.flushed(eng.io.submitted)


FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("name", sorted(FIG7_FOLLOWERS))
def test_leader_sync_follower_log(name: str) -> None:
    """The leader handles inconsistencies by forcing the followers' logs to duplicate its
    own: missing entries are sent, extraneous and conflicting ones overwritten
    (Figure 7 a-f). (etcd TestLeaderSyncFollowerLog)

    Reference: §5.3, Figure 7
    """
    c = Cluster(ids=())
    c.add_node(1, terms=FIG7_LEADER, vote=Vote(7), voters=[1, 2, 3])
    c.add_node(2, terms=FIG7_FOLLOWERS[name], vote=Vote(7), voters=[1, 2, 3])
    c.add_node(3, terms=[], vote=Vote(7), voters=[1, 2, 3])  # grants the vote (etcd's helper)
    c[1].handle(ev.TriggerElect())
    c.stabilize()
    assert c.leader() == 1 and c[1].engine.vote.term == 8
    assert c[2].log_ids() == c[1].log_ids()
    assert c[1].log_ids()[-1] == LogId(8, len(FIG7_LEADER))
    c.check_log_matching()


# -- §5.4 --------------------------------------------------------------------------------------


def test_vote_request() -> None:
    """The RequestVote RPC includes information about the candidate's log (last log
    index and term), and goes to every other server. (etcd TestVoteRequest)

    Reference: §5.4.1
    """
    for terms in ([1], [1, 2], [1, 2, 2]):
        eng = make_engine(terms=terms, voters=range(1, 6))
        cmds = eng.step(ev.TriggerElect())
        reqs = of_type(cmds, cmd.SendVote)
        assert sorted(r.target for r in reqs) == [2, 3, 4, 5]
        for r in reqs:
            assert r.req.last_log_id == LogId(terms[-1], len(terms) - 1)
            assert r.req.vote == Vote(terms[-1] + 1, 1)


@pytest.mark.parametrize(
    "own,cand,granted",
    [
        # same last term: longer-or-equal log wins
        ([1], (1, 0), True),
        ([1], (1, 1), True),
        ([1, 1], (1, 0), False),
        # candidate's last term higher
        ([1], (2, 0), True),
        ([1], (2, 1), True),
        ([1, 1], (2, 0), True),
        # candidate's last term lower
        ([2], (1, 0), False),
        ([2], (1, 1), False),
        ([2, 2], (1, 0), False),
        ([1, 2], (1, 1), False),
    ],
)
def test_voter(own: list[int], cand: tuple[int, int], granted: bool) -> None:
    """The voter denies its vote if its own log is more up-to-date than the candidate's:
    the later last term wins; with equal last terms the longer log wins. (etcd TestVoter)

    Reference: §5.4.1
    """
    eng = make_engine(terms=own, vote=Vote(2))
    [resp] = responses(eng.step(ev.VoteRequested(VoteRequest(Vote(3, 2), LogId(*cand)), "r")))
    assert resp.vote_granted is granted
    assert eng.vote.term == 3  # §5.1: the term is adopted either way


@pytest.mark.parametrize("ack_index,commits", [(0, False), (1, False), (2, True)])
def test_leader_only_commits_log_from_current_term(ack_index: int, commits: bool) -> None:
    """Raft never commits log entries from previous terms by counting replicas; only
    entries from the leader's current term are committed that way, and then every
    earlier entry with them. (etcd TestLeaderOnlyCommitsLogFromCurrentTerm, Figure 8)

    Reference: §5.4.2
    """
    eng = make_engine(terms=[1, 2], vote=Vote(2))
    elect(eng, granters=[2])
    flush(eng)
    assert eng.log.last_log_id == LogId(3, 2)
    [probe] = [s for s in eng.leader.progress[2].sends.values() if not s.heartbeat]
    eng.step(ev.AppendResponded(2, probe.send_id, AppendEntriesResponse(eng.vote, True, LogId(*[(1, 0), (2, 1), (3, 2)][ack_index]))))
    assert (eng.committed == LogId(3, 2)) is commits
    if not commits:
        assert eng.committed is None
