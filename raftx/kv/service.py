"""The server side of the key-value client protocol (`raftx.kv.protocol`).

`KVService` answers ``kv.write`` / ``kv.read`` / ``kv.status`` for one node through
its public `raftx.Raft` API:

* writes: the batch is validated (`raftx.kv.commands.decode`; a malformed one is
  refused whole, nothing is proposed), then proposed with `Raft.client_write_many`
  and answered once committed and applied (§5.3); each item's answer is the state
  machine's `KVResponse`;
* linearizable reads: `Raft.ensure_linearizable` (ReadIndex, thesis §6.4) once per
  batch, then local reads of the applied state; stale reads skip the first step;
* ranges (``kv.range``): as linearizable reads, one ordered slice of the keyspace
  with mod revisions (`raftx.kv.keyspace`);
* watches (``kv.watch``): a long poll on the node's applied history; any node
  answers, from the revision the client asks for, so a client that loses its node
  resumes on another after the last revision it saw (no gaps, no duplicates);
* lease expiry: `KVNodeServer` runs a `raftx.kv.leases.LeaseKeeper` (the leader
  proposes expiries through the log);
* a non-leader answers with a redirect carrying the leader's id and address
  (`raftx.errors.ForwardToLeader`), taken from the node's membership;
* membership admin (``kv.member_add`` / ``kv.member_remove``, what ``raftx member``
  calls): on the leader, `Raft.add_learner` (blocking until the learner caught up)
  then `Raft.change_membership` adding it as a voter, or `change_membership` without
  the node (thesis §4.3: joint consensus, one change at a time); followers redirect.
  Only for an admin (checked before anything else): a connection whose TLS
  certificate names ``raftx-admin`` (`raftx.network.tls`), or a request carrying
  the node's admin token (``admin_token``, ``raftx serve --admin-token-file``;
  compared in constant time). Anyone else gets `raftx.errors.NotAuthorized`, and a
  node with neither TLS nor a token serves no membership changes at all.

`KVNodeServer` serves a node's Raft RPCs (`raftx.network.raft_rpc.RaftRpcHandler`)
*and* the ``kv.*`` methods on one port: a `raftx.network.raft_rpc.RaftServer` with
the same hello, limits and optional mutual TLS as peer traffic.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from typing import Any, TYPE_CHECKING

from raftx.errors import (
    BadCommand, Compacted, Fatal, ForwardToLeader, NotAuthorized, ProtocolError, QuorumNotEnough, Unreachable,
)
from raftx.kv import protocol as P
from raftx.kv.commands import NOT_FOUND, OK, decode_fields
from raftx.kv.leases import LeaseKeeper
from raftx.kv.state_machine import KVStateMachine
from raftx.network import tls
from raftx.network.raft_rpc import RaftRpcHandler, RaftServer, parse_addr
from raftx.network.server import current_connection
from raftx.types import BasicNode, ChangeMembers, ClientWriteResponse, ReadPolicy

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = ["KVNodeServer", "KVService"]

logger = logging.getLogger(__name__)


def _addr(node: Any) -> str | None:
    if isinstance(node, BasicNode):
        return node.addr or None
    return node if isinstance(node, str) and node else None


class KVService:
    """Handles the ``kv.*`` methods for ``raft`` whose state machine is ``state_machine``.

    ``write_timeout`` / ``read_timeout`` (seconds) bound how long one request waits
    for commit or for the read index; past it the items are answered
    ``ITEM_UNAVAILABLE`` (a write's outcome is then unknown: the client retries it
    under the same serial, which is safe). ``admin_token``: the token that allows
    membership changes besides an admin certificate (module docstring).
    """

    def __init__(self, raft: Raft, state_machine: KVStateMachine, *, write_timeout: float = 10.0,
                 read_timeout: float = 5.0, admin_timeout: float = 60.0, admin_token: bytes | None = None) -> None:
        self.raft = raft
        self._admin_token = admin_token
        self.sm = state_machine
        self.write_timeout = write_timeout
        self.read_timeout = read_timeout
        #: Seconds a membership change may take (a new learner catching up included).
        self.admin_timeout = admin_timeout

    @staticmethod
    def handles(method: str) -> bool:
        return method.startswith("kv.")

    async def __call__(self, sender: int, method: str, payload: memoryview) -> bytes:
        if method == P.WRITE:
            return await self._write(payload)
        if method == P.READ:
            return await self._read(payload)
        if method == P.RANGE:
            return await self._range(payload)
        if method == P.WATCH:
            return await self._watch(payload)
        if method == P.STATUS:
            return P.pack(self.status())
        if method in (P.MEMBER_ADD, P.MEMBER_REMOVE):
            return await self._member(method, payload)
        raise ProtocolError(f"unknown key-value method {method!r:.70}")

    # -- leader lookup ------------------------------------------------------------------

    def _leader_addr(self, leader_id: int | None, node: Any = None) -> str | None:
        addr = _addr(node)
        if addr is None and leader_id is not None:
            addr = _addr(self.raft.metrics().borrow().membership.get_node(leader_id))
        return addr

    def _redirect(self, err: ForwardToLeader) -> bytes:
        return P.pack([P.REPLY_REDIRECT, err.leader_id, self._leader_addr(err.leader_id, err.leader_node)])

    # -- methods -----------------------------------------------------------------------

    async def _write(self, payload: memoryview) -> bytes:
        cmds = P.decode_write(payload)
        for cmd in cmds:
            decode_fields(cmd)  # refuse the whole batch (BadCommand) before proposing anything malformed
        try:
            async with asyncio.timeout(self.write_timeout):
                results = await self.raft.client_write_many(cmds)
        except TimeoutError:
            reason = f"not committed within {self.write_timeout}s; outcome unknown"
            return P.pack([P.REPLY_RESULTS, [[P.ITEM_UNAVAILABLE, reason]] * len(cmds)])
        first = results[0] if results else None
        if isinstance(first, ForwardToLeader) and all(isinstance(r, ForwardToLeader) for r in results):
            return self._redirect(first)
        out: list[Any] = []
        for r in results:
            if isinstance(r, ClientWriteResponse):
                data = r.data
                out.append(data if data is not None else [OK, None])
            elif isinstance(r, ForwardToLeader):
                out.append([P.ITEM_REDIRECT, [r.leader_id, self._leader_addr(r.leader_id, r.leader_node)]])
            elif isinstance(r, Fatal):
                raise r  # the node stopped: the client moves on to another node
            else:
                out.append([P.ITEM_UNAVAILABLE, f"{type(r).__name__}: {r}"[:500]])
        return P.pack([P.REPLY_RESULTS, out])

    async def _read_index(self, n: int, lease: bool = False) -> bytes | None:
        """Confirm leadership for a linearizable read (thesis §6.4; with ``lease``, by the
        leader lease while it holds); None when confirmed, else the reply to send (a
        redirect, or ``n`` items ``ITEM_UNAVAILABLE``)."""
        try:
            async with asyncio.timeout(self.read_timeout):
                await self.raft.ensure_linearizable(ReadPolicy.LEASE_READ if lease else ReadPolicy.READ_INDEX)
        except ForwardToLeader as err:
            return self._redirect(err)
        except (QuorumNotEnough, TimeoutError) as exc:
            reason = f"read index not confirmed: {type(exc).__name__} {exc}"[:500]
            return P.pack([P.REPLY_RESULTS, [[P.ITEM_UNAVAILABLE, reason]] * n])
        return None

    async def _read(self, payload: memoryview) -> bytes:
        linearizable, keys, lease = P.decode_read_lease(payload)
        if linearizable:
            refused = await self._read_index(len(keys), lease)
            if refused is not None:
                return refused
        get = self.sm.get
        out = []
        for k in keys:
            v = get(k)
            out.append([NOT_FOUND, None] if v is None else [OK, v])
        return P.pack([P.REPLY_RESULTS, out])

    async def _range(self, payload: memoryview) -> bytes:
        linearizable, start, end, limit, keys_only = P.decode_range(payload)
        if linearizable:
            refused = await self._read_index(1)
            if refused is not None:
                return refused
        rows = self.sm.range(start, end, limit or None, keys_only)
        return P.pack([P.REPLY_RESULTS, [[OK, [self.sm.revision, rows]]]])

    async def _watch(self, payload: memoryview) -> bytes:
        prefix, start, max_wait_ms, max_events = P.decode_watch(payload)
        sm = self.sm
        start = start or sm.revision + 1
        try:
            async with asyncio.timeout(max_wait_ms / 1000):
                while True:
                    events = sm.events(prefix, start, max_events)
                    if events:
                        break
                    start = max(start, sm.revision + 1)  # nothing under the prefix up to here
                    await sm.wait_changed(start - 1)
        except Compacted as exc:
            return P.pack([P.REPLY_RESULTS, [[P.ITEM_COMPACTED, exc.compact_revision]]])
        except TimeoutError:
            return P.pack([P.REPLY_RESULTS, [[OK, [start, []]]]])
        nxt = events[-1].mod_revision + 1 if len(events) >= max_events else max(start, sm.revision + 1)
        wire = [[P.EVENT_PUT if e.type == "put" else P.EVENT_DELETE, e.key, e.value, e.mod_revision]
                for e in events]
        return P.pack([P.REPLY_RESULTS, [[OK, [nxt, wire]]]])

    async def _member(self, method: str, payload: memoryview) -> bytes:
        """Add (learner, then voter) or remove one node; on the leader only (thesis §4.3)."""
        adding = method == P.MEMBER_ADD
        node_id, addr, token = P.decode_member(payload, with_addr=adding)
        self._check_admin(method, token)
        if addr is not None:
            try:
                parse_addr(addr)
            except Unreachable as exc:
                raise BadCommand(str(exc)) from None
        try:
            async with asyncio.timeout(self.admin_timeout):
                membership = self.raft.metrics().borrow().membership
                if adding:
                    if node_id not in membership.voter_ids() and addr is not None:
                        logger.info("adding node %d at %s: learner first", node_id, addr)
                        await self.raft.add_learner(node_id, BasicNode(addr), blocking=True)
                        logger.info("node %d caught up; making it a voter", node_id)
                        await self.raft.change_membership(ChangeMembers.AddVoterIds([node_id]), retain=False)
                elif node_id in membership.voter_ids():
                    logger.info("removing voter %d", node_id)
                    await self.raft.change_membership(ChangeMembers.RemoveVoters([node_id]), retain=False)
                elif node_id in membership.learner_ids():
                    logger.info("removing learner %d", node_id)
                    await self.raft.change_membership(ChangeMembers.RemoveNodes([node_id]), retain=False)
        except ForwardToLeader as err:
            return self._redirect(err)
        except TimeoutError:
            raise TimeoutError(f"membership change not done within {self.admin_timeout}s") from None
        m = self.raft.metrics().borrow().membership
        summary = {"members": sorted(m.voter_ids()), "learners": sorted(m.learner_ids()),
                   "nodes": [[i, n.addr] for i, n in sorted(m.nodes.items())]}
        return P.pack([P.REPLY_RESULTS, [[OK, summary]]])

    def _check_admin(self, method: str, token: bytes | None) -> None:
        """`NotAuthorized` unless the request comes with an admin credential."""
        peer = current_connection.get()
        if peer is not None and peer.admin:
            return
        if self._admin_token is not None and token is not None and tls.token_matches(self._admin_token, token):
            return
        sender = None if peer is None else f"{peer.peer.peername} (sender {peer.sender_id})"
        logger.warning("refused %s from %s: no admin credential", method, sender)
        if self._admin_token is None and not (peer is not None and peer.tls):
            raise NotAuthorized(f"{method} needs an admin credential, and this node has none configured "
                                "(start it with --admin-token-file, or with TLS and use a raftx-admin certificate)")
        raise NotAuthorized(f"{method} needs an admin credential: a TLS certificate named {tls.ADMIN_NAME} "
                            "or the node's admin token (--admin-token-file)")

    def status(self) -> dict[str, Any]:
        """This node's view: role, term, leader, log progress, members, key count."""
        m = self.raft.metrics().borrow()
        membership = m.membership
        return {
            "id": m.id,
            "state": m.state.value,
            "term": m.current_term,
            "leader": m.current_leader,
            "leader_addr": self._leader_addr(m.current_leader) if m.current_leader is not None else None,
            "last_log_index": m.last_log_index,
            "committed": None if m.committed is None else m.committed.index,
            "last_applied": None if m.last_applied is None else m.last_applied.index,
            "members": sorted(membership.voter_ids()),
            "learners": sorted(membership.learner_ids()),
            "nodes": [[i, n.addr] for i, n in sorted(membership.nodes.items())],
            "keys": len(self.sm),
            "sessions": len(self.sm.sessions),
            "bad_commands": self.sm.bad_commands,
            "running": m.running_state is None,
            # On the leader: [[node_id, matched index or None], ...] (§5.3 matchIndex); else None.
            "replication": None if m.replication is None else [
                [i, None if lid is None else lid.index] for i, lid in sorted(m.replication.items())],
            "revision": self.sm.revision,
            "compact_revision": self.sm.compact_revision,
            "leases": len(self.sm.leases),
        }


