"""`RaftState`: a read-only view of a node's Raft state, for `raftx.Raft.with_raft_state`.

The function passed to ``with_raft_state`` / ``external_request`` runs inside the
core task, between two engine steps, and receives this view (openraft passes
``&RaftState``). It reads the engine's live fields; it has no setters.

Example::

    committed = await raft.with_raft_state(lambda st: st.committed)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftx.types import LogId, Membership, ServerState, SnapshotMeta, StoredMembership, Vote

if TYPE_CHECKING:
    from raftx.engine import Engine

__all__ = ["RaftState"]


class RaftState:
    """Read-only accessors over the engine (names follow openraft's ``RaftState``)."""

    __slots__ = ("_eng",)

    def __init__(self, engine: Engine) -> None:
        self._eng = engine

    @property
    def id(self) -> int:
        """This node's id."""
        return self._eng.id

    @property
    def vote(self) -> Vote:
        """currentTerm + votedFor, as openraft's ``Vote`` (§5.2 Figure 2)."""
        return self._eng.vote

    @property
    def current_term(self) -> int:
        """currentTerm (§5.1): the term of the current vote."""
        return self._eng.vote.term

    @property
    def committed(self) -> LogId | None:
        """The highest log id known to be committed (§5.3)."""
        return self._eng.committed

    @property
    def last_applied(self) -> LogId | None:
        """lastApplied (§5.3): the last log id applied to the state machine."""
        return self._eng.applied

    @property
    def last_log_id(self) -> LogId | None:
        """The last log id in the log (openraft's ``last_log_id``), None for an empty log."""
        return self._eng.log.last_log_id

    @property
    def last_purged_log_id(self) -> LogId | None:
        """The last log id purged from the log (covered by a snapshot, §7), None if none."""
        return self._eng.log.purged

    @property
    def snapshot_meta(self) -> SnapshotMeta | None:
        """The metadata of the current snapshot, None if none."""
        return self._eng.snapshot

    @property
    def server_state(self) -> ServerState:
        """The node's role (§5.1): leader, candidate, follower, learner or shutdown."""
        return self._eng.server_state

    @property
    def current_leader(self) -> int | None:
        """The node id of the known leader of the current term, None if unknown."""
        return self._eng.current_leader

    @property
    def is_leader(self) -> bool:
        """True while this node is the leader (§5.2)."""
        return self._eng.leader is not None

    @property
    def membership(self) -> Membership:
        """The effective membership (in force as soon as appended, thesis §4.1)."""
        return self._eng.membership.effective.membership

    @property
    def effective_membership(self) -> StoredMembership:
        """The last membership in the log with its log id (effective once appended, thesis §4.1)."""
        return self._eng.membership.effective

    @property
    def committed_membership(self) -> StoredMembership:
        """The last committed membership with its log id (thesis §4.1)."""
        return self._eng.membership.committed

    @property
    def flushed_io(self) -> int:
        """The last storage io id reported durable."""
        return self._eng.io.flushed

    def __repr__(self) -> str:
        e = self._eng
        return (f"RaftState(id={e.id}, state={e.server_state.value}, vote={e.vote!r}, "
                f"last={e.log.last_log_id!r}, committed={e.committed!r}, applied={e.applied!r})")
