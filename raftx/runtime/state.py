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
        return self._eng.id

    @property
    def vote(self) -> Vote:
        """currentTerm + votedFor, as openraft's ``Vote`` (§5.2 Figure 2)."""
        return self._eng.vote

    @property
    def current_term(self) -> int:
        return self._eng.vote.term

    @property
    def committed(self) -> LogId | None:
        """The highest log id known to be committed (§5.3)."""
        return self._eng.committed

    @property
    def last_applied(self) -> LogId | None:
        return self._eng.applied

    @property
    def last_log_id(self) -> LogId | None:
        return self._eng.log.last_log_id

    @property
    def last_purged_log_id(self) -> LogId | None:
        return self._eng.log.purged

    @property
    def snapshot_meta(self) -> SnapshotMeta | None:
        return self._eng.snapshot

    @property
    def server_state(self) -> ServerState:
        return self._eng.server_state

    @property
    def current_leader(self) -> int | None:
        return self._eng.current_leader

    @property
    def is_leader(self) -> bool:
        return self._eng.leader is not None

    @property
    def membership(self) -> Membership:
        """The effective membership (in force as soon as appended, thesis §4.1)."""
        return self._eng.membership.effective.membership

    @property
    def effective_membership(self) -> StoredMembership:
        return self._eng.membership.effective

    @property
    def committed_membership(self) -> StoredMembership:
        return self._eng.membership.committed

    @property
    def flushed_io(self) -> int:
        """The last storage io id reported durable."""
        return self._eng.io.flushed

    def __repr__(self) -> str:
        e = self._eng
        return (f"RaftState(id={e.id}, state={e.server_state.value}, vote={e.vote!r}, "
                f"last={e.log.last_log_id!r}, committed={e.committed!r}, applied={e.applied!r})")
