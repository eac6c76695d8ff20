"""Receiving a snapshot in chunks (§7 InstallSnapshot: ``offset``, ``data``, ``done``).

The leader streams its snapshot as a sequence of `raftx.messages.InstallSnapshotRequest`
chunks, one at a time (each is answered before the next is sent: backpressure).
`SnapshotReceiver` writes them into a file from
`raftx.storage.RaftStateMachine.begin_receiving_snapshot`, keeps a running CRC-32,
and on the last chunk verifies the checksum the sender computed over the whole
snapshot before handing the file to ``install`` (the node's
`raftx.Raft.install_full_snapshot`). A chunk at an unexpected offset, a chunk of
another transfer, or a checksum mismatch raises `raftx.errors.ProtocolError` and
discards the partial data: nothing is installed from a damaged transfer.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from raftx.errors import ProtocolError
from raftx.messages import InstallSnapshotRequest, SnapshotResponse
from raftx.runtime.tasks import close_quietly
from raftx.types import Snapshot, SnapshotMeta, Vote

__all__ = ["SnapshotReceiver"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Transfer:
    vote: Vote
    meta: SnapshotMeta
    file: Any
    received: int = 0
    crc: int = 0


class SnapshotReceiver:
    """Reassembles one chunked snapshot transfer at a time (a new one replaces an old one)."""

    def __init__(
        self,
        begin: Callable[[], Awaitable[Any]],
        install: Callable[[Vote, Snapshot], Awaitable[SnapshotResponse]],
        max_snapshot_bytes: int = 1 << 40,
    ) -> None:
        self._begin = begin
        self._install = install
        self._max = max_snapshot_bytes
        self._current: _Transfer | None = None

    async def receive(self, req: InstallSnapshotRequest, checksum: int | None = None) -> SnapshotResponse | None:
        """Take one chunk; on the last one (``done``) install and return the response.

        Returns None for an intermediate chunk. ``checksum`` (CRC-32 of the whole
        snapshot, sent with the last chunk) is verified when given.
        """
        if not isinstance(req.vote, Vote) or not isinstance(req.meta, SnapshotMeta):
            raise ProtocolError("malformed InstallSnapshot chunk")
        if not isinstance(req.offset, int) or req.offset < 0:
            raise ProtocolError(f"bad snapshot chunk offset {req.offset!r}")
        data = req.data
        cur = self._current
        if req.offset == 0:
            self.discard()
            cur = self._current = _Transfer(req.vote, req.meta, await self._begin())
        elif cur is None or cur.meta != req.meta or cur.vote != req.vote:
            raise ProtocolError(f"snapshot chunk at offset {req.offset} of a transfer that was not started")
        if req.offset != cur.received:
            self.discard()
            raise ProtocolError(f"snapshot chunk at offset {req.offset}, expected {cur.received}")
        if cur.received + len(data) > self._max:
            self.discard()
            raise ProtocolError(f"snapshot larger than {self._max} bytes")
        if data:
            cur.file.write(data)
            cur.crc = zlib.crc32(data, cur.crc)
            cur.received += len(data)
        if not req.done:
            return None
        self._current = None
        if checksum is not None and checksum != cur.crc:
            close_quietly(cur.file)
            raise ProtocolError(
                f"snapshot {req.meta.snapshot_id} checksum mismatch: sent {checksum:#010x}, "
                f"received {cur.crc:#010x}"
            )
        cur.file.seek(0)
        logger.info("received snapshot %s (%d bytes) up to %s", req.meta.snapshot_id, cur.received,
                    req.meta.last_log_id)
        return await self._install(cur.vote, Snapshot(cur.meta, cur.file))

    def discard(self) -> None:
        """Drop a partial transfer (a new one began, or the node shuts down)."""
        cur, self._current = self._current, None
        if cur is not None:
            close_quietly(cur.file)

