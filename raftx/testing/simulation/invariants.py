"""Raft's safety properties, checked on the running nodes after every instant.

The simulation hands `after_step` the engine *inside* each node's production
`raftx.runtime.RaftCore` (read only) once all the work of an instant of virtual
time is done, `on_apply` every entry the node's state machine applied, `on_ack`
every write a client got a response for, and `check_final` the entries read back
from every node's log store at the end.

`Invariants` keeps global facts gathered from every node (who led which term,
which log id sits at a committed index, what was applied at each index, what
each log id's predecessor and payload are, which writes were acknowledged) and
raises `InvariantViolation` the moment a node contradicts them:

* **Election Safety** (§5.2): at most one leader per term;
* **Leader Append-Only** (§5.3): a leader never removes or rewrites its entries;
* **Log Matching** (§5.3): an entry's log id fixes its payload and predecessor, so
  equal log ids mean identical prefixes (checked per appended entry, by induction,
  and in full by `check_final`);
* **Leader Completeness** (§5.4): an entry committed under term ``t`` is in the
  log of every leader of a term above ``t``;
* **State Machine Safety** (§5.4.3): every node applies the same entry at an
  index, in index order, and only committed entries;
* **monotonic state**: vote (term), commit index and applied index never go back
  within a node's life, and a restart restores at least the vote and snapshot the
  node had made durable;
* **no acknowledged write lost**: an acknowledged write is committed, survives in
  every later leader's log, and is applied at its index everywhere;
* **bounded in-flight** (flow control): per target, a leader never has more
  replication requests outstanding than ``max_inflight_appends`` (1 while probing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from raftx.engine.election import vote_ge
from raftx.engine.progress import ProgressState
from raftx.types import Entry, LogId, Vote

if TYPE_CHECKING:
    from raftx.engine import Engine

__all__ = ["InvariantViolation", "Invariants"]


class InvariantViolation(AssertionError):
    """A safety property failed: ``invariant`` names it, ``detail`` says how."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


def _idx(log_id: LogId | None) -> int:
    return -1 if log_id is None else log_id.index


@dataclass(slots=True)
class _Track:
    """What the checker remembers of one node's current life."""

    vote: Vote
    committed: LogId | None
    applied: LogId | None
    leader_term: int = -1
    leader_last: LogId | None = None


