"""Events: the facts the runtime feeds into `raftx.engine.Engine.step`.

Events are named as facts (something happened); the engine answers each with a
list of `raftx.engine.commands` to carry out. Four families:

* time: `Tick` is the only way time enters the engine (milliseconds, any epoch,
  never decreasing);
* messages from peers: `VoteRequested`, `AppendRequested`, `SnapshotReceived`,
  `TransferLeaderRequested`, and the answers to what this node sent:
  `VoteResponded`, `AppendResponded`, `SnapshotResponded`, `ReplicationFailed`;
* I/O completions: `IOFlushed` (storage writes up to an io id are durable),
  `Applied` (the state machine applied up to a log id), `SnapshotBuilt`;
* API calls: `Initialize`, `ClientWrite`, `ChangeMembership`, `AddLearner`,
  `GetReadLogId`, the ``Trigger*`` events and `SetRuntimeConfig`.

``responder`` fields are opaque tokens: the engine hands them back in a
`raftx.engine.commands.Respond` (or inside `Apply`) and never looks inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from raftx.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    SnapshotResponse,
    TransferLeaderRequest,
    VoteRequest,
    VoteResponse,
)
from raftx.types import BasicNode, ChangeMembers, LogId, Membership, SnapshotMeta, Vote

__all__ = [
    "AddLearner",
    "AppendRequested",
    "AppendResponded",
    "Applied",
    "ChangeMembership",
    "ClientWrite",
    "Event",
    "GetReadLogId",
    "IOFlushed",
    "Initialize",
    "ReplicationFailed",
    "SetRuntimeConfig",
    "SnapshotBuilt",
    "SnapshotReceived",
    "SnapshotResponded",
    "Tick",
    "TransferLeaderRequested",
    "TriggerElect",
    "TriggerHeartbeat",
    "TriggerPurgeLog",
    "TriggerSnapshot",
    "TriggerTransferLeader",
    "VoteRequested",
    "VoteResponded",
]


class Event:
    """Base class of every engine event."""

    __slots__ = ()


# -- time -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick(Event):
    """The clock reads ``now`` milliseconds; drives election timeouts and heartbeats (§5.2)."""

    now: int


# -- messages from peers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoteRequested(Event):
    """A candidate's (pre-)vote request arrived; answer through ``responder`` (§5.2)."""

    req: VoteRequest
    responder: Any = None
    #: The node id the request's connection proved (None: unchecked, the application's own call).
    sender: int | None = None


@dataclass(frozen=True, slots=True)
class VoteResponded(Event):
    """``target`` answered the vote request this node sent for ``req_vote`` (§5.2)."""

    target: int
    req_vote: Vote
    resp: VoteResponse


@dataclass(frozen=True, slots=True)
class AppendRequested(Event):
    """A leader's AppendEntries (or heartbeat) arrived; answer through ``responder`` (§5.3)."""

    req: AppendEntriesRequest
    responder: Any = None
    #: The node id the request's connection proved (None: unchecked, the application's own call).
    sender: int | None = None


@dataclass(frozen=True, slots=True)
class AppendResponded(Event):
    """``target`` answered the `raftx.engine.commands.Replicate` with ``send_id`` (§5.3)."""

    target: int
    send_id: int
    resp: AppendEntriesResponse


@dataclass(frozen=True, slots=True)
class ReplicationFailed(Event):
    """Sending ``send_id`` to ``target`` failed (unreachable, timeout, log read error).

    ``send_id=-1`` means every request in flight to ``target``.
    """

    target: int
    send_id: int = -1


@dataclass(frozen=True, slots=True)
class SnapshotReceived(Event):
    """A complete snapshot from the leader with ``vote`` arrived (§7); the runtime holds
    its data until the engine emits `raftx.engine.commands.InstallSnapshot`."""

    vote: Vote
    meta: SnapshotMeta
    responder: Any = None
    #: The node id the transfer's connection proved (None: unchecked, the application's own call).
    sender: int | None = None


