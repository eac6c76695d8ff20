"""raftx's exception hierarchy. Every exception raised by raftx derives from `RaftError`.

Three kinds of failure, each handled one way (DESIGN §2 rule 7):

* protocol rejections between nodes are *messages*, never exceptions;
* caller mistakes are typed exceptions below (`ForwardToLeader`, `ConfigError`, ...);
* storage failures are fatal: the node stops and every call raises `Fatal`.
"""

from __future__ import annotations

from typing import Any


class RaftError(Exception):
    """Base class of every raftx error."""


# -- configuration and caller errors -------------------------------------------------


class ConfigError(RaftError, ValueError):
    """A `Config` field is out of range or inconsistent with another field."""


class ForwardToLeader(RaftError):
    """This node is not the leader; retry on ``leader_id`` (``None`` if unknown)."""

    def __init__(self, leader_id: int | None = None, leader_node: Any = None) -> None:
        self.leader_id = leader_id
        self.leader_node = leader_node
        super().__init__(f"forward to leader: leader_id={leader_id!r} leader_node={leader_node!r}")


class NotLeader(ForwardToLeader):
    """A `ForwardToLeader` for a write refused *before* it was proposed (no leader, a
    transfer running, or the leader lease lapsed): it is in no log, so retrying it on
    the leader cannot apply it twice (`raftx.Raft.client_write` ``forward=True``)."""


class QuorumNotEnough(RaftError):
    """The leader could not reach a quorum (e.g. for a linearizable read)."""

    def __init__(self, cluster: str = "", got: Any = None) -> None:
        self.cluster = cluster
        self.got = got
        super().__init__(f"quorum not enough: cluster={cluster!r} got={got!r}")


class ClientWriteError(RaftError):
    """A client write failed (not leader, membership change rejected, ...)."""


class WriteOutcomeUnknown(ClientWriteError):
    """A forwarded write may or may not have been applied: the leader was lost (or the
    connection broke) after the write may have reached its log. Retrying the same
    payload may apply it twice unless the state machine deduplicates it (client
    sessions, as `raftx.objects` and `raftx.kv` do)."""


class ChangeMembershipError(ClientWriteError):
    """A membership change was rejected."""


class InProgress(ChangeMembershipError):
    """Another membership change is not yet committed (only one in flight)."""


class EmptyMembership(ChangeMembershipError):
    """The requested membership has no voter."""


