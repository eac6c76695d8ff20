"""What the TCP client and server connections share: socket options and write flow control."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from raftx.stats import Traffic

__all__ = ["configure_socket", "FlowControl", "KEEPALIVE_IDLE", "KEEPALIVE_INTERVAL", "KEEPALIVE_COUNT"]

logger = logging.getLogger(__name__)

#: TCP keepalive: first probe after this many idle seconds, then every
#: ``KEEPALIVE_INTERVAL`` s, giving up after ``KEEPALIVE_COUNT`` unanswered probes.
KEEPALIVE_IDLE = 30
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 3


def configure_socket(transport: asyncio.BaseTransport, keepalive: bool = True) -> None:
    """Turn on TCP_NODELAY (small RPCs must not wait for Nagle) and TCP keepalive."""
    sock: Any = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                                ("TCP_KEEPCNT", KEEPALIVE_COUNT)):
                opt = getattr(socket, name, None)
                if opt is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, opt, value)
    except OSError as exc:  # the peer may already be gone; the read path will notice
        logger.debug("could not set socket options: %s", exc)


class FlowControl:
    """`asyncio.Protocol` mixin for the sending side of a connection.

    * `send` coalesces writes: buffers queued during one event-loop iteration go to the
      transport in one ``writelines`` (one syscall) at the end of it, so pipelined
      requests or responses share packets (DESIGN §2 rule 4: batch everything).
    * ``await drain()`` waits while the transport's write buffer is above its
      high-water mark (``pause_writing``/``resume_writing``).
    """

    transport: asyncio.Transport | None
    #: Where this side's bytes and frames are counted (`raftx.stats`; set by subclasses).
    traffic: Traffic = Traffic()

    def __init__(self) -> None:
        self.transport = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost = False
        self._outbox: list[Any] = []

    def send(self, buffers: list[Any]) -> None:
        """Queue ``buffers`` for this iteration's write (dropped once the connection is closing)."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.extend(buffers)
        self.traffic.frames_sent += 1  # every caller sends one framed message

    def _flush(self) -> None:
        out, self._outbox = self._outbox, []
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.writelines(out)
            # Once per flush, not per message; a memoryview's len() counts items, not bytes.
            self.traffic.bytes_sent += sum([b.nbytes if type(b) is memoryview else len(b) for b in out])

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def drain(self) -> None:
        """Return once the write buffer is below its low-water mark or the connection is gone."""
        if not self._write_paused or self._lost:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(fut)
        await fut

    def _flow_lost(self) -> None:
        self._lost = True
        self._outbox = []
        self._wake_drain()
