"""The small objects `raftx.Raft` hands out, and the argument checks of its API.

`RuntimeConfigHandle` (``raft.runtime_config()``), `Trigger` (``raft.trigger()``),
`WriteRequest` (``raft.write(data)``); `as_payload` / `as_membership` turn the
arguments users pass into what the core takes (`TypeError` before anything changes);
`deprecated` warns for the seed's old names. Import them from `raftx.raft`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Generator, Mapping

from raftx.engine import events as ev
from raftx.runtime.state import RaftState
from raftx.types import BasicNode, ClientWriteResponse, LeaderId, Membership, Vote

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = ["RuntimeConfigHandle", "Trigger", "WriteRequest", "as_membership", "as_payload", "deprecated"]


def deprecated(old: str, new: str) -> None:
    warnings.warn(f"Raft.{old} is deprecated; use Raft.{new}", DeprecationWarning, stacklevel=3)


def as_payload(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"client data must be bytes-like, not {type(data).__name__}")


def as_membership(members: Any) -> Membership:
    if isinstance(members, Membership):
        return members
    if isinstance(members, Mapping):
        nodes = {}
        for k, v in members.items():
            if not isinstance(k, int) or isinstance(k, bool) or k < 0:
                raise TypeError(f"node ids must be ints >= 0, not {k!r}")
            if isinstance(v, BasicNode):
                nodes[k] = v
            elif isinstance(v, str):
                nodes[k] = BasicNode(v)
            else:  # e.g. {1: 1}: an id where an address belongs
                raise TypeError(f"the address of node {k} must be a BasicNode or 'host:port', not {v!r}")
        return Membership.new(nodes)
    try:
        ids = list(members)
    except TypeError:
        raise TypeError(f"members must be ids or a mapping id -> BasicNode, not {type(members).__name__}") from None
    for k in ids:
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise TypeError(f"node ids must be ints >= 0, not {k!r}")
    return Membership.new(ids)


class RuntimeConfigHandle:
    """Switch a node's tick, heartbeat, election and pre-vote on or off at run time.

    Example: ``raft.runtime_config().heartbeat(False)``
    """

    __slots__ = ("_raft",)

    def __init__(self, raft: Raft) -> None:
        self._raft = raft

    def _set(self, **kw: bool) -> None:
        for k, v in kw.items():
            if not isinstance(v, bool):
                raise TypeError(f"{k} takes a bool, not {type(v).__name__}")
        self._raft._core.check_running()
        self._raft._core.post(ev.SetRuntimeConfig(**kw))

    def tick(self, enabled: bool) -> None:
        """Enable or disable the internal ticker (elections and heartbeats stop with it)."""
        self._set(tick=enabled)

    def heartbeat(self, enabled: bool) -> None:
        """Enable or disable the leader's periodic heartbeats (§5.2)."""
        self._set(heartbeat=enabled)

    def elect(self, enabled: bool) -> None:
        """Enable or disable starting an election on timeout (§5.2)."""
        self._set(elect=enabled)

    def pre_vote(self, enabled: bool) -> None:
        """Enable or disable the pre-vote round before elections (thesis §9.6)."""
        self._set(pre_vote=enabled)


class Trigger:
    """Make a node act now. Each coroutine returns once the core task has taken it.

    Example: ``await raft.trigger().elect()``
    """

    __slots__ = ("_raft",)

    def __init__(self, raft: Raft) -> None:
        self._raft = raft

    async def _post(self, event: Any) -> None:
        core = self._raft._core

        def noop(_: RaftState) -> None:
            return None

        core.check_running()
        core.post(event)
        await core.run_in_core(noop)  # the event ahead of it has been handled

    async def elect(self, pre_vote: bool = False) -> None:
        """Start an election now (§5.2); a pre-vote round first if ``pre_vote``."""
        await self._post(ev.TriggerElect(bool(pre_vote)))

    async def heartbeat(self) -> None:
        """A leader sends a heartbeat to every follower now."""
        await self._post(ev.TriggerHeartbeat())

    async def snapshot(self) -> None:
        """Build a snapshot now (§7), unless one is being built."""
        await self._post(ev.TriggerSnapshot())

    async def purge_log(self, upto: int) -> None:
        """Purge the log up to and including ``upto`` (never past the snapshot, §7)."""
        if not isinstance(upto, int) or isinstance(upto, bool) or upto < 0:
            raise TypeError(f"upto must be a log index >= 0, not {upto!r}")
        await self._post(ev.TriggerPurgeLog(upto))

    async def transfer_leader(self, to: int) -> None:
        """The leader hands leadership to voter ``to`` (thesis §3.10)."""
        if not isinstance(to, int) or isinstance(to, bool) or to < 0:
            raise TypeError(f"to must be a node id, not {to!r}")
        await self._post(ev.TriggerTransferLeader(to))


class WriteRequest:
    """What `Raft.write` returns: await it (``await raft.write(b"x").with_leader(lid)``)."""

    __slots__ = ("_raft", "_data", "_leader")

    def __init__(self, raft: Raft, data: bytes, leader: LeaderId | None = None) -> None:
        self._raft = raft
        self._data = data
        self._leader = leader

    def with_leader(self, leader_id: LeaderId | Vote) -> WriteRequest:
        """Only append while this node leads with ``leader_id`` (a `LeaderId`, or a committed
        `Vote` whose leader id is taken); `TypeError` for anything else."""
        if isinstance(leader_id, Vote):
            if not leader_id.committed:
                raise TypeError("with_leader takes a LeaderId or a committed Vote, not an uncommitted vote")
            leader_id = leader_id.leader_id
        if not isinstance(leader_id, LeaderId) or leader_id.node_id is None:
            raise TypeError(f"with_leader takes a LeaderId(term, node_id), not {leader_id!r}")
        return WriteRequest(self._raft, self._data, leader_id)

    async def _run(self) -> ClientWriteResponse:
        if self._leader is None:
            return await self._raft.client_write(self._data)
        leader, data = self._leader, self._data
        resp: ClientWriteResponse = await self._raft._core.request(
            lambda fut: ev.ClientWrite([data], [fut], leader))
        return resp

    def __await__(self) -> Generator[Any, None, ClientWriteResponse]:
        return self._run().__await__()
