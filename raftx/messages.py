"""The RPC messages exchanged between raftx nodes (openraft names, paper semantics).

Every message is a frozen dataclass with slots. The network layer encodes and
decodes them; the engine (`raftx.engine`) consumes requests and produces the
values of responses. Requests from the network are untrusted: `validate` methods
raise `raftx.errors.ProtocolError` for malformed content (wrong types, terms above
`MAX_TERM`, indexes above `MAX_INDEX`, undecodable or empty memberships), and the
engine answers such a request with that exception instead of changing any state.

Entries inside an `AppendEntriesRequest` are any object with the small read-only
`LogEntries` surface. raftx has two: `raftx.records.EncodedBatch` (the records as
received or encoded, no Python object per entry) and `raftx.types.EntryRange` (not
yet encoded: a leader's group commit, entries built by hand). A plain sequence of
`raftx.types.Entry` is accepted too; `as_log_entries` makes it an `EntryRange`.
(`EntryList` and `PayloadBatch` are deprecated names of `EntryRange` constructors.)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from raftx.errors import ProtocolError
from raftx.types import Entry, EntryRange, LogId, Membership, SnapshotMeta, StoredMembership, Vote

__all__ = [
    "MAX_INDEX",
    "MAX_TERM",
    "AppendEntriesRequest",
    "AppendEntriesResponse",
    "EntryList",
    "ForwardOutcome",
    "ForwardRequest",
    "ForwardResponse",
    "InstallSnapshotRequest",
    "LogEntries",
    "PayloadBatch",
    "SnapshotResponse",
    "InstallSnapshotResponse",
    "TransferLeaderRequest",
    "VoteRequest",
    "VoteResponse",
    "as_log_entries",
    "check_membership",
]

#: The largest term a request may carry. Headroom: ``term + 1`` (the next election)
#: must stay within `_core.vote`'s ``0..2**63-1``; one heartbeat with term
#: ``2**63 - 1`` used to stop a whole cluster for good at its next election.
MAX_TERM = 2**62
#: The largest log index a request may carry (headroom for ``index + len(entries)``).
MAX_INDEX = 2**62
#: The largest node id (`_core.vote`'s range).
MAX_NODE_ID = 2**63 - 1


# -- entry batches ------------------------------------------------------------------


@runtime_checkable
class LogEntries(Protocol):
    """What the engine needs to know about a batch of consecutive log entries.

    Positions are ``0 .. len(batch) - 1``; the entry at position ``p`` has index
    ``log_id_at(0).index + p``. Implementations must be immutable.
    """

    def __len__(self) -> int:
        """The number of entries."""

    def log_id_at(self, pos: int) -> LogId:
        """The log id of the entry at position ``pos``."""

    def term_runs(self) -> Sequence[tuple[int, int]]:
        """``(first_index, term)`` for each run of equal terms, in log order."""

    def memberships(self) -> Sequence[tuple[LogId, Membership]]:
        """The membership entries of the batch, in log order (thesis §4.3)."""

    def sliced(self, start: int) -> LogEntries:
        """The same batch without its first ``start`` entries."""


class EntryList(EntryRange):
    """Deprecated name: an `raftx.types.EntryRange` built from a sequence of `Entry`
    (``EntryRange.of(entries)``), the one not-yet-encoded form of a batch."""

    __slots__ = ()

    def __init__(self, entries: Sequence[Entry]) -> None:
        items = tuple(entries)
        first = items[0].log_id.index if items else 0
        if any(e.log_id.index != first + i for i, e in enumerate(items)):
            raise ProtocolError("entries are not consecutive (§5.3)")
        super().__init__(first, [e.log_id.term for e in items], [e.payload for e in items])


class PayloadBatch(EntryRange):
    """Deprecated name: ``EntryRange.of_term(term, first_index, payloads)``, a leader's
    group commit (payloads at consecutive indexes, one term) before it is encoded."""

    __slots__ = ()

    def __init__(self, term: int, first_index: int, payloads: Sequence[bytes | Membership | None]) -> None:
        payloads = tuple(payloads)
        super().__init__(first_index, array("Q", (term,)) * len(payloads), payloads)

    @property
    def term(self) -> int:
        """The batch's one term."""
        return int(self.terms[0]) if self.terms else 0