class _NodeHandler:
    """Routes ``kv.*`` to the `KVService`, everything else to the Raft RPC handler."""

    def __init__(self, kv: KVService, raft_handler: RaftRpcHandler) -> None:
        self.kv = kv
        self.raft_handler = raft_handler

    async def __call__(self, sender: int, method: str, payload: memoryview) -> bytes:
        if method.startswith("kv."):
            return await self.kv(sender, method, payload)
        return await self.raft_handler(sender, method, payload)

    def start(self, sender: int, method: str, payload: memoryview, reply: Any) -> bool:
        """The Raft handler's pipelined start (`RaftRpcHandler.start`); never for ``kv.*``."""
        return not method.startswith("kv.") and self.raft_handler.start(sender, method, payload, reply)


class KVNodeServer(RaftServer):
    """One TCP port for a node's Raft RPCs and its key-value clients (a `RaftServer`
    whose handler also serves ``kv.*``).

    Example::

        async with KVNodeServer(raft, sm, "127.0.0.1", 7001) as server:
            ...   # server.addr is "host:port" (the real port with port=0)

    ``server_options`` go to `RpcServer` (``max_connections``, ``hello_timeout``, the
    budgets of `raftx.network.server`, ...); ``max_frame_bytes`` defaults to the node's
    ``Config.max_frame_bytes``. ``admin_token``: see `KVService`.
    """

    def __init__(self, raft: Raft, state_machine: KVStateMachine, host: str = "127.0.0.1", port: int = 0, *,
                 ssl: _ssl.SSLContext | None = None, write_timeout: float = 10.0, read_timeout: float = 5.0,
                 admin_token: bytes | None = None, **server_options: Any) -> None:
        self.kv = KVService(raft, state_machine, write_timeout=write_timeout, read_timeout=read_timeout,
                            admin_token=admin_token)
        # Plain HOST:PORT clients (any-target hello) may connect and call kv.* only; Raft
        # RPCs need a hello that names this node (raftx.network.server).
        server_options.setdefault("client_methods", KVService.handles)
        server_options.setdefault("accept_any_target", True)
        super().__init__(raft, host, port, ssl=ssl, handler=_NodeHandler(self.kv, RaftRpcHandler(raft)),
                         **server_options)
        #: Proposes lease expiries while this node leads (`raftx.kv.leases`).
        self.lease_keeper = LeaseKeeper(raft, state_machine)
        self._keeper_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        if self._keeper_task is None:
            self._keeper_task = asyncio.get_running_loop().create_task(self.lease_keeper.run())

    async def close(self) -> None:
        task, self._keeper_task = self._keeper_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await super().close()