class LearnerNotFound(ChangeMembershipError):
    """A new voter was not added as a learner first."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        super().__init__(f"node {node_id} must be added as a learner before it becomes a voter")


class InitializeError(RaftError):
    """`Raft.initialize` was refused."""


class NotAllowed(InitializeError):
    """The node already has a log or a vote; initialize only a pristine node."""


class NotInMembers(InitializeError):
    """The initializing node is not one of the initial members."""


# -- RPC errors ---------------------------------------------------------------------


class RPCError(RaftError):
    """An RPC to another node failed."""


class Timeout(RPCError):
    """The RPC did not complete in time."""


class Unreachable(RPCError):
    """The target node cannot be reached (connection refused, partitioned, ...)."""


class NetworkError(RPCError):
    """The transport failed in the middle of an RPC."""


class RemoteError(RPCError):
    """The remote node answered with an error."""


class HandshakeRejected(Unreachable):
    """The peer closed the connection during the hello handshake: wrong cluster name,
    wrong target node id, sender not allowed, unsupported version, or (TLS 1.3) our
    client certificate was refused. The reason is in the message when the peer sent one."""


class BindError(NetworkError):
    """A server could not listen on its address (in use, not permitted, unknown host)."""


class ProtocolError(RaftError):
    """Malformed bytes from the network or disk: bad frame, bad length, wrong cluster."""


class PeerNotAuthorized(ProtocolError):
    """A Raft RPC from a peer that may not send it: the sender is no member of this
    node's cluster, or the request names another node than the connection's sender
    (`raftx.engine.peer_check`). Nothing changed on the node."""


class NotAuthorized(RaftError):
    """The connection's credential does not allow the request: membership
    administration without an admin certificate or token, or (TLS) a hello whose
    sender is not the node its certificate names. Nothing was changed."""


class CorruptRecord(ProtocolError):
    """A log record or batch failed validation (length, CRC32C, index continuity).

    ``offset`` is the byte offset of the offending record in the buffer.
    """

    def __init__(self, message: str, offset: int) -> None:
        self.offset = offset
        super().__init__(f"{message} (at byte offset {offset})")


class CodecError(RaftError, ValueError):
    """Arguments the codec cannot encode: a term/index outside u64, an unknown entry
    kind, an oversized payload, a batch whose indexes are not consecutive or whose
    terms decrease (§5.3), an out-of-range frame type or scan offset."""


class LogIndexError(RaftError, ValueError):
    """An invalid change to the in-memory log index (`raftx._core.logindex`): an
    index that does not follow the last one, a term lower than the last term
    (§5.3), a value outside its field's range, or batch columns of unequal length.
    The index is left unchanged."""


class HistoryError(RaftError, ValueError):
    """A client history handed to the linearizability checker
    (`raftx.testing.linearizability`) is malformed: a return before its call, an
    operation completed twice, an unparseable history line, a partition that loses
    or invents operations."""


# -- storage and fatal errors -------------------------------------------------------


class StorageError(RaftError):
    """A log store or state machine failed to read or write. Always fatal to the node."""


class StorageCorrupted(StorageError):
    """Durable data failed validation (bad checksum, sequence gap, foreign header).

    ``path`` is the file and ``offset`` the byte offset of the bad record or header
    (``None`` when not known); the store refuses to open rather than drop data (R9).
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        where = "" if path is None else f" in {path}" + ("" if offset is None else f" at offset {offset}")
        super().__init__(f"{message}{where}")


class LeaderChanged(RaftError):
    """A leader-bounded log read found that the stored vote no longer names that leader."""


class WaitTimeout(RaftError, TimeoutError):
    """`raftx.Raft.wait` gave up: the metrics did not reach the condition in time.

    ``timeout`` is the limit in seconds and ``msg`` the caller's description of the
    condition (openraft ``WaitError::Timeout``).
    """

    def __init__(self, timeout: float | None, msg: str, latest: Any = None) -> None:
        self.timeout = timeout
        self.msg = msg
        self.latest = latest
        super().__init__(f"timeout after {timeout}s waiting for {msg}; latest metrics: {latest!r}")


class Fatal(RaftError):
    """The node has stopped: storage failure, a panic in the core, or shutdown.

    ``cause`` keeps the underlying error (e.g. the `StorageError`).
    """

    def __init__(self, reason: str = "stopped", cause: BaseException | None = None) -> None:
        self.reason = reason
        self.cause = cause
        super().__init__(reason if cause is None else f"{reason}: {cause}")


# -- key-value service (raftx.kv) ---------------------------------------------------


class KVError(RaftError):
    """A request to the replicated key-value service (`raftx.kv`) failed."""


class BadCommand(KVError, ValueError):
    """A key-value command could not be encoded or decoded: a key or value that is
    not bytes/str, too long, an unknown operation, or malformed command bytes."""


class LeaseNotFound(KVError):
    """The key-value lease does not exist (never granted, revoked or expired)."""

    def __init__(self, lease_id: int) -> None:
        self.lease_id = lease_id
        super().__init__(f"lease {lease_id} not found (revoked, expired or never granted)")


class ElectionNotLeader(KVError):
    """`raftx.kv.concurrency.Election.proclaim` by a contender that does not lead
    (never campaigned, still waiting, resigned, or its lease ended): etcd's
    ``ErrElectionNotLeader``."""


class Compacted(KVError):
    """The key-value history asked for (a watch's start revision) was compacted;
    ``compact_revision`` is the newest revision that is gone (watch from after it)."""

    def __init__(self, message: str, compact_revision: int) -> None:
        self.compact_revision = compact_revision
        super().__init__(message)