@dataclass(frozen=True, slots=True)
class SnapshotResponded(Event):
    """``target`` answered the `raftx.engine.commands.SendSnapshot` with ``send_id`` (§7)."""

    target: int
    send_id: int
    resp: SnapshotResponse


@dataclass(frozen=True, slots=True)
class TransferLeaderRequested(Event):
    """The leader asked ``req.to_node_id`` to take over (thesis §3.10); ``responder``
    gets None, or the `ProtocolError` that refused the request."""

    req: TransferLeaderRequest
    responder: Any = None
    #: The node id the request's connection proved (None: unchecked, the application's own call).
    sender: int | None = None


# -- I/O completions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IOFlushed(Event):
    """Every storage write with an io id ``<= io_id`` is durable (fsync returned)."""

    io_id: int


@dataclass(frozen=True, slots=True)
class Applied(Event):
    """The state machine applied every entry up to ``log_id``."""

    log_id: LogId


@dataclass(frozen=True, slots=True)
class SnapshotBuilt(Event):
    """A snapshot covering ``meta.last_log_id`` was built and stored (§7)."""

    meta: SnapshotMeta


# -- API calls ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Initialize(Event):
    """Initialize a pristine node with ``membership`` (openraft ``initialize``)."""

    membership: Membership
    responder: Any = None


@dataclass(frozen=True, slots=True)
class ClientWrite(Event):
    """A batch of client payloads to replicate (group commit); one responder per payload.

    ``payloads[i]`` is ``bytes`` (or ``None`` for a blank write); ``responders[i]``
    is handed back in the `raftx.engine.commands.Apply` that applies it, or in a
    `raftx.engine.commands.Respond` carrying an error. ``expected_leader`` (a
    `raftx.types.LeaderId`): a conditional write, refused with `ForwardToLeader`
    unless this node leads with exactly that leader id (openraft ``with_leader``).
    """

    payloads: Sequence[bytes | None]
    responders: Sequence[Any]
    expected_leader: Any = None


@dataclass(frozen=True, slots=True)
class ChangeMembership(Event):
    """Change the voters/nodes (thesis §4.3); ``retain`` keeps removed voters as learners."""

    changes: ChangeMembers
    retain: bool = True
    responder: Any = None


@dataclass(frozen=True, slots=True)
class AddLearner(Event):
    """Add ``node_id`` as a learner (a non-voting member that receives the log)."""

    node_id: int
    node: BasicNode
    responder: Any = None


@dataclass(frozen=True, slots=True)
class GetReadLogId(Event):
    """A linearizable read: answer ``(read_log_id, applied)`` after one quorum round,
    or at once with ``lease`` while the read lease holds at ``now`` (the caller's
    current clock, ms, same clock as `Tick`; None: the last tick's time)."""

    responder: Any = None
    lease: bool = False
    now: int | None = None


@dataclass(frozen=True, slots=True)
class TriggerElect(Event):
    """Start an election now (a pre-vote round first if ``pre_vote``)."""

    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class TriggerHeartbeat(Event):
    """The leader sends a heartbeat to every follower now."""


@dataclass(frozen=True, slots=True)
class TriggerSnapshot(Event):
    """Build a snapshot now (unless one is being built)."""


@dataclass(frozen=True, slots=True)
class TriggerPurgeLog(Event):
    """Purge the log up to ``upto`` (at most up to the snapshot)."""

    upto: int


@dataclass(frozen=True, slots=True)
class TriggerTransferLeader(Event):
    """The leader hands leadership to ``to`` (thesis §3.10)."""

    to: int


@dataclass(frozen=True, slots=True)
class SetRuntimeConfig(Event):
    """Turn ticks, heartbeats, elections or pre-vote on or off (``None``: unchanged)."""

    tick: bool | None = None
    heartbeat: bool | None = None
    elect: bool | None = None
    pre_vote: bool | None = None
