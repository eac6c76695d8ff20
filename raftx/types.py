"""Raft's data types, named as in openraft (std leader-id mode: one leader per term).

`LeaderId`, `Vote` and `LogId` live in the compiled hot path (``raftx._core.vote``)
because they are compared on every message; they are re-exported here.
"""

from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass, field
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Iterable, Mapping, overload

import msgpack

from raftx import _core
from raftx.errors import ProtocolError

LeaderId = _core.vote.LeaderId
Vote = _core.vote.Vote
LogId = _core.vote.LogId

__all__ = [
    "BasicNode",
    "ChangeMembers",
    "ClientWriteResponse",
    "Entry",
    "EntryKind",
    "EntryRange",
    "LeaderId",
    "LogId",
    "Membership",
    "ReadPolicy",
    "ServerState",
    "Snapshot",
    "SnapshotMeta",
    "StoredMembership",
    "Vote",
]


class ReadPolicy(enum.Enum):
    """How a linearizable read confirms leadership (openraft ``ReadPolicy``; thesis §6.4).

    * ``READ_INDEX`` (default): one round of heartbeats answered by a quorum after the
      read began (one round trip per read, no clock assumption);
    * ``LEASE_READ``: no round trip while the leader's read lease holds (a quorum
      answered recently enough that no other leader can exist yet); otherwise it
      waits for a round as ``READ_INDEX`` does. Its safety assumes bounded clock-rate
      drift between nodes (`raftx.engine.reads` states the bound).
    """

    READ_INDEX = "read_index"
    LEASE_READ = "lease_read"


class ServerState(enum.Enum):
    """The role of a node (§5.1), plus openraft's LEARNER and SHUTDOWN."""

    LEARNER = "Learner"
    FOLLOWER = "Follower"
    CANDIDATE = "Candidate"
    LEADER = "Leader"
    SHUTDOWN = "Shutdown"


@dataclass(frozen=True, slots=True)
class BasicNode:
    """How to reach a node: ``addr`` is ``"host:port"`` for the TCP transport."""

    addr: str = ""


class EntryKind(enum.IntEnum):
    """What a log entry carries; the value is the ``kind`` byte of a codec record."""

    BLANK = 0  # no-op appended by each new leader (§8)
    NORMAL = 1  # application data (bytes)
    MEMBERSHIP = 2  # a cluster configuration (thesis §4.3)


