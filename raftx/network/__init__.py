"""raftx's network layer: the protocols the runtime sends Raft RPCs through, a
pipelined TCP transport (`RpcServer` / `RpcClient`, optional mutual TLS), and an
in-process router with fault controls for tests (`MemRouter`). DESIGN §4.
"""

from __future__ import annotations

from raftx.network.backoff import Backoff
from raftx.network.client import RpcClient
from raftx.network.memory import LinkFaults, MemClient, MemRouter, RouterStats
from raftx.network.protocols import RaftNetwork, RaftNetworkFactory, RPCOption
from raftx.network.server import PeerInfo, RpcServer, ServerStats
from raftx.network.window import InflightWindow

__all__ = [
    "Backoff",
    "InflightWindow",
    "LinkFaults",
    "MemClient",
    "MemRouter",
    "PeerInfo",
    "RPCOption",
    "RaftNetwork",
    "RaftNetworkFactory",
    "RouterStats",
    "RpcClient",
    "RpcServer",
    "ServerStats",
]
