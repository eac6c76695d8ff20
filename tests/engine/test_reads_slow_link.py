"""ReadIndex over a slow but healthy link (issue 16), in the engine's virtual time.

A leader whose followers answer every request one round trip (RTT) later, with the
RTT spanning more heartbeats than a `Progress` remembers, must still confirm each
read with the first heartbeat round sent after it: about one RTT (thesis §6.4).
Before the fix, answers to forgotten heartbeats were ignored, so while reads kept
adding heartbeats no answer counted and every read waited (or failed).
"""

from __future__ import annotations

from collections import deque

from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.engine.progress import MAX_HEARTBEATS_REMEMBERED
from raftx.errors import RaftError
from raftx.messages import AppendEntriesResponse

from tests.engine.harness import elect, flush, make_engine, of_type

HB = 10
RTT = 150  # 15 heartbeat intervals: more than MAX_HEARTBEATS_REMEMBERED in flight


class SlowLink:
    """One leader engine; every request is answered (success) ``RTT`` ms after it left."""

    def __init__(self, **config: object) -> None:
        self.eng = make_engine(heartbeat_interval=HB, election_timeout_min=400, election_timeout_max=800,
                               **config)
        self.now = 0
        self.inflight: deque[tuple[int, cmd.Replicate]] = deque()
        self.answers: dict[str, tuple[int, object]] = {}
        self._take(elect(self.eng))
        self._take(flush(self.eng))

    def _take(self, cmds: list[cmd.Command]) -> None:
        for c in cmds:
            if isinstance(c, cmd.Replicate):
                self.inflight.append((self.now + RTT, c))
            elif isinstance(c, cmd.Respond) and isinstance(c.responder, str):
                self.answers[c.responder] = (self.now, c.value)
            elif isinstance(c, (cmd.AppendToLog, cmd.SaveVote)):
                self._take(flush(self.eng))

    def step(self, event: ev.Event) -> None:
        self._take(self.eng.step(event))

    def advance(self, ms: int) -> None:
        """Advance the clock ``ms`` ms; deliver the answers due."""
        self.now += ms
        while self.inflight and self.inflight[0][0] <= self.now:
            _, c = self.inflight.popleft()
            matching = c.prev_log_id if c.is_heartbeat else self.eng.log.log_id_at(c.last_index)
            self.step(ev.AppendResponded(c.target, c.send_id, AppendEntriesResponse(c.vote, True, matching)))
        self.step(ev.Tick(self.now))


def test_reads_on_a_slow_link_are_answered_in_about_one_round_trip() -> None:
    assert RTT // HB > MAX_HEARTBEATS_REMEMBERED
    link = SlowLink()
    link.advance(2 * RTT)  # the blank entry is committed
    started: dict[str, int] = {}
    for k in range(60):  # a read every heartbeat interval for 4 RTTs
        name = f"r{k}"
        started[name] = link.now
        link.step(ev.GetReadLogId(name))
        link.advance(HB)
    for _ in range(2 * RTT // HB):
        link.advance(HB)
    assert set(link.answers) == set(started)
    for name, (at, value) in link.answers.items():
        assert not isinstance(value, RaftError), (name, value)
        # the first round sent after the read is answered one RTT later, seen at the next tick
        assert at - started[name] <= RTT + HB, (name, at - started[name])


def test_the_quorum_ack_is_one_round_trip_old_on_a_slow_link() -> None:
    """The lease's basis (``last_quorum_acked``) lags by one RTT, not by however long
    the heartbeats' answers were being forgotten."""
    link = SlowLink()
    for _ in range(4 * RTT // HB):
        link.advance(HB)
        leader = link.eng.leader
        assert leader is not None
        if link.now > 2 * RTT:
            assert link.now - leader.last_quorum_acked <= RTT + HB


def test_an_answer_to_an_earlier_leadership_does_not_confirm_a_read() -> None:
    """Send ids keep growing across a node's leaderships: a late answer to a request
    of its earlier term (given this term's vote by a follower that moved on) is not
    taken for one of this term's requests."""
    link = SlowLink()
    eng = link.eng
    old = [c for _, c in link.inflight]
    assert old
    first_term_max = max(c.send_id for c in old)
    eng.step(ev.Tick(link.now))
    from raftx.types import Vote
    eng.step(ev.AppendResponded(old[0].target, old[0].send_id,
                                AppendEntriesResponse(Vote(eng.vote.term + 1, 99).commit(), False)))
    assert eng.leader is None
    link.inflight.clear()
    link._take(elect(eng))
    link._take(flush(eng))
    assert eng.leader is not None and eng.leader.next_send_id > first_term_max
    link.step(ev.GetReadLogId("r"))
    new_vote = eng.vote
    for c in old:  # late answers to the first term's requests, with the new term's vote
        link.step(ev.AppendResponded(c.target, c.send_id, AppendEntriesResponse(new_vote, True)))
    assert "r" not in link.answers