@dataclass(frozen=True, slots=True)
class Membership:
    """A cluster configuration: one voter set, or two during joint consensus (thesis §4.3).

    ``configs`` lists the voter sets (``len(configs) == 2`` while joint);
    ``nodes`` maps every member, voter or learner, to its `BasicNode`.
    Learners are the nodes that are in no voter set.
    """

    configs: tuple[frozenset[int], ...] = ()
    nodes: Mapping[int, BasicNode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = set().union(*self.configs) - set(self.nodes) if self.configs else set()
        if missing:
            raise ValueError(f"voters {sorted(missing)} have no node entry")

    @classmethod
    def new(cls, voters: Iterable[int] | Mapping[int, BasicNode], learners: Iterable[int] = ()) -> Membership:
        """A uniform membership; ``voters`` is a set of ids or a mapping id -> node."""
        nodes: dict[int, BasicNode]
        if isinstance(voters, Mapping):
            nodes = dict(voters)
        else:
            nodes = {int(v): BasicNode() for v in voters}
        for learner in learners:
            nodes.setdefault(int(learner), BasicNode())
        return cls((frozenset(i for i in nodes if i not in set(learners)),), nodes)

    def voter_ids(self) -> set[int]:
        """Every voter, of both halves when joint."""
        return set().union(*self.configs) if self.configs else set()

    def learner_ids(self) -> set[int]:
        """Nodes that are not voters (they replicate the log but never vote, thesis §4.2.1)."""
        voters = self.voter_ids()
        return {n for n in self.nodes if n not in voters}

    def is_voter(self, node_id: int) -> bool:
        """Whether ``node_id`` is a voter of either configuration."""
        return any(node_id in c for c in self.configs)

    def is_joint(self) -> bool:
        """Whether this is a joint configuration C_old,new (thesis §4.3)."""
        return len(self.configs) > 1

    def get_node(self, node_id: int) -> BasicNode | None:
        """The address of ``node_id``, or None if it is not a node."""
        return self.nodes.get(node_id)

    def to_bytes(self) -> bytes:
        """The payload of a MEMBERSHIP entry (msgpack)."""
        data: bytes = msgpack.packb(
            [[sorted(c) for c in self.configs], [[i, n.addr] for i, n in sorted(self.nodes.items())]],
            use_bin_type=True,
        )
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> Membership:
        """Inverse of `to_bytes`; `raftx.errors.ProtocolError` for malformed bytes."""
        try:
            configs, nodes = msgpack.unpackb(data, raw=False, strict_map_key=False)
            return cls(
                tuple(frozenset(int(i) for i in c) for c in configs),
                {int(i): BasicNode(str(addr)) for i, addr in nodes},
            )
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ProtocolError(f"malformed membership payload: {exc}") from exc


@dataclass(frozen=True, slots=True)
class StoredMembership:
    """A membership and the id of the log entry that carried it (None: initial)."""

    log_id: LogId | None = None
    membership: Membership = field(default_factory=Membership)


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry: its id and its payload.

    ``payload`` is ``None`` (blank), ``bytes`` (normal application data) or a
    `Membership`.
    """

    log_id: LogId
    payload: bytes | Membership | None = None

    @property
    def kind(self) -> EntryKind:
        """BLANK, NORMAL or MEMBERSHIP, from the payload."""
        if self.payload is None:
            return EntryKind.BLANK
        if isinstance(self.payload, Membership):
            return EntryKind.MEMBERSHIP
        return EntryKind.NORMAL

    def get_membership(self) -> Membership | None:
        """The membership a MEMBERSHIP entry carries, else None."""
        return self.payload if isinstance(self.payload, Membership) else None

    def to_record(self) -> tuple[int, int, int, bytes]:
        """``(term, index, kind, payload_bytes)``, the shape `_core.codec` encodes."""
        return (self.log_id.term, self.log_id.index, *Entry.payload_record(self.payload))

    @staticmethod
    def payload_record(payload: bytes | Membership | None) -> tuple[EntryKind, bytes]:
        """The record ``(kind, payload_bytes)`` of an entry carrying ``payload``."""
        if payload is None:
            return EntryKind.BLANK, b""
        if isinstance(payload, Membership):
            return EntryKind.MEMBERSHIP, payload.to_bytes()
        return EntryKind.NORMAL, bytes(payload)

    @classmethod
    def from_record(cls, term: int, index: int, kind: int, payload: bytes) -> Entry:
        """Inverse of `to_record` (a MEMBERSHIP payload is decoded with `Membership.from_bytes`)."""
        if kind == EntryKind.NORMAL:
            return cls(LogId(term, index), bytes(payload))
        if kind == EntryKind.BLANK:
            return cls(LogId(term, index), None)
        if kind == EntryKind.MEMBERSHIP:
            return cls(LogId(term, index), Membership.from_bytes(payload))
        raise ProtocolError(f"unknown entry kind {kind} at index {index}")


def sequence_position(i: int | slice, n: int, what: str) -> int | tuple[int, int]:
    """``i`` into a sequence of ``n`` items: a checked index (negative counts from the
    end; IndexError outside), or ``(lo, hi)`` of a slice (ValueError for a step)."""
    if isinstance(i, slice):
        lo, hi, step = i.indices(n)
        if step != 1:
            raise ValueError(f"a {what} slice takes no step")
        return lo, max(lo, hi)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"{what} index out of range")
    return i


class EntryRange(Sequence[Entry]):
    """Consecutive log entries held as their terms and payloads, `Entry` objects built on access.

    The node passes committed entries to `raftx.storage.RaftStateMachine.apply` as
    an ``EntryRange``: a read-only ``Sequence[Entry]``. A state machine that applies
    many small entries can skip building an `Entry` per entry by reading the fields:
    entry ``first_index + i`` has term ``terms[i]`` and payload ``payloads[i]``
    (``None``, ``bytes`` or a `Membership`, as `Entry.payload`).
    """

    __slots__ = ("first_index", "terms", "payloads")

    def __init__(self, first_index: int, terms: Sequence[int],
                 payloads: Sequence[bytes | Membership | None]) -> None:
        if len(terms) != len(payloads):
            raise ValueError(f"{len(terms)} terms for {len(payloads)} payloads")
        self.first_index = first_index
        self.terms = terms
        self.payloads = payloads

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> EntryRange:
        """The range of a list of consecutive entries (ValueError if they are not)."""
        if isinstance(entries, EntryRange):
            return entries
        first = entries[0].log_id.index if entries else 0
        if any(e.log_id.index != first + i for i, e in enumerate(entries)):
            raise ValueError("entries are not consecutive")
        return cls(first, [e.log_id.term for e in entries], [e.payload for e in entries])

    def __len__(self) -> int:
        return len(self.payloads)

    @overload
    def __getitem__(self, i: int) -> Entry: ...

    @overload
    def __getitem__(self, i: slice) -> EntryRange: ...

    def __getitem__(self, i: int | slice) -> Entry | EntryRange:
        k = sequence_position(i, len(self.payloads), "EntryRange")
        if isinstance(k, tuple):
            lo, hi = k
            return EntryRange(self.first_index + lo, self.terms[lo:hi], self.payloads[lo:hi])
        return Entry(LogId(self.terms[k], self.first_index + k), self.payloads[k])

    def __iter__(self) -> Iterator[Entry]:
        first = self.first_index
        ids = map(LogId, self.terms, range(first, first + len(self.payloads)))
        return map(Entry, ids, self.payloads)

    def log_id(self, i: int) -> LogId:
        """The id of the entry at position ``i`` (0-based, as ``self[i].log_id``)."""
        return LogId(self.terms[i], self.first_index + i)

    def __repr__(self) -> str:
        return f"EntryRange(first_index={self.first_index}, {len(self.payloads)} entries)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntryRange):
            return NotImplemented
        return (len(self) == len(other) and (self.first_index == other.first_index or not self)
                and list(self.terms) == list(other.terms) and list(self.payloads) == list(other.payloads))

    def __hash__(self) -> int:
        return hash((self.first_index, tuple(self.terms), tuple(self.payloads)))

    @classmethod
    def of_term(cls, term: int, first_index: int, payloads: Sequence[bytes | Membership | None]) -> EntryRange:
        """``payloads`` at ``first_index, first_index + 1, ...``, all of ``term``: a
        leader's group commit (§5.3), before it is encoded."""
        payloads = tuple(payloads)
        return cls(first_index, array("Q", (term,)) * len(payloads), payloads)

    # -- raftx.messages.LogEntries: the engine's view (a not-yet-encoded batch) --------

    def log_id_at(self, pos: int) -> LogId:
        """The log id of the entry at position ``pos`` (IndexError outside the range)."""
        if not 0 <= pos < len(self.payloads):
            raise IndexError(pos)
        return LogId(self.terms[pos], self.first_index + pos)

    def term_runs(self) -> list[tuple[int, int]]:
        """``(first_index, term)`` for each run of equal terms, in log order."""
        return term_runs(self.first_index, self.terms)

    def memberships(self) -> list[tuple[LogId, Membership]]:
        """The membership entries, in log order (thesis §4.3)."""
        payloads = self.payloads
        if Membership not in set(map(type, payloads)):  # the common case, at C speed
            return []
        return [(LogId(self.terms[p], self.first_index + p), m) for p, m in enumerate(payloads)
                if isinstance(m, Membership)]

    def sliced(self, start: int) -> EntryRange:
        """The same range without its first ``start`` entries."""
        return EntryRange(self.first_index + start, self.terms[start:], self.payloads[start:])

    def entries(self) -> list[Entry]:
        """The range as a list of `Entry` objects."""
        return list(self)


def term_runs(first_index: int, terms: Sequence[int]) -> list[tuple[int, int]]:
    """``(first_index, term)`` for each run of equal ``terms`` of the entries from
    ``first_index`` on, in log order (what the engine indexes a log by, §5.3)."""
    if not terms:
        return []
    if terms.count(terms[0]) == len(terms):  # one term (a batch's usual case; a C loop for an array)
        return [(first_index, terms[0])]
    runs: list[tuple[int, int]] = []
    last = None
    for p, t in enumerate(terms):
        if t != last:
            runs.append((first_index + p, t))
            last = t
    return runs


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot covers: the last included log id and the membership at that point."""

    last_log_id: LogId | None = None
    last_membership: StoredMembership = field(default_factory=StoredMembership)
    snapshot_id: str = ""


@dataclass(slots=True)
class Snapshot:
    """A snapshot: its metadata and a readable binary file object with the state."""

    meta: SnapshotMeta
    snapshot: BinaryIO


@dataclass(slots=True)
class ClientWriteResponse:
    """The result of a committed and applied client write.

    Not frozen: one is built per write on the leader's hot path, and a frozen
    dataclass costs three times as much to construct.
    """

    log_id: LogId
    data: Any = None
    membership: Membership | None = None


class ChangeMembers:
    """A membership change request, openraft's ``ChangeMembers`` enum (thesis §4.3).

    Build one with a classmethod named after the openraft variant; `apply` computes
    the uniform target membership from the current one. Voters must already be
    nodes (added as learners first), except for the ``AddVoters`` variant, which
    adds the nodes as well.

    * ``AddVoterIds(ids)``: make existing learners voters;
    * ``AddVoters({id: node})``: add nodes and make them voters;
    * ``RemoveVoters(ids)``: voters become learners (the engine drops them unless
      ``retain``);
    * ``ReplaceAllVoters(ids)``: the voter set becomes exactly ``ids``;
    * ``AddNodes({id: node})``: add learners (existing nodes are left as they are);
    * ``SetNodes({id: node})``: add or update nodes' addresses;
    * ``RemoveNodes(ids)``: remove learners (a voter must be removed as voter first);
    * ``ReplaceAllNodes({id: node})``: the node map becomes exactly this (voters must
      stay in it).
    """

    __slots__ = ("kind", "ids", "nodes")

    KINDS = (
        "AddVoterIds", "AddVoters", "RemoveVoters", "ReplaceAllVoters",
        "AddNodes", "SetNodes", "RemoveNodes", "ReplaceAllNodes",
    )

    def __init__(self, kind: str, ids: Iterable[int] = (), nodes: Mapping[int, BasicNode] | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown ChangeMembers kind {kind!r}")
        self.kind = kind
        self.ids: frozenset[int] = frozenset(int(i) for i in ids)
        self.nodes: dict[int, BasicNode] = {int(k): v for k, v in (nodes or {}).items()}

    def __repr__(self) -> str:
        arg = sorted(self.ids) if not self.nodes else self.nodes
        return f"ChangeMembers.{self.kind}({arg!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChangeMembers):
            return NotImplemented
        return (self.kind, self.ids, self.nodes) == (other.kind, other.ids, other.nodes)

    @classmethod
    def AddVoterIds(cls, ids: Iterable[int]) -> ChangeMembers:  # noqa: N802  (openraft's names)
        """Make existing nodes (learners) voters."""
        return cls("AddVoterIds", ids)

    @classmethod
    def AddVoters(cls, nodes: Mapping[int, BasicNode]) -> ChangeMembers:  # noqa: N802
        """Add nodes and make them voters."""
        return cls("AddVoters", nodes.keys(), nodes)

    @classmethod
    def RemoveVoters(cls, ids: Iterable[int]) -> ChangeMembers:  # noqa: N802
        """Stop these voters voting (they stay as learners)."""
        return cls("RemoveVoters", ids)

    @classmethod
    def ReplaceAllVoters(cls, ids: Iterable[int]) -> ChangeMembers:  # noqa: N802
        """The voters become exactly ``ids`` (the others stay as learners)."""
        return cls("ReplaceAllVoters", ids)

    @classmethod
    def AddNodes(cls, nodes: Mapping[int, BasicNode]) -> ChangeMembers:  # noqa: N802
        """Add learners (an existing node keeps its address)."""
        return cls("AddNodes", nodes.keys(), nodes)

    @classmethod
    def SetNodes(cls, nodes: Mapping[int, BasicNode]) -> ChangeMembers:  # noqa: N802
        """Add learners or change the address of existing nodes."""
        return cls("SetNodes", nodes.keys(), nodes)

    @classmethod
    def RemoveNodes(cls, ids: Iterable[int]) -> ChangeMembers:  # noqa: N802
        """Remove learners (refused for a voter: remove it as a voter first)."""
        return cls("RemoveNodes", ids)

    @classmethod
    def ReplaceAllNodes(cls, nodes: Mapping[int, BasicNode]) -> ChangeMembers:  # noqa: N802
        """The nodes become exactly ``nodes`` (refused if a voter would lose its entry)."""
        return cls("ReplaceAllNodes", nodes.keys(), nodes)

    @classmethod
    def coerce(cls, members: ChangeMembers | Iterable[int] | Mapping[int, BasicNode]) -> ChangeMembers:
        """``members`` as a change: a set of ids means ``ReplaceAllVoters``; a mapping
        id -> node means ``AddVoters`` of those nodes (added to the current voters, never
        replacing them; `raftx.Raft.change_membership` puts them through the learner
        stage first)."""
        if isinstance(members, ChangeMembers):
            return members
        if isinstance(members, Mapping):
            return cls("AddVoters", members.keys(), members)
        return cls("ReplaceAllVoters", members)

    def apply(self, membership: Membership) -> Membership:
        """The uniform membership this change makes of ``membership``.

        The voters are taken from ``membership``'s last configuration (the new half
        when joint). Raises `raftx.errors.LearnerNotFound` if a new voter is not a
        node, `raftx.errors.EmptyMembership` if no voter would remain, and
        `raftx.errors.ChangeMembershipError` if a node change would drop a voter.
        """
        from raftx.errors import ChangeMembershipError, EmptyMembership, LearnerNotFound

        voters = set(membership.configs[-1]) if membership.configs else set()
        nodes = dict(membership.nodes)
        kind = self.kind
        if kind in ("AddVoters", "SetNodes"):
            nodes.update(self.nodes)
        elif kind == "AddNodes":
            for i, n in self.nodes.items():
                nodes.setdefault(i, n)
        elif kind == "ReplaceAllVoters" and self.nodes:
            nodes.update(self.nodes)
        if kind in ("AddVoterIds", "AddVoters"):
            voters |= self.ids
        elif kind == "RemoveVoters":
            voters -= self.ids
        elif kind == "ReplaceAllVoters":
            voters = set(self.ids)
        elif kind == "RemoveNodes":
            kept = self.ids & voters
            if kept:
                raise ChangeMembershipError(f"nodes {sorted(kept)} are voters; remove them as voters first")
            for i in self.ids:
                nodes.pop(i, None)
        elif kind == "ReplaceAllNodes":
            orphaned = voters - self.ids
            if orphaned:
                raise ChangeMembershipError(f"voters {sorted(orphaned)} would lose their node entry")
            nodes = dict(self.nodes)
        for v in sorted(voters):
            if v not in nodes:
                raise LearnerNotFound(v)
        if not voters:
            raise EmptyMembership("the membership would have no voter")
        return Membership((frozenset(voters),), nodes)
