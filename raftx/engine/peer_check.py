"""Who may send a Raft RPC to this node, and which terms and indexes a request may
carry (issue 11). Checked in the core task against the very state a request would
change, before anything changes; a refused request is answered with an error,
counted in `RefusalCounters` (`raftx.RaftMetrics.rpcs_unauthorized` /
``rpcs_invalid``) and logged at most once per second per kind.

The sender is the node id the peer's connection proved (`raftx.network.server`
passes the id of the hello, which TLS can bind to a certificate). ``sender=None``
is the application's own transport calling `raftx.Raft.append_entries` & co.
without an identity: only the content checks apply.

Authorization (by membership, then by identity):

* the sender must not be this node itself (it never connects to itself);
* the sender must be a member of the effective membership (a voter or a learner
  of either half of a joint config, thesis §4.3) or the current leader (the node of
  our committed vote: a leader that removed itself keeps replicating until it steps
  down);
* **bootstrapping rule**: a node with no membership yet (never initialized, or a
  learner being added that has not received its first membership entry) accepts any
  sender: it cannot know the cluster yet. The hello's cluster name and target still
  apply, and it gets a membership from the first leader's log or snapshot;
* the leader vote of an AppendEntries or a snapshot must name the sender, a vote
  request's candidate must be the sender (§5.2), and a TransferLeader must come
  from the current leader (thesis §3.10).

This is stricter than thesis §4.1, which processes RPCs "without consulting the
current configuration": a node that missed the membership entry that added the
current leader (it was down while the leader was added and the old members left)
refuses that leader until an operator removes and re-adds it. Catch a lagging
member up (or remove it) before replacing a majority of the cluster.

The content of a request (shapes, and terms / indexes within
`raftx.messages.MAX_TERM` / ``MAX_INDEX``) is checked by its ``validate`` method
first; both kinds of check come before the leader is accepted (following, §5.3).
"""

from __future__ import annotations

import logging

from raftx.engine.state import EngineState, RefusalCounters
from raftx.errors import PeerNotAuthorized, ProtocolError
from raftx.types import Vote

__all__ = ["RefusalCounters", "check_member", "check_names_sender", "refuse"]

logger = logging.getLogger(__name__)

#: At most one log line per kind of refusal per this many milliseconds (engine time).
_LOG_EVERY_MS = 1000


def refuse(st: EngineState, exc: ProtocolError, sender: int | None) -> ProtocolError:
    """Count ``exc`` (the answer to a refused request) and log it, rate-limited; return it."""
    c = st.refusals
    kind = "unauthorized" if isinstance(exc, PeerNotAuthorized) else "invalid"
    if kind == "unauthorized":
        c.unauthorized += 1
    else:
        c.invalid += 1
    last = c._logged_at.get(kind)
    if last is not None and st.now < last + _LOG_EVERY_MS:
        c._suppressed[kind] = c._suppressed.get(kind, 0) + 1
        return exc
    more = c._suppressed.pop(kind, 0)
    c._logged_at[kind] = st.now
    logger.warning("node %s refused a request from node %s: %s%s", st.id, sender, exc,
                   f" (and {more} more {kind} since the last report)" if more else "")
    return exc


def check_member(st: EngineState, sender: int | None, what: str) -> None:
    """Raise `PeerNotAuthorized` unless ``sender`` may send Raft RPCs to this node."""
    if sender is None:
        return
    if sender == st.id:
        raise PeerNotAuthorized(f"{what} from a connection claiming to be this node ({sender})")
    m = st.membership.effective.membership
    if not m.nodes and not m.configs:
        return  # bootstrapping rule (module docstring)
    if sender in m.nodes or sender == st.current_leader:
        return
    raise PeerNotAuthorized(f"{what} from node {sender}, which is not a member of this cluster")


def check_names_sender(vote: Vote, sender: int | None, what: str) -> None:
    """The vote in a request must name the connection's sender (no speaking for others)."""
    if sender is not None and vote.node_id != sender:
        raise PeerNotAuthorized(f"{what} from node {sender} names node {vote.node_id}")
