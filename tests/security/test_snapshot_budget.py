"""`SnapshotReceiver`'s budgets (issue 11): a chunk is refused before it is written when
the transfer would exceed ``max_snapshot_bytes`` or leave less than
`DISK_RESERVE_BYTES` free on the spool's file system."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from raftx.errors import ProtocolError
from raftx.messages import InstallSnapshotRequest, SnapshotResponse
from raftx.runtime.snapshot_recv import DISK_RESERVE_BYTES, SnapshotReceiver, disk_free
from raftx.types import LogId, Membership, Snapshot, SnapshotMeta, StoredMembership, Vote

VOTE = Vote(2, 1, True)
META = SnapshotMeta(LogId(2, 10), StoredMembership(LogId(1, 0), Membership.new({1, 2, 3})), "s")


def receiver(tmp_path: Path, installed: list[Snapshot], **kw: Any) -> SnapshotReceiver:
    async def begin() -> Any:
        return open(tmp_path / "spool", "wb+")

    async def install(vote: Vote, snapshot: Snapshot, sender: int | None) -> SnapshotResponse:
        installed.append(snapshot)
        return SnapshotResponse(vote)

    return SnapshotReceiver(begin, install, **kw)


async def test_a_chunk_that_would_fill_the_disk_is_refused_unwritten(tmp_path: Path) -> None:
    installed: list[Snapshot] = []
    free = {"bytes": DISK_RESERVE_BYTES + 1000}
    r = receiver(tmp_path, installed, free_bytes=lambda f: free["bytes"])
    assert await r.receive(InstallSnapshotRequest(VOTE, META, 0, b"x" * 1000, False)) is None  # leaves the reserve
    free["bytes"] -= 1000  # what that write took
    with pytest.raises(ProtocolError, match="free disk"):
        await r.receive(InstallSnapshotRequest(VOTE, META, 1000, b"y", False))
    assert r.receiving is None and (tmp_path / "spool").stat().st_size == 1000  # the refused byte never written
    assert installed == []


async def test_a_transfer_over_max_snapshot_bytes_is_refused(tmp_path: Path) -> None:
    installed: list[Snapshot] = []
    r = receiver(tmp_path, installed, max_snapshot_bytes=1500)
    await r.receive(InstallSnapshotRequest(VOTE, META, 0, b"x" * 1000, False))
    with pytest.raises(ProtocolError, match="max_snapshot_bytes"):
        await r.receive(InstallSnapshotRequest(VOTE, META, 1000, b"y" * 501, True))
    assert r.receiving is None and installed == []


def test_disk_free_sees_real_files_only(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        free = disk_free(f)
        assert isinstance(free, int) and free > 0
    assert disk_free(io.BytesIO()) is None