def as_log_entries(entries: Any) -> LogEntries:
    """``entries`` as `LogEntries`: itself if it has the surface, else an `EntryRange`.

    Raises `ProtocolError` if ``entries`` is neither (e.g. decoded garbage) or its
    entries are not at consecutive indexes (§5.3).
    """
    if hasattr(entries, "log_id_at") and hasattr(entries, "term_runs"):
        return entries  # type: ignore[no-any-return]
    try:
        items = tuple(entries)
    except TypeError as exc:
        raise ProtocolError(f"entries must be a sequence of Entry, not {type(entries).__name__}") from exc
    for e in items:
        if not isinstance(e, Entry) or not isinstance(e.log_id, LogId):
            raise ProtocolError(f"not a log entry: {e!r}")
    return EntryList(items)


def _check_vote(vote: Any, what: str) -> None:
    if not isinstance(vote, Vote):
        raise ProtocolError(f"{what}: vote must be a Vote, not {type(vote).__name__}")
    if vote.term > MAX_TERM:
        raise ProtocolError(f"{what}: term {vote.term} is above the largest accepted term {MAX_TERM}")


def _check_log_id(log_id: Any, what: str) -> None:
    if log_id is None:
        return
    if not isinstance(log_id, LogId):
        raise ProtocolError(f"{what} must be a LogId or None, not {type(log_id).__name__}")
    if log_id.term > MAX_TERM or log_id.index > MAX_INDEX:
        raise ProtocolError(f"{what} {log_id} is out of range (term <= {MAX_TERM}, index <= {MAX_INDEX})")


def check_membership(m: Any, what: str) -> None:
    """Raise `ProtocolError` unless ``m`` is a usable configuration (thesis §4.3): one
    voter set, or two while joint, none empty, every id a valid node id."""
    if not isinstance(m, Membership):
        raise ProtocolError(f"{what}: not a Membership: {type(m).__name__}")
    if not 1 <= len(m.configs) <= 2 or not all(m.configs):
        raise ProtocolError(f"{what}: a membership needs one or two non-empty voter sets, not {m.configs!r:.100}")
    if not all(isinstance(i, int) and 0 <= i <= MAX_NODE_ID for i in m.nodes):
        raise ProtocolError(f"{what}: node id out of range in {sorted(m.nodes)!r:.100}")


# -- election (§5.2, §5.4.1; pre-vote: thesis §9.6) --------------------------------------


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """RequestVote RPC (§5.2): a candidate asks for a vote for ``vote``.

    ``last_log_id`` is the candidate's last log id; a voter refuses a candidate
    whose log is less up-to-date than its own (§5.4.1). With ``pre_vote=True``
    (thesis §9.6) it only asks whether the vote *would* be granted: the voter
    changes no state.
    """

    vote: Vote
    last_log_id: LogId | None = None
    pre_vote: bool = False

    def validate(self) -> None:
        """Raise `ProtocolError` if a field has the wrong type."""
        _check_vote(self.vote, "VoteRequest")
        _check_log_id(self.last_log_id, "VoteRequest.last_log_id")
        if self.vote.node_id is None:
            raise ProtocolError("VoteRequest: the vote names no candidate")
        if self.vote.committed:
            raise ProtocolError("VoteRequest: a candidate's vote is not committed yet")


@dataclass(frozen=True, slots=True)
class VoteResponse:
    """The answer to a `VoteRequest` (§5.2).

    ``vote`` is the voter's vote after handling the request (a higher one makes the
    candidate step down, §5.1); ``vote_granted`` says whether it voted for the
    candidate; ``last_log_id`` is the voter's last log id.
    """

    vote: Vote
    vote_granted: bool
    last_log_id: LogId | None = None
    pre_vote: bool = False


