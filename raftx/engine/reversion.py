"""A follower whose log went back: refuse loudly, or replicate it again from scratch.

A follower only acknowledges entries once they are durable (§5.3, persist before
acknowledge), so in one leader term it never rejects an entry at or below the index
it was found to match. When it does, its log was reverted: the node came back with
the same id and a wiped or restored-from-backup data directory. This breaks Raft's
assumption that acknowledged entries stay (a committed entry may now be on fewer
nodes than a quorum), so by default the leader refuses to repair it
(``Config.allow_log_reversion = False``, openraft's default): it logs an error once
per lost match, counts every such rejection in ``RaftMetrics.log_reversions`` and
leaves the follower where it is. With ``allow_log_reversion = True`` the leader
forgets what the follower matched and replicates to it from the beginning (the log,
or a snapshot once the entries it needs were purged, §7). The committed index never
moves back: what a quorum accepted stays committed.
"""

from __future__ import annotations

import logging

from raftx.engine.progress import Progress, Send
from raftx.engine.roles import LeaderState
from raftx.engine.state import EngineState
from raftx.messages import AppendEntriesResponse

__all__ = ["on_follower_log_reverted"]

logger = logging.getLogger(__name__)


def on_follower_log_reverted(st: EngineState, leader: LeaderState, target: int, p: Progress, send: Send,
                             resp: AppendEntriesResponse) -> None:
    """``target`` rejected ``send`` although it matched ``p.matching`` (at or after
    ``send.prev_log_id``) earlier in this term: its log went back (module docstring)."""
    st.log_reversions += 1
    if not st.config.allow_log_reversion:
        if p.reverted_at != p.matching:
            p.reverted_at = p.matching
            logger.error(
                "node %s: follower %s lost log entries it had acknowledged (it matched %s, now rejects %s): "
                "its data directory was wiped or restored from an older copy. Refusing to replicate to it "
                "again (Config.allow_log_reversion is False): bring its data back, or remove it from the "
                "membership and add it under a new id, or restart this leader with allow_log_reversion=True "
                "if losing this replica cannot lose committed data",
                st.id, target, p.matching, send.prev_log_id,
            )
        return
    logger.warning("node %s: follower %s lost log entries it had acknowledged (it matched %s, now rejects %s); "
                   "allow_log_reversion: replicating to it from the start", st.id, target, p.matching,
                   send.prev_log_id)
    leader.tracker.reset(target, -1)  # ignored for a learner; the committed index stays (never withdrawn)
    # probe below the rejected entry, guided by the follower's hint as in any backtrack (§5.3)
    rejected = -1 if send.prev_log_id is None else send.prev_log_id.index
    probe = -1
    if resp.conflict_index >= 0:
        probe, _ = st.log.find_conflict_by_term(min(resp.conflict_index, rejected), resp.conflict_term)
    p.forget_matching(max(0, min(rejected, probe + 1)))
