"""`Wait`: await a condition on a node's metrics, with a timeout (openraft ``Wait``).

Returned by `raftx.Raft.wait`. Every method waits until the node's `RaftMetrics`
satisfy its condition and returns those metrics; after ``timeout`` seconds (None:
no limit) it raises `raftx.errors.WaitTimeout` naming ``msg``; if the node stops
first it raises `raftx.errors.Fatal`. Examples::

    await raft.wait(1.0).log(3, "log 3 received and applied")
    await raft.wait(5.0).current_leader(2, "node 2 leads")
    await raft.wait(None).state(ServerState.FOLLOWER, "follower")
    await raft.wait(2.0).metrics(lambda m: m.current_term >= 3, "term 3")
"""

from __future__ import annotations

import asyncio
from typing import Callable, Iterable

from raftx.errors import Fatal, WaitTimeout
from raftx.metrics import RaftMetrics
from raftx.runtime.watch import WatchReceiver
from raftx.types import LogId, ServerState, Vote

__all__ = ["Wait"]


def _index(log_id: LogId | None) -> int:
    return -1 if log_id is None else log_id.index


class Wait:
    """Conditions on one node's metrics, each bounded by the same ``timeout``."""

    __slots__ = ("_rx", "timeout")

    def __init__(self, rx: WatchReceiver[RaftMetrics], timeout: float | None) -> None:
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
            raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout!r}")
        self._rx = rx
        self.timeout = timeout

    async def metrics(self, predicate: Callable[[RaftMetrics], bool], msg: str = "") -> RaftMetrics:
        """Wait until ``predicate(metrics)`` is true; return those metrics.

        Example: ``await raft.wait(1).metrics(lambda m: m.committed is not None, "commit")``
        """
        rx = self._rx.clone()
        latest = rx.borrow()
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    latest = rx.borrow_and_update()
                    if predicate(latest):
                        return latest
                    if latest.running_state is not None:
                        raise Fatal(f"the node stopped while waiting for {msg}", latest.running_state)
                    await rx.changed()
        except TimeoutError:
            raise WaitTimeout(self.timeout, msg, latest) from None

    async def log(self, index: int | None, msg: str = "") -> RaftMetrics:
        """Wait until the last log index is ``index`` and it is applied.

        Example: ``await raft.wait(1).log(3, "log")``
        """
        want = -1 if index is None else index
        await self.metrics(lambda m: (-1 if m.last_log_index is None else m.last_log_index) == want,
                           f"{msg} .last_log_index == {index}")
        return await self.metrics(lambda m: _index(m.last_applied) == want, f"{msg} .last_applied == {index}")

    async def log_at_least(self, index: int | None, msg: str = "") -> RaftMetrics:
        """Wait until the last log index and the applied index are both >= ``index``."""
        want = -1 if index is None else index
        await self.metrics(lambda m: (-1 if m.last_log_index is None else m.last_log_index) >= want,
                           f"{msg} .last_log_index >= {index}")
        return await self.metrics(lambda m: _index(m.last_applied) >= want, f"{msg} .last_applied >= {index}")

    async def applied_index(self, index: int | None, msg: str = "") -> RaftMetrics:
        """Wait until the applied index is exactly ``index``."""
        want = -1 if index is None else index
        return await self.metrics(lambda m: _index(m.last_applied) == want, f"{msg} .last_applied == {index}")

    async def applied_index_at_least(self, index: int | None, msg: str = "") -> RaftMetrics:
        """Wait until the state machine applied ``index`` (e.g. after `get_read_log_id`).

        Example: ``await raft.wait(1).applied_index_at_least(read_log_id.index, "read")``
        """
        want = -1 if index is None else index
        return await self.metrics(lambda m: _index(m.last_applied) >= want, f"{msg} .last_applied >= {index}")

    async def committed_index_at_least(self, index: int, msg: str = "") -> RaftMetrics:
        """Wait until the node knows ``index`` is committed (§5.3)."""
        return await self.metrics(lambda m: _index(m.committed) >= index, f"{msg} .committed >= {index}")

    async def current_leader(self, leader_id: int | None, msg: str = "") -> RaftMetrics:
        """Wait until the node's known leader is ``leader_id``.

        Example: ``await raft.wait(5).current_leader(2, "wait for leader")``
        """
        return await self.metrics(lambda m: m.current_leader == leader_id, f"{msg} .current_leader == {leader_id}")

    async def leader(self, msg: str = "a leader") -> int:
        """Wait until the node knows a leader; return its id (narrowed to ``int``).

        Example: ``leader_id = await raft.wait(10).leader()``
        """
        m = await self.metrics(lambda m: m.current_leader is not None, msg)
        assert m.current_leader is not None  # the predicate above
        return m.current_leader

    async def state(self, want: ServerState, msg: str = "") -> RaftMetrics:
        """Wait until the node's role is ``want`` (e.g. `ServerState.LEADER`)."""
        if not isinstance(want, ServerState):
            raise TypeError(f"state must be a ServerState, not {type(want).__name__}")
        return await self.metrics(lambda m: m.state == want, f"{msg} .state == {want.name}")

    async def members(self, ids: Iterable[int], msg: str = "") -> RaftMetrics:
        """Wait until the effective membership is uniform with exactly the voters ``ids``."""
        want = set(ids)
        return await self.metrics(
            lambda m: not m.membership.is_joint() and m.voter_ids == want, f"{msg} .members == {sorted(want)}")

    voter_ids = members

    async def vote(self, vote: Vote, msg: str = "") -> RaftMetrics:
        """Wait until the node's vote is ``vote``."""
        return await self.metrics(lambda m: m.vote == vote, f"{msg} .vote == {vote}")

    async def snapshot(self, log_id: LogId, msg: str = "") -> RaftMetrics:
        """Wait until the latest snapshot covers exactly ``log_id``."""
        return await self.metrics(lambda m: m.snapshot == log_id, f"{msg} .snapshot == {log_id}")

    async def purged(self, log_id: LogId | None, msg: str = "") -> RaftMetrics:
        """Wait until the log is purged up to exactly ``log_id``."""
        return await self.metrics(lambda m: m.purged == log_id, f"{msg} .purged == {log_id}")