# -- log replication (§5.3) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppendEntriesRequest:
    """AppendEntries RPC (§5.3), also the heartbeat (§5.2) when ``entries`` is empty.

    ``vote`` is the leader's committed vote (its term, §5.1); ``prev_log_id`` the id
    of the entry just before ``entries`` (None: they start the log); ``entries`` the
    entries to store (`LogEntries` or a sequence of `Entry`); ``leader_commit`` the
    leader's commit index (§5.3).
    """

    vote: Vote
    prev_log_id: LogId | None = None
    entries: Any = ()
    leader_commit: LogId | None = None

    def validate(self) -> LogEntries:
        """Check the request; return its entries as `LogEntries`.

        Raises `ProtocolError` if the entries do not follow ``prev_log_id`` at
        consecutive indexes, if terms decrease (§5.3), or if an entry claims a term
        above the leader's.
        """
        _check_vote(self.vote, "AppendEntriesRequest")
        _check_log_id(self.prev_log_id, "AppendEntriesRequest.prev_log_id")
        _check_log_id(self.leader_commit, "AppendEntriesRequest.leader_commit")
        entries = as_log_entries(self.entries)
        n = len(entries)
        if n == 0:
            return entries
        expect = -1 if self.prev_log_id is None else self.prev_log_id.index
        last_term = -1 if self.prev_log_id is None else self.prev_log_id.term
        first = entries.log_id_at(0)
        last = entries.log_id_at(n - 1)
        if first.index != expect + 1 or last.index != expect + n:
            raise ProtocolError(
                f"AppendEntries: entries {first.index}..{last.index} do not follow prev index {expect}"
            )
        for index, term in entries.term_runs():
            if term < last_term:
                raise ProtocolError(f"AppendEntries: term decreases to {term} at index {index}")
            last_term = term
        if last_term > self.vote.term:
            raise ProtocolError(f"AppendEntries: entry term {last_term} above the leader's term {self.vote.term}")
        if last.index > MAX_INDEX:
            raise ProtocolError(f"AppendEntries: index {last.index} above the largest accepted index {MAX_INDEX}")
        try:
            memberships = entries.memberships()  # decoded here, not later in the core (was Fatal)
        except ProtocolError:
            raise
        except Exception as exc:  # a decoder's TypeError/ValueError: malformed bytes all the same
            raise ProtocolError(f"AppendEntries: malformed membership entry: {exc}") from exc
        for log_id, m in memberships:
            check_membership(m, f"AppendEntries: membership entry {log_id}")
        return entries


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """The answer to an `AppendEntriesRequest` (§5.3).

    * success: ``success=True``; ``matching`` is the last log id known to match the
      leader's (None: everything that was sent);
    * conflict (the consistency check failed): ``success=False`` with a hint for
      fast backtracking (§5.3, "the follower can include the term of the
      conflicting entry"): ``conflict_index`` is the largest index ``<= prev`` at
      which the follower's term is ``<=`` the leader's prev term, and
      ``conflict_term`` the follower's term there (-1 / -1: nothing matches);
    * higher vote: ``vote`` is above the leader's; the leader steps down (§5.1).
    """

    vote: Vote
    success: bool
    matching: LogId | None = None
    conflict_index: int = -1
    conflict_term: int = -1


# -- snapshots (§7) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstallSnapshotRequest:
    """InstallSnapshot RPC (§7): one chunk of the leader's snapshot.

    The runtime reassembles chunks (``offset``, ``data``, ``done``) and hands the
    engine one `raftx.engine.events.SnapshotReceived` with the full snapshot's meta.
    """

    vote: Vote
    meta: SnapshotMeta
    offset: int = 0
    data: bytes = b""
    done: bool = True

    def validate(self) -> None:
        """Raise `ProtocolError` for a wrong type or an out-of-range field."""
        _check_vote(self.vote, "InstallSnapshot")
        meta = self.meta
        if not isinstance(meta, SnapshotMeta):
            raise ProtocolError(f"InstallSnapshot: meta must be a SnapshotMeta, not {type(meta).__name__}")
        _check_log_id(meta.last_log_id, "InstallSnapshot: meta.last_log_id")
        if meta.last_log_id is None:
            raise ProtocolError("InstallSnapshot: a snapshot of an empty log")
        if meta.last_log_id.term > self.vote.term:
            raise ProtocolError(f"InstallSnapshot: snapshot term {meta.last_log_id.term} above the "
                                f"leader's term {self.vote.term}")
        sm = meta.last_membership
        _check_log_id(sm.log_id, "InstallSnapshot: membership log id")
        if sm.log_id is not None and sm.log_id.index > meta.last_log_id.index:
            raise ProtocolError(f"InstallSnapshot: membership {sm.log_id} after the snapshot's last {meta.last_log_id}")
        if sm != StoredMembership():  # the initial "no membership recorded" is allowed
            check_membership(sm.membership, "InstallSnapshot")
        if not isinstance(self.offset, int) or isinstance(self.offset, bool) or not 0 <= self.offset <= MAX_INDEX:
            raise ProtocolError(f"InstallSnapshot: bad offset {self.offset!r:.40}")
        if not isinstance(self.data, (bytes, bytearray, memoryview)) or not isinstance(self.done, bool):
            raise ProtocolError("InstallSnapshot: data must be bytes and done a bool")


