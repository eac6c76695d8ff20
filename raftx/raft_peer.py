"""How `raftx.Raft` serves its peers: the bodies of its RPC handlers.

`Raft.append_entries`, `Raft.vote`, `Raft.handle_transfer_leader`, `Raft.serve_forward`
and `Raft.install_full_snapshot` (which carry the docstrings) call these with the
node's `RaftCore`. Each checks the request's type (`ProtocolError`), then the core's
engine checks the sender and the content before anything changes
(`raftx.engine.peer_check`, `raftx.engine.following`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from raftx.engine import events as ev
from raftx.engine import following, peer_check
from raftx.errors import ForwardToLeader, ProtocolError, RaftError, StorageError
from raftx.messages import (
    FORWARD_FAILED,
    FORWARD_NOT_PROPOSED,
    FORWARD_OK,
    AppendEntriesRequest,
    AppendEntriesResponse,
    ForwardOutcome,
    ForwardRequest,
    ForwardResponse,
    InstallSnapshotRequest,
    SnapshotResponse,
    TransferLeaderRequest,
    VoteRequest,
    VoteResponse,
)
from raftx.runtime.core import RaftCore
from raftx.runtime.entries import as_engine_entries
from raftx.runtime.forward import outcome_of
from raftx.runtime.tasks import close_quietly
from raftx.types import LogId, Snapshot, Vote

__all__ = ["append_entries", "install_full_snapshot", "serve_forward", "start_append_entries", "transfer_leader",
           "vote"]


async def append_entries(core: RaftCore, rpc: AppendEntriesRequest, sender: int | None) -> AppendEntriesResponse:
    """`raftx.Raft.append_entries` (§5.3)."""
    return await start_append_entries(core, rpc, sender)


def start_append_entries(core: RaftCore, rpc: AppendEntriesRequest,
                         sender: int | None) -> asyncio.Future[AppendEntriesResponse]:
    """`raftx.Raft.start_append_entries`: hand ``rpc`` to the core now; the answer's future."""
    if not isinstance(rpc, AppendEntriesRequest):
        raise ProtocolError(f"append_entries takes an AppendEntriesRequest, not {type(rpc).__name__}")
    entries = as_engine_entries(rpc.entries)
    if entries is not rpc.entries:
        rpc = AppendEntriesRequest(rpc.vote, rpc.prev_log_id, entries, rpc.leader_commit)
    fut = core.new_future()
    core.post(ev.AppendRequested(rpc, fut, sender))
    return fut


async def vote(core: RaftCore, rpc: VoteRequest, sender: int | None) -> VoteResponse:
    """`raftx.Raft.vote` (§5.2)."""
    if not isinstance(rpc, VoteRequest):
        raise ProtocolError(f"vote takes a VoteRequest, not {type(rpc).__name__}")
    return await core.request(lambda fut: ev.VoteRequested(rpc, fut, sender))  # type: ignore[no-any-return]


async def transfer_leader(core: RaftCore, req: TransferLeaderRequest, sender: int | None) -> None:
    """`raftx.Raft.handle_transfer_leader` (thesis §3.10)."""
    if not isinstance(req, TransferLeaderRequest):
        raise ProtocolError(f"handle_transfer_leader takes a TransferLeaderRequest, not {type(req).__name__}")
    await core.request(lambda fut: ev.TransferLeaderRequested(req, fut, sender))


async def serve_forward(core: RaftCore, req: ForwardRequest, sender: int | None,
                    get_read_log_id: Callable[[], Awaitable[tuple[LogId | None, LogId | None]]]) -> ForwardResponse:
    """`raftx.Raft.serve_forward`: a follower's forwarded writes as one batch, or a read check."""
    if not isinstance(req, ForwardRequest):
        raise ProtocolError(f"serve_forward takes a ForwardRequest, not {type(req).__name__}")
    req.validate()
    core.check_running()
    try:
        peer_check.check_member(core.engine.state, sender, "forwarded client call")
    except ProtocolError as exc:
        raise peer_check.refuse(core.engine.state, exc, sender) from None
    if req.kind == "read":
        try:
            read_log_id, _ = await get_read_log_id()
        except ForwardToLeader as exc:  # reads are idempotent: the follower retries
            return ForwardResponse((ForwardOutcome(FORWARD_NOT_PROPOSED, leader_id=exc.leader_id),))
        except RaftError as exc:
            return ForwardResponse((ForwardOutcome(FORWARD_FAILED, message=f"{type(exc).__name__}: {exc}"),))
        return ForwardResponse((ForwardOutcome(FORWARD_OK, read_log_id),))
    results = await core.submit_write_many(list(req.payloads))
    return ForwardResponse(tuple(outcome_of(r) for r in results))


async def install_full_snapshot(core: RaftCore, vote: Vote, snapshot: Snapshot, sender: int | None) -> SnapshotResponse:
    """`raftx.Raft.install_full_snapshot` (§7): request checks, then the data, then the install."""
    if not isinstance(vote, Vote) or not isinstance(snapshot, Snapshot):
        raise ProtocolError("install_full_snapshot takes a Vote and a Snapshot")
    core.check_running()
    stale = following.admit_snapshot_chunk(core.engine.state, InstallSnapshotRequest(vote, snapshot.meta), sender)
    if stale is not None:
        close_quietly(snapshot.snapshot)
        return stale
    verify = getattr(core.sm, "verify_snapshot", None)
    if verify is not None:
        try:
            snapshot.snapshot.seek(0)
            await verify(snapshot.meta, snapshot.snapshot)
            snapshot.snapshot.seek(0)
        except StorageError as exc:
            close_quietly(snapshot.snapshot)
            raise ProtocolError(f"snapshot {snapshot.meta.snapshot_id} refused: {exc}") from exc
    fut = core.new_future()
    core.deliver_snapshot(ev.SnapshotReceived(vote, snapshot.meta, fut, sender), snapshot.snapshot)
    return await fut  # type: ignore[no-any-return]
