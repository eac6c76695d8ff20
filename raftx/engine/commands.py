"""Commands: what the engine asks the runtime to do, in order, and under which condition.

The runtime carries out the commands of one `raftx.engine.Engine.step` in list
order, with one rule: a command with a ``when`` `Condition` waits until the
condition holds; commands after it do not wait for it (openraft ``Condition``).
The storage commands (`SaveVote`, `AppendToLog`, `TruncateLog`, `PurgeLog`,
`InstallSnapshot`) carry an ``io_id`` that increases by one per storage command;
the runtime submits them to storage in that order and reports durability with
`raftx.engine.events.IOFlushed` (flushing io ``n`` means every io ``<= n`` is
durable). The order is thus: persist -> send what waited for persistence ->
apply -> respond.

Command kinds:

* storage (log and vote): `SaveVote`, `AppendToLog`, `TruncateLog`, `PurgeLog`,
  `InstallSnapshot`, `SaveCommitted`;
* network: `SendVote`, `Replicate` (an index *range*, not entries: the runtime
  reads them from its log store; an empty range is a heartbeat),
  `SendSnapshot`, `SendTransferLeader`;
* state machine: `Apply`, `BuildSnapshot`;
* API: `Respond` (resolve a responder with a value or an exception).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from raftx.messages import LogEntries, TransferLeaderRequest, VoteRequest
from raftx.types import LogId, SnapshotMeta, Vote

__all__ = [
    "Apply",
    "AppendToLog",
    "BuildSnapshot",
    "Command",
    "Condition",
    "InstallSnapshot",
    "PurgeLog",
    "Replicate",
    "Respond",
    "SaveCommitted",
    "SaveVote",
    "SendSnapshot",
    "SendTransferLeader",
    "SendVote",
    "TruncateLog",
]


@dataclass(frozen=True, slots=True)
class Condition:
    """When a command may run.

    * ``Condition.flushed(n)``: storage io ``n`` (and all before it) is durable;
    * ``Condition.applied(i)``: the state machine applied index ``i``.
    """

    io_id: int = -1
    applied_index: int = -1

    @classmethod
    def flushed(cls, io_id: int) -> Condition:
        return cls(io_id=io_id)

    @classmethod
    def applied(cls, index: int) -> Condition:
        return cls(applied_index=index)

    def holds(self, flushed_io_id: int, applied_index: int) -> bool:
        """True once the runtime's progress satisfies this condition."""
        return flushed_io_id >= self.io_id and applied_index >= self.applied_index


class Command:
    """Base class of every engine command."""

    __slots__ = ()


# -- storage -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaveVote(Command):
    """Persist ``vote`` (currentTerm + votedFor, §5.2 Figure 2 "persistent state")."""

    io_id: int
    vote: Vote


@dataclass(frozen=True, slots=True)
class AppendToLog(Command):
    """Append ``entries`` (one batch, consecutive, following the current last entry).

    On the leader a `raftx.messages.PayloadBatch` (group commit); on a follower the
    received `raftx.messages.LogEntries` (possibly the runtime's encoded batch).
    """

    io_id: int
    entries: LogEntries


@dataclass(frozen=True, slots=True)
class TruncateLog(Command):
    """Delete every entry after ``after`` (None: all of them), §5.3 conflict removal."""

    io_id: int
    after: LogId | None


@dataclass(frozen=True, slots=True)
class PurgeLog(Command):
    """Delete every entry up to and including ``upto``; a snapshot covers them (§7)."""

    io_id: int
    upto: LogId


@dataclass(frozen=True, slots=True)
class InstallSnapshot(Command):
    """Install the received snapshot ``meta`` into the state machine (§7)."""

    io_id: int
    meta: SnapshotMeta


@dataclass(frozen=True, slots=True)
class SaveCommitted(Command):
    """Persist the commit index (optional for a store; speeds up recovery)."""

    committed: LogId


# -- network -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendVote(Command):
    """Send ``req`` to ``target`` once ``when`` holds (the candidate's vote is durable)."""

    target: int
    req: VoteRequest
    when: Condition | None = None


@dataclass(frozen=True, slots=True)
class Replicate(Command):
    """Send ``target`` an AppendEntries with the entries ``first_index .. last_index``.

    ``prev_log_id`` precedes ``first_index``; the range is empty (a heartbeat, §5.2)
    when ``last_index < first_index``. The runtime reads the entries from its log
    store and answers with `raftx.engine.events.AppendResponded` (same ``send_id``)
    or `raftx.engine.events.ReplicationFailed`.
    """

    target: int
    send_id: int
    vote: Vote
    prev_log_id: LogId | None
    first_index: int
    last_index: int
    leader_commit: LogId | None

    @property
    def is_heartbeat(self) -> bool:
        return self.last_index < self.first_index

    def __len__(self) -> int:
        return max(0, self.last_index - self.first_index + 1)


@dataclass(frozen=True, slots=True)
class SendSnapshot(Command):
    """Send ``target`` the current snapshot (§7); answer: `SnapshotResponded`."""

    target: int
    send_id: int
    vote: Vote


@dataclass(frozen=True, slots=True)
class SendTransferLeader(Command):
    """Send ``req`` to ``target`` (thesis §3.10)."""

    target: int
    req: TransferLeaderRequest


# -- state machine ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Apply(Command):
    """Apply the committed entries ``first_index .. last.index`` in order (§5.3).

    ``responders`` lists the client writes' responders in the range as runs
    ``(first, rs)``: ``rs[k]`` (None: no one waits) answers entry ``first + k``
    (`raftx.engine.state.each_responder` flattens them). The runtime resolves each
    with a `raftx.types.ClientWriteResponse` carrying the state machine's output.
    Report progress with `raftx.engine.events.Applied`.
    """

    first_index: int
    last: LogId
    responders: Sequence[tuple[int, Sequence[Any]]] = ()


@dataclass(frozen=True, slots=True)
class BuildSnapshot(Command):
    """Build a snapshot of the state machine (§7); report `SnapshotBuilt`."""


# -- API ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Respond(Command):
    """Resolve ``responder`` with ``value`` (an exception instance means failure),
    once ``when`` holds."""

    responder: Any
    value: Any
    when: Condition | None = None