class Invariants:
    """Global facts and the checks against them; see the module docstring."""

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}
        self.commit_at: dict[int, LogId] = {}
        self.commit_term: dict[int, int] = {}
        self.applied_at: dict[int, tuple[LogId, Any]] = {}
        self.log_facts: dict[LogId, tuple[LogId | None, Any]] = {}
        self.acked: dict[int, tuple[LogId, Any]] = {}
        self._tracks: dict[int, _Track] = {}
        self.checks = 0

    # -- per event ---------------------------------------------------------------------

    def on_append(self, node_id: int, prev: LogId | None, entries: Iterable[Entry]) -> None:
        """Log Matching (§5.3): each appended entry agrees with every other copy of it."""
        facts = self.log_facts
        for e in entries:
            fact = (prev, e.payload)
            seen = facts.setdefault(e.log_id, fact)
            if seen != fact:
                raise InvariantViolation(
                    "log matching",
                    f"node {node_id} appends {e.log_id} after {prev} with payload {e.payload!r}; "
                    f"another copy follows {seen[0]} with payload {seen[1]!r}")
            prev = e.log_id

    def on_apply(self, node_id: int, eng: Engine, entry: Entry) -> None:
        """State Machine Safety (§5.4.3): the same entry at an index on every node."""
        i = entry.log_id.index
        if eng.committed is None or eng.committed.index < i:
            raise InvariantViolation("state machine safety",
                                     f"node {node_id} applies {entry.log_id} above its commit index {eng.committed}")
        fact = (entry.log_id, entry.payload)
        seen = self.applied_at.setdefault(i, fact)
        if seen != fact:
            raise InvariantViolation("state machine safety",
                                     f"node {node_id} applies {fact} at index {i}; another node applied {seen}")

    def on_ack(self, index: int, log_id: LogId, payload: Any) -> None:
        """A client write was acknowledged: it must have been applied as written."""
        if self.applied_at.get(index) != (log_id, payload):
            raise InvariantViolation("acknowledged write", f"ack of {log_id} {payload!r} but applied "
                                     f"{self.applied_at.get(index)!r} at {index}")
        self.acked[index] = (log_id, payload)

    def on_start(self, node_id: int, eng: Engine, flushed_vote: Vote | None, snapshot_index: int,
                 flushed_log_id: LogId | None = None) -> None:
        """A node (re)started from its disk: its durable vote, snapshot and log survived
        (every entry its runtime had reported flushed, §5.2 persist before acknowledge)."""
        if flushed_log_id is not None and flushed_log_id.index > eng.log.purged_index and (
                eng.log.last_index < flushed_log_id.index or eng.log.term_at(flushed_log_id.index)
                != flushed_log_id.term):
            raise InvariantViolation("durable log lost", f"node {node_id} restarts with last {eng.log.last_log_id}, "
                                     f"but its runtime had reported {flushed_log_id} flushed")
        if flushed_vote is not None and not vote_ge(eng.vote, flushed_vote):
            raise InvariantViolation("monotonic vote",
                                     f"node {node_id} restarts with vote {eng.vote}, below its durable {flushed_vote}")
        restored = -1 if eng.snapshot is None else _idx(eng.snapshot.last_log_id)
        if restored < snapshot_index:
            raise InvariantViolation("monotonic snapshot",
                                     f"node {node_id} restarts with snapshot at {restored}, had {snapshot_index}")
        self._tracks[node_id] = _Track(eng.vote, eng.committed, eng.applied)

    def forget(self, node_id: int) -> None:
        """The node crashed: its next life is checked against its disk, not its memory."""
        self._tracks.pop(node_id, None)

    # -- after every step ------------------------------------------------------------------

    def after_step(self, node_id: int, eng: Engine, leaders: Iterable[tuple[int, Engine]]) -> None:
        """Check one node after it handled an event; ``leaders`` are the live leaders."""
        self.checks += 1
        t = self._tracks.get(node_id)
        if t is None:
            t = self._tracks[node_id] = _Track(eng.vote, eng.committed, eng.applied)
        if not vote_ge(eng.vote, t.vote):
            raise InvariantViolation("monotonic vote", f"node {node_id} vote went from {t.vote} to {eng.vote}")
        if _idx(eng.applied) < _idx(t.applied):
            raise InvariantViolation("monotonic applied",
                                     f"node {node_id} applied went from {t.applied} to {eng.applied}")
        if _idx(eng.committed) < _idx(t.committed):
            raise InvariantViolation("monotonic commit",
                                     f"node {node_id} commit went from {t.committed} to {eng.committed}")
        if _idx(eng.committed) > _idx(t.committed):
            self._record_commits(node_id, eng, _idx(t.committed) + 1, leaders)
        t.vote, t.committed, t.applied = eng.vote, eng.committed, eng.applied
        leader = eng.leader
        if leader is None:
            t.leader_term = -1
            return
        term = leader.vote.term
        holder = self.leaders.setdefault(term, node_id)
        if holder != node_id:
            raise InvariantViolation("election safety", f"nodes {holder} and {node_id} both lead term {term}")
        if t.leader_term != term:
            self._check_leader_complete(node_id, eng)
        else:
            self._check_append_only(node_id, eng, t.leader_last)
        t.leader_term, t.leader_last = term, eng.log.last_log_id
        self._check_inflight(node_id, eng)

    def _record_commits(self, node_id: int, eng: Engine, first: int, leaders: Iterable[tuple[int, Engine]]) -> None:
        term = eng.vote.term
        last = _idx(eng.committed)
        new: list[int] = []
        for i in range(first, last + 1):
            lid = eng.log.log_id_at(i)
            if lid is None:
                continue  # covered by an installed snapshot
            seen = self.commit_at.setdefault(i, lid)
            if seen != lid:
                raise InvariantViolation("state machine safety",
                                         f"node {node_id} commits {lid} at {i}, another node committed {seen}")
            if term < self.commit_term.get(i, term + 1):
                self.commit_term[i] = term
                new.append(i)
        for lid_node, leng in leaders:
            lterm = leng.vote.term
            for i in new:
                if lterm > self.commit_term[i]:
                    self._check_has(lid_node, leng, i, self.commit_at[i], "leader completeness")

    def _check_has(self, node_id: int, eng: Engine, i: int, lid: LogId, what: str) -> None:
        if i <= eng.log.purged_index:
            return  # in its snapshot
        if eng.log.term_at(i) != lid.term:
            raise InvariantViolation(what, f"leader {node_id} of term {eng.vote.term} lacks {lid} "
                                     f"(its log: {eng.log.log_id_at(i)} at {i}, last {eng.log.last_log_id})")

    def _check_leader_complete(self, node_id: int, eng: Engine) -> None:
        """Leader Completeness (§5.4): a new leader holds every entry committed before its term."""
        term = eng.vote.term
        for i, lid in self.commit_at.items():
            if self.commit_term[i] < term:
                self._check_has(node_id, eng, i, lid, "leader completeness")
        for i, (lid, _) in self.acked.items():
            if self.commit_term.get(i, term) < term:
                self._check_has(node_id, eng, i, lid, "acknowledged write lost")

    @staticmethod
    def _check_append_only(node_id: int, eng: Engine, prev: LogId | None) -> None:
        """Leader Append-Only (§5.3): the leader's last entry is still there, or later."""
        if prev is None:
            return
        log = eng.log
        if log.last_index < prev.index or (prev.index > log.purged_index and not log.has(prev)):
            raise InvariantViolation("leader append-only",
                                     f"leader {node_id} had {prev}, now last {log.last_log_id} ({log!r})")

    @staticmethod
    def _check_inflight(node_id: int, eng: Engine) -> None:
        """Flow control: outstanding replication requests per target within the window."""
        leader = eng.leader
        assert leader is not None
        window = eng.config.max_inflight_appends
        for target, p in leader.progress.items():
            n = p.replicating()
            limit = 1 if p.state is not ProgressState.REPLICATE else window
            if n > limit or p.inflight_entries < 0:
                raise InvariantViolation(
                    "bounded in-flight",
                    f"leader {node_id} has {n} requests ({p.inflight_entries} entries) in flight to {target} "
                    f"in state {p.state.value}, limit {limit}")

    # -- end of run --------------------------------------------------------------------------

    def check_final(self, logs: dict[int, list[Entry]], leader_id: int | None, leader: Engine | None) -> None:
        """Full Log Matching over every stored log, and every acknowledged write in the
        final leader's log or snapshot."""
        for node_id in sorted(logs):
            entries = logs[node_id]
            for k in range(1, len(entries)):
                self.on_append(node_id, entries[k - 1].log_id, entries[k:k + 1])
        if leader is not None and leader_id is not None:
            for i, (lid, _) in sorted(self.acked.items()):
                if _idx(leader.committed) < i:
                    raise InvariantViolation("acknowledged write lost",
                                             f"final leader {leader_id} committed {leader.committed} < acked {lid}")
                self._check_has(leader_id, leader, i, lid, "acknowledged write lost")
