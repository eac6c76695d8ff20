"""How a served node stops: leadership hand-over on SIGTERM, exit once removed.

* `hand_over`: a leader asked to stop first transfers leadership (thesis §3.10) to
  the voter that matched the most of its log (the one that can take over without
  catching up), and waits, bounded, until another node leads; so the cluster does
  not wait out an election timeout for the next leader.
* `wait_removed`: returns once this node, having been a member, learns that it
  was removed (thesis §4.2.2: a removed server must not go on disrupting the
  cluster with elections); ``raftx serve`` then logs it and exits 0. It learns it
  from its own log (a membership entry without it) or, since the leader stops
  replicating to a node as soon as it appends the configuration without it (so
  the node usually never sees that entry), by asking: when no request reached it
  for ``probe_interval`` seconds (a member hears heartbeats far more often) it asks
  the other nodes of its last membership for their status, and a *leader* whose
  membership lacks it settles it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import Callable
from typing import Any, TYPE_CHECKING

from raftx.metrics import RaftMetrics
from raftx.types import ServerState

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = ["best_successor", "hand_over", "wait_removed"]

logger = logging.getLogger(__name__)


def best_successor(m: RaftMetrics) -> int | None:
    """The voter other than this leader with the highest matched index (ties: the
    lowest id); None when this node is not a leader or leads alone."""
    if m.state is not ServerState.LEADER or m.replication is None:
        return None
    voters = m.membership.voter_ids() - {m.id}
    best: tuple[int, int] | None = None
    for node_id in sorted(voters):
        matched = m.replication.get(node_id)
        key = (-1 if matched is None else matched.index, -node_id)
        if best is None or key > best:
            best = key
    return None if best is None else -best[1]


async def hand_over(raft: Raft, timeout: float) -> int | None:
    """If this node leads, transfer leadership to `best_successor` and wait at most
    ``timeout`` seconds for another node to lead. Returns the new leader's id, None
    if there was nothing to hand over or the transfer did not finish in time."""
    m: RaftMetrics = raft.metrics().borrow()
    to = best_successor(m)
    if to is None:
        return None
    logger.info("node %d is leader of term %d and stopping: handing leadership to node %d first", m.id,
                m.current_term, to)
    await raft.trigger().transfer_leader(to)
    try:
        async with asyncio.timeout(timeout):
            async for cur in raft.metrics():
                if cur.state is not ServerState.LEADER and cur.current_leader not in (None, m.id):
                    logger.info("node %d handed leadership to node %d (term %d)", m.id, cur.current_leader,
                                cur.current_term, extra={"new_leader": cur.current_leader, "term": cur.current_term})
                    return int(cur.current_leader)
    except TimeoutError:
        pass
    logger.warning("node %d: leadership transfer to node %d did not finish within %.1fs; stopping anyway", m.id,
                   to, timeout)
    return None


async def wait_removed(raft: Raft, cluster_name: str, probe_interval: float, requests: Callable[[], int],
                       ssl: _ssl.SSLContext | None = None) -> None:
    """Return once this node was a member (voter or learner) and then learns that it
    was removed (module docstring). ``requests``: how many requests this node's server
    received so far; ``ssl``: the node's client context for asking."""
    was_member = False
    others: list[str] = []
    rx = raft.metrics()
    loop = asyncio.get_running_loop()
    next_probe = loop.time() + probe_interval
    seen = requests()
    while True:
        m: RaftMetrics = rx.borrow()
        nodes = m.membership.nodes
        if m.id in nodes:
            was_member = True
            others = [n.addr for i, n in sorted(nodes.items()) if i != m.id]
        elif was_member and nodes:
            logger.warning("node %d was removed from the membership (now %s, entry %s); it stops and exits 0",
                           m.id, sorted(nodes), m.membership_config.log_id)
            return
        if loop.time() >= next_probe:
            quiet, seen = requests() == seen, requests()
            next_probe = loop.time() + probe_interval
        else:
            quiet = False
        if was_member and others and quiet and m.state is not ServerState.LEADER:
            leader = await _leader_without(m.id, others, cluster_name, probe_interval, ssl)
            if leader is not None:
                logger.warning("node %d was removed from the membership: leader %s lists %s; it stops and "
                               "exits 0", m.id, leader["id"], leader["nodes"])
                return
        try:
            async with asyncio.timeout(probe_interval):
                await rx.changed()
        except TimeoutError:
            pass


async def _leader_without(node_id: int, addrs: list[str], cluster_name: str, timeout: float,
                          ssl: _ssl.SSLContext | None) -> dict[str, Any] | None:
    """The status of a leader among ``addrs`` whose membership lacks ``node_id``."""
    from raftx.errors import RaftError
    from raftx.kv.client import KVClient

    async def one(addr: str) -> dict[str, Any] | None:
        kv = KVClient([addr], cluster_name=cluster_name, timeout=timeout, attempt_timeout=timeout, ssl=ssl,
                      client_id=node_id)
        try:
            st: dict[str, Any] = await kv.status()
            return st
        except RaftError:
            return None
        finally:
            await kv.close()

    for st in await asyncio.gather(*(one(a) for a in addrs)):
        if st is not None and st.get("state") == "Leader" and st.get("nodes") \
                and all(i != node_id for i, _ in st["nodes"]):
            return st
    return None
