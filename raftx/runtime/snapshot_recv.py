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

Before a byte of a chunk is stored (issue 11):

* ``admit(req, sender)`` must accept it: the request is well formed, its sender may
  send it and it carries an elected leader's vote at least this node's
  (`raftx.engine.following.admit_snapshot_chunk`); a stranger's chunk is refused,
  a stale leader's answered with this node's vote (it steps down, §5.1), neither
  is spooled;
* the transfer stays within ``max_snapshot_bytes`` (`raftx.Config.max_snapshot_bytes`)
  and leaves at least `DISK_RESERVE_BYTES` free on the file system of a spool file
  that is on disk;
* a transfer started on a connection (``owner``, anything with a ``closed`` future,
  e.g. `raftx.network.server.PeerConnection`) is discarded when that connection closes:
  an abandoned transfer holds no file.

``install`` (`raftx.Raft.install_full_snapshot`) then checks the complete data with
the state machine's optional ``verify_snapshot(meta, file)`` before the engine sees
it: garbage is refused with an error answer and the node keeps running, instead of
failing the install after the log was purged.
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from raftx.errors import ProtocolError
from raftx.messages import InstallSnapshotRequest, SnapshotResponse
from raftx.runtime.tasks import close_quietly
from raftx.types import Snapshot, SnapshotMeta, Vote

__all__ = ["DISK_RESERVE_BYTES", "SnapshotReceiver", "disk_free"]

logger = logging.getLogger(__name__)

#: A chunk is refused if writing it would leave less than this free on the spool's disk.
DISK_RESERVE_BYTES = 64 << 20


def disk_free(f: Any) -> int | None:
    """Bytes available on the file system that holds the file ``f`` (None: ``f`` is in
    memory; a `tempfile.SpooledTemporaryFile` counts once it has rolled over to disk)."""
    inner = getattr(f, "_file", f)  # SpooledTemporaryFile keeps the real file here
    try:
        fd = inner.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    st = os.fstatvfs(fd)
    return st.f_bavail * st.f_frsize


@dataclass(slots=True)
class _Transfer:
    vote: Vote
    meta: SnapshotMeta
    file: Any
    owner: Any
    received: int = 0
    crc: int = 0


class SnapshotReceiver:
    """Reassembles one chunked snapshot transfer at a time (a new one replaces an old one)."""

    def __init__(
        self,
        begin: Callable[[], Awaitable[Any]],
        install: Callable[[Vote, Snapshot, int | None], Awaitable[SnapshotResponse]],
        max_snapshot_bytes: int = 1 << 40,
        *,
        admit: Callable[[InstallSnapshotRequest, int | None], SnapshotResponse | None] | None = None,
        free_bytes: Callable[[Any], int | None] = disk_free,
    ) -> None:
        self._begin = begin
        self._install = install
        self._max = max_snapshot_bytes
        self._admit = admit
        self._free_bytes = free_bytes
        self._current: _Transfer | None = None

    @property
    def receiving(self) -> int | None:
        """Bytes of the transfer in progress, None when there is none."""
        return None if self._current is None else self._current.received

    async def receive(self, req: InstallSnapshotRequest, checksum: int | None = None, *,
                      sender: int | None = None, owner: Any = None) -> SnapshotResponse | None:
        """Take one chunk; on the last one (``done``) install and return the response.

        Returns None for an intermediate chunk, and this node's answer at once for a
        stale leader's chunk. ``checksum`` (CRC-32 of the whole
        snapshot, sent with the last chunk) is verified when given. ``sender`` is the
        node id the chunk's connection proved and ``owner`` that connection (module
        docstring); both None for an unchecked, connection-less caller.
        """
        if not isinstance(req, InstallSnapshotRequest):
            raise ProtocolError("malformed InstallSnapshot chunk")
        if self._admit is not None:
            stale = self._admit(req, sender)  # validates too; before anything is begun or stored
            if stale is not None:
                return stale  # a stale leader's chunk: answered with our vote, not stored
        else:
            req.validate()
        data = req.data
        cur = self._current
        if req.offset == 0:
            self.discard()
            cur = _Transfer(req.vote, req.meta, None, owner)
        elif cur is None or cur.meta != req.meta or cur.vote != req.vote or cur.owner is not owner:
            raise ProtocolError(f"snapshot chunk at offset {req.offset} of a transfer that was not started")
        if req.offset != cur.received:
            self.discard()
            raise ProtocolError(f"snapshot chunk at offset {req.offset}, expected {cur.received}")
        if cur.received + len(data) > self._max:
            self.discard()
            raise ProtocolError(f"snapshot larger than max_snapshot_bytes ({self._max})")
        if cur.file is None:
            cur.file = await self._begin()
            self._current = cur
            if owner is not None:
                owner.closed.add_done_callback(lambda _: self._owner_gone(owner))
        if data:
            free = self._free_bytes(cur.file)
            if free is not None and free - len(data) < DISK_RESERVE_BYTES:
                self.discard()
                raise ProtocolError(f"not enough free disk for the snapshot: {free} bytes free, chunk of "
                                    f"{len(data)}, {DISK_RESERVE_BYTES} kept in reserve")
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
        return await self._install(cur.vote, Snapshot(cur.meta, cur.file), sender)

    def _owner_gone(self, owner: Any) -> None:
        cur = self._current
        if cur is not None and cur.owner is owner:
            logger.info("snapshot transfer %s abandoned at %d bytes: its connection closed",
                        cur.meta.snapshot_id, cur.received)
            self.discard()

    def discard(self) -> None:
        """Drop a partial transfer (a new one began, its connection closed, or the node shuts down)."""
        cur, self._current = self._current, None
        if cur is not None and cur.file is not None:
            close_quietly(cur.file)