@dataclass(frozen=True, slots=True)
class SnapshotResponse:
    """The answer to a snapshot transfer (§7): the receiver's vote (higher: step down)."""

    vote: Vote


InstallSnapshotResponse = SnapshotResponse


# -- leadership transfer (thesis §3.10) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferLeaderRequest:
    """The leader asks ``to_node_id`` to start an election at once (thesis §3.10).

    Sent to every node so that all of them drop the leader lease of ``from_leader``.
    ``last_log_id`` is the leader's last log id: the target only campaigns once its
    log has caught up to it.
    """

    from_leader: Vote
    to_node_id: int
    last_log_id: LogId | None = None

    def validate(self) -> None:
        """Raise `ProtocolError` for a wrong type or an out-of-range field."""
        _check_vote(self.from_leader, "TransferLeader")
        if not self.from_leader.committed or self.from_leader.node_id is None:
            raise ProtocolError("TransferLeader: from_leader is not an elected leader's vote")
        t = self.to_node_id
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= MAX_NODE_ID:
            raise ProtocolError(f"TransferLeader: bad to_node_id {t!r:.40}")
        _check_log_id(self.last_log_id, "TransferLeader.last_log_id")


# -- forwarding a client call to the leader (writes and reads from any node) ----------------

#: `ForwardOutcome.status`: applied (``log_id``, ``data``) or, for a read, confirmed (``log_id``).
FORWARD_OK = 0
#: Refused before it was proposed (the target is not the leader; ``leader_id`` its hint).
FORWARD_NOT_PROPOSED = 1
#: The write may or may not have been applied (``message`` says why).
FORWARD_UNKNOWN = 2
#: Failed and not applied (e.g. a payload too large; ``message``).
FORWARD_FAILED = 3


@dataclass(frozen=True, slots=True)
class ForwardRequest:
    """A follower forwards client writes (``kind="write"``, ``payloads``) or a
    linearizable-read check (``kind="read"``) to the node it believes is the leader."""

    kind: str
    payloads: tuple[bytes, ...] = ()

    def validate(self) -> None:
        """Raise `ProtocolError` for a wrong kind or payloads that are not bytes."""
        if self.kind not in ("write", "read"):
            raise ProtocolError(f"Forward: unknown kind {self.kind!r:.40}")
        if self.kind == "read" and self.payloads:
            raise ProtocolError("Forward: a read carries no payloads")
        if not all(isinstance(p, bytes) for p in self.payloads):
            raise ProtocolError("Forward: payloads must be bytes")


@dataclass(frozen=True, slots=True)
class ForwardOutcome:
    """The outcome of one forwarded write (or of the read check): ``status`` is one of
    ``FORWARD_*``; ``data`` the state machine's response (msgpack round-tripped)."""

    status: int
    log_id: LogId | None = None
    leader_id: int | None = None
    message: str = ""
    data: Any = None


@dataclass(frozen=True, slots=True)
class ForwardResponse:
    """One `ForwardOutcome` per forwarded payload, in order (one for a read)."""

    outcomes: tuple[ForwardOutcome, ...]
