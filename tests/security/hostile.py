"""A hostile TCP peer for the security tests (imported by name: tests/ has no packages).

`HostilePeer` completes a genuine hello under any node id (a *stranger* id that is
no member, or a *forged member* id) and sends well-formed Raft RPCs through the
real client code; `NodeState` is what a refused request must leave unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftx.network import RpcClient
from raftx.network.raft_rpc import RpcRaftNetwork
from raftx.raft import Raft
from raftx.types import LogId, StoredMembership, Vote
from tests.runtime.raftkit import Cluster

#: A node id that is no member of the test cluster.
STRANGER = 99


@dataclass(frozen=True)
class NodeState:
    """Everything a refused request must not change (vote, log, commit, membership)."""

    vote: Vote
    last_log_id: LogId | None
    committed: LogId | None
    membership: StoredMembership


async def node_state(raft: Raft) -> NodeState:
    """Read through the core task, so every request handled before is reflected."""
    return await raft.with_raft_state(  # type: ignore[no-any-return]
        lambda st: NodeState(st.vote, st.last_log_id, st.committed, st.effective_membership))


class HostilePeer:
    """A connection to node ``target`` of ``cluster`` whose hello says ``sender``."""

    def __init__(self, cluster: Cluster, target: int, sender: int) -> None:
        self.client = RpcClient("127.0.0.1", cluster.ports[target], cluster_name=cluster.config.cluster_name,
                                node_id=sender, target_id=target)
        self.net = RpcRaftNetwork(self.client)

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> HostilePeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.net, name)  # append_entries, vote, transfer_leader, install_snapshot


def spool_files(directory: Path) -> list[str]:
    """Files of this process open under ``directory`` (a snapshot being received holds
    one, even once unlinked: ``/proc/self/fd`` shows it as ``(deleted)``)."""
    found = []
    prefix = str(directory.resolve())
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(target)
    return found
