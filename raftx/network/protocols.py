"""What the Raft runtime needs from a network: openraft's ``RaftNetworkFactory`` and
``RaftNetworkV2`` as `typing.Protocol` classes.

The runtime asks the factory for one `RaftNetwork` per target node and sends that
target's RPCs through it: AppendEntries and heartbeats (§5.3, §5.2), RequestVote
(§5.2), InstallSnapshot (§7), TimeoutNow-style leadership transfer (thesis §3.10), and
client calls a follower forwards to the leader.
Implementations raise `raftx.errors.RPCError` subclasses: `Unreachable` (the runtime
then backs off using `RaftNetwork.backoff`), `Timeout`, `NetworkError`, `RemoteError`.

Message types are ``Any`` here; they become the ``raftx.messages`` types once that
module exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from raftx.config import Config

__all__ = ["RPCOption", "RaftNetwork", "RaftNetworkFactory"]


@dataclass(frozen=True, slots=True)
class RPCOption:
    """Per-call options (openraft ``RPCOption``): ``hard_ttl`` is the deadline in
    seconds after which the call must give up with `raftx.errors.Timeout`;
    ``soft_ttl`` a hint for implementations that can stop early (e.g. streaming);
    ``last_chunk_ttl`` (`RaftNetwork.full_snapshot`) the deadline of a snapshot's last
    chunk, whose answer waits for the target to install the snapshot (``hard_ttl``
    when None)."""

    hard_ttl: float
    soft_ttl: float | None = None
    last_chunk_ttl: float | None = None


@runtime_checkable
class RaftNetwork(Protocol):
    """The connection to one target node (openraft ``RaftNetworkV2``)."""

    async def append_entries(self, rpc: Any, option: RPCOption | None = None) -> Any:
        """Send AppendEntries (entries or a heartbeat, §5.3) and return the response."""
        ...

    async def vote(self, rpc: Any, option: RPCOption | None = None) -> Any:
        """Send RequestVote (§5.2; a pre-vote when the request says so) and return the response."""
        ...

    async def full_snapshot(
        self, vote: Any, snapshot: Any, cancel: Any = None, option: RPCOption | None = None
    ) -> Any:
        """Send a whole snapshot (§7) under the leader's ``vote``; return the response.

        ``cancel`` is an awaitable that completes when the transfer should stop.
        """
        ...

    async def install_snapshot(self, rpc: Any, option: RPCOption | None = None) -> Any:
        """Send one chunk of a snapshot (§7, chunked InstallSnapshot; openraft v1 API)."""
        ...

    async def transfer_leader(self, req: Any, option: RPCOption | None = None) -> None:
        """Ask the target to start an election now (leadership transfer, thesis §3.10)."""
        ...

    async def forward(self, req: Any, option: RPCOption | None = None) -> Any:
        """Hand a follower's client writes or read check (`raftx.messages.ForwardRequest`)
        to the target, the leader; return its `raftx.messages.ForwardResponse`. Only
        ``Raft.client_write(..., forward=True)`` & co. use it: a network without it still
        replicates, and forwarding raises `raftx.errors.ClientWriteError`."""
        ...

    def backoff(self) -> Iterator[float]:
        """Delays (seconds) to wait between retries after `Unreachable`
        (openraft ``backoff()``; e.g. `raftx.network.backoff.Backoff`)."""
        ...


@runtime_checkable
class RaftNetworkFactory(Protocol):
    """Creates the `RaftNetwork` for each target (openraft ``RaftNetworkFactory``).

    `raftx.Raft.new` calls `bind_local` once, before the first `new_client`, with the
    node's id and `raftx.Config`: a factory fills in what it was not given (its own
    node id and cluster name for the hello, frame and window limits, the snapshot
    chunk size).
    """

    def bind_local(self, node_id: int, config: Config) -> None:
        """Learn the local node's id and configuration (a factory built before the node)."""
        ...

    async def new_client(self, target: int, node: Any) -> RaftNetwork:
        """A client for node ``target`` whose address is ``node`` (e.g. `BasicNode`)."""
        ...

