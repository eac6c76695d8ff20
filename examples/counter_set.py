"""A replicated counter and set with durable snapshots: a custom raftx state machine.

``CounterSet`` implements `raftx.storage.RaftStateMachine`: every node applies the same
committed commands in the same order, so every node holds the same counter and set.
Its snapshots are files of a `raftx.storage.FileSnapshotStore` (checksummed, fsynced,
renamed into place), from which a restarted node restores itself, and which a leader
sends to a node whose missing entries were purged from its log.

``python examples/counter_set.py`` runs a 3-node cluster in this process over loopback
TCP with durable logs, then:

1. writes through the leader (``add`` to the counter, ``insert`` / ``remove`` items, and
   one invalid command, which every node rejects the same way);
2. snapshots the leader, which then purges its log up to the snapshot;
3. adds node 4 as a learner: the entries it lacks are gone from the leader's log, so it
   catches up by installing the leader's snapshot;
4. stops node 4, reads its snapshot back from disk, restarts it from its log and
   snapshot directories, and checks that it catches up with writes it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import raftx
from raftx import Entry, LogId, Membership, Snapshot, SnapshotMeta, StoredMembership
from raftx.errors import StorageError
from raftx.network import RaftServer, TcpNetworkFactory
from raftx.storage import (
    FileSnapshotStore,
    RaftSnapshotBuilder,
    RaftStateMachine,
    SegmentedLogStore,
    StoredSnapshot,
)

WAIT = 10.0  # seconds: the bound of every wait in this example


# -- the commands: what clients propose, as bytes in the log --------------------------


def add(n: int) -> bytes:
    """Add ``n`` to the counter; the response is the new value."""
    return json.dumps({"op": "add", "value": n}).encode()


def insert(item: str) -> bytes:
    """Insert ``item`` into the set; the response is True if it was not there."""
    return json.dumps({"op": "insert", "value": item}).encode()


def remove(item: str) -> bytes:
    """Remove ``item`` from the set; the response is True if it was there."""
    return json.dumps({"op": "remove", "value": item}).encode()


@dataclass(frozen=True)
class Rejected:
    """The response to a command the state machine cannot execute."""

    reason: str


# -- the state machine ------------------------------------------------------------------


class CounterSet(RaftStateMachine):
    """A counter and a set of strings, replicated; snapshots in ``snapshot_dir``.

    Called by the node from one task at a time, with committed entries in log order.
    An exception from `apply` stops the node (it is a storage failure), so a bad
    command gets a `Rejected` response instead: the same on every node.
    """

    def __init__(self, snapshot_dir: str | os.PathLike[str]) -> None:
        self.counter = 0
        self.items: set[str] = set()
        self.last_applied: LogId | None = None
        self.last_membership = StoredMembership()
        self._snapshot_dir = Path(snapshot_dir)
        self._snapshots = FileSnapshotStore(snapshot_dir)
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, snapshot_dir: str | os.PathLike[str]) -> CounterSet:
        """A state machine restored from the newest snapshot in ``snapshot_dir``, if any.

        The node then re-applies the committed entries after the snapshot from its log.
        """
        sm = cls(snapshot_dir)
        stored = await asyncio.to_thread(sm._snapshots.latest)  # checksum verified
        if stored is not None:
            with stored.open() as f:
                sm._restore(stored.meta, f.read())
        return sm

    def state(self) -> tuple[int, list[str]]:
        """``(counter, sorted items)``: what two replicas must agree on."""
        return self.counter, sorted(self.items)

    # -- applying ------------------------------------------------------------------------

    async def applied_state(self) -> tuple[LogId | None, StoredMembership]:
        return self.last_applied, self.last_membership

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        responses: list[Any] = []
        for entry in entries:
            payload = entry.payload
            if isinstance(payload, bytes):  # a client's command
                responses.append(self._execute(payload))
            else:  # a leader's blank entry (None) or a membership change
                if isinstance(payload, Membership):
                    self.last_membership = StoredMembership(entry.log_id, payload)
                responses.append(None)
            self.last_applied = entry.log_id
        return responses

    def _execute(self, command: bytes) -> int | bool | Rejected:
        try:
            decoded = json.loads(command)
            op, value = decoded["op"], decoded["value"]
        except (ValueError, TypeError, KeyError) as exc:
            return Rejected(f"malformed command: {exc}")
        if op == "add" and isinstance(value, int) and not isinstance(value, bool):
            self.counter += value
            return self.counter
        if op in ("insert", "remove") and isinstance(value, str):
            present = value in self.items
            if op == "insert":
                self.items.add(value)
                return not present
            self.items.discard(value)
            return present
        return Rejected(f"cannot {op} {value!r}")

    # -- snapshots -----------------------------------------------------------------------

    async def get_snapshot_builder(self) -> RaftSnapshotBuilder:
        # Capture the state now: entries applied after this call are not in the snapshot.
        last = self.last_applied
        seq = next(self._ids)
        snapshot_id = "empty" if last is None else f"{last.term}-{last.index}-{seq}"
        meta = SnapshotMeta(last, self.last_membership, snapshot_id)
        data = json.dumps({"counter": self.counter, "items": sorted(self.items)}).encode()
        return _Builder(self._snapshots, meta, data)

    async def begin_receiving_snapshot(self) -> BinaryIO:
        # The leader's snapshot is streamed in here, then passed to install_snapshot.
        # This state is small; a large one would stream into a temporary file instead.
        return io.BytesIO()

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        snapshot.seek(0)  # the file begin_receiving_snapshot returned, just written
        data = snapshot.read()
        counter, items = _decode(data)  # a malformed snapshot changes nothing
        await asyncio.to_thread(_write_snapshot, self._snapshots, meta, data)  # durable first
        self.counter, self.items = counter, items
        self.last_applied, self.last_membership = meta.last_log_id, meta.last_membership

    async def get_current_snapshot(self) -> Snapshot | None:
        stored = await asyncio.to_thread(self._snapshots.latest)
        return None if stored is None else Snapshot(stored.meta, stored.open())

    def _restore(self, meta: SnapshotMeta, data: bytes) -> None:
        self.counter, self.items = _decode(data)
        self.last_applied, self.last_membership = meta.last_log_id, meta.last_membership


class _Builder(RaftSnapshotBuilder):
    """Writes one captured state as a snapshot file (off the event loop)."""

    def __init__(self, store: FileSnapshotStore, meta: SnapshotMeta, data: bytes) -> None:
        self._store, self._meta, self._data = store, meta, data

    async def build_snapshot(self) -> Snapshot:
        stored = await asyncio.to_thread(_write_snapshot, self._store, self._meta, self._data)
        return Snapshot(stored.meta, stored.open())


def _write_snapshot(store: FileSnapshotStore, meta: SnapshotMeta, data: bytes) -> StoredSnapshot:
    """Write, fsync and rename a snapshot into place; the previous one goes after it."""
    writer = store.begin(meta)
    try:
        writer.write(data)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def _decode(data: bytes) -> tuple[int, set[str]]:
    """The state in a snapshot's bytes; `StorageError` if they are not one."""
    try:
        decoded = json.loads(data)
        counter, items = decoded["counter"], decoded["items"]
    except (ValueError, TypeError, KeyError) as exc:
        raise StorageError(f"malformed counter-set snapshot: {exc}") from exc
    if not isinstance(counter, int) or not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise StorageError("malformed counter-set snapshot: wrong field types")
    return counter, set(items)


# -- running it: a 3-node cluster in this process ------------------------------------------


class Node:
    """One node: its log, its state machine, its `raftx.Raft` and a TCP server."""

    def __init__(self, raft: raftx.Raft, sm: CounterSet, server: RaftServer, stack: contextlib.AsyncExitStack) -> None:
        self.raft, self.sm, self.server, self._stack = raft, sm, server, stack

    @classmethod
    async def start(cls, node_id: int, data_dir: Path, config: raftx.Config, port: int = 0) -> Node:
        """Open (or reopen) the node's stores in ``data_dir`` and serve it on ``port``."""
        async with contextlib.AsyncExitStack() as stack:
            store = await SegmentedLogStore.open(data_dir / "log", node_id=node_id, cluster_name=config.cluster_name)
            stack.push_async_callback(store.close)
            sm = await CounterSet.open(data_dir / "snapshots")
            raft = await raftx.Raft.new(node_id, config, TcpNetworkFactory(), store, sm)
            stack.push_async_callback(raft.shutdown)
            server = await stack.enter_async_context(RaftServer(raft, "127.0.0.1", port))
            return cls(raft, sm, server, stack.pop_all())  # started: the node owns its stack now

    async def stop(self) -> None:
        """Stop serving, stop the node, close its log (unwinding `start`)."""
        await self._stack.aclose()


@dataclass
class Report:
    """What the run observed; every replica's ``(counter, items)`` must agree."""

    responses: list[Any]
    leader_state: tuple[int, list[str]]
    learner_state: tuple[int, list[str]]
    learner_snapshot: LogId | None
    snapshot_on_disk: tuple[int, list[str]]
    restarted_state: tuple[int, list[str]]
    states: dict[int, tuple[int, list[str]]]


async def main() -> Report:
    config = raftx.Config(
        cluster_name="counter-set",
        # Build a snapshot after every 1,000 applied entries, and keep no log below it
        # (a real service keeps some, so that a briefly lagging follower needs no snapshot).
        snapshot_policy=raftx.SnapshotPolicy.LogsSinceLast(1000),
        max_in_snapshot_log_to_keep=0,
    ).validate()
    async with contextlib.AsyncExitStack() as stack:
        d = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        nodes: dict[int, Node] = {}
        for i in (1, 2, 3):
            nodes[i] = await Node.start(i, d / f"node{i}", config)
            stack.push_async_callback(nodes[i].stop)
        await nodes[1].raft.initialize({i: raftx.BasicNode(n.server.addr) for i, n in nodes.items()})
        leader = nodes[await nodes[1].raft.wait(WAIT).leader()].raft

        # 1. Writes: each returns once committed (durable on a majority) and applied.
        commands = [add(n) for n in range(1, 11)] + [insert("a"), insert("b"), insert("a"), remove("b"), insert("c")]
        commands.append(json.dumps({"op": "add", "value": "ten"}).encode())
        written = [await leader.client_write(c) for c in commands]
        responses = [w.data for w in written]

        # 2. Snapshot the leader; with max_in_snapshot_log_to_keep=0 it purges its log.
        applied = written[-1].log_id  # applied on the leader when client_write returned
        await leader.trigger().snapshot()
        await leader.wait(WAIT).snapshot(applied, "the leader's snapshot")
        await leader.wait(WAIT).purged(applied, "the leader's log purged up to its snapshot")

        # 3. A new node joins as a learner and catches up from the leader's snapshot.
        nodes[4] = learner = await Node.start(4, d / "node4", config)
        stack.push_async_callback(learner.stop)  # stopping twice is harmless
        await leader.add_learner(4, raftx.BasicNode(learner.server.addr))
        await learner.raft.wait(WAIT).applied_index_at_least(applied.index, "the learner caught up")
        learner_snapshot = learner.raft.metrics().borrow().snapshot
        learner_state, leader_state = learner.sm.state(), nodes[leader.id].sm.state()

        # 4. Stop the learner and read its snapshot back from disk ...
        port = learner.server.port
        await learner.stop()
        on_disk = await CounterSet.open(d / "node4" / "snapshots")
        snapshot_on_disk = on_disk.state()
        # ... write while it is down, then restart it from its log and snapshot files.
        written = [await leader.client_write(c) for c in (add(100), insert("d"))]
        responses += [w.data for w in written]
        last = written[-1].log_id
        nodes[4] = restarted = await Node.start(4, d / "node4", config, port)
        stack.push_async_callback(restarted.stop)
        await restarted.raft.wait(WAIT).applied_index_at_least(last.index, "the restarted learner caught up")
        for i in (1, 2, 3):
            await nodes[i].raft.wait(WAIT).applied_index_at_least(last.index, f"node {i} applied everything")
        return Report(
            responses=responses,
            leader_state=leader_state,
            learner_state=learner_state,
            learner_snapshot=learner_snapshot,
            snapshot_on_disk=snapshot_on_disk,
            restarted_state=restarted.sm.state(),
            states={i: n.sm.state() for i, n in nodes.items()},
        )


if __name__ == "__main__":
    report = asyncio.run(main())  # with uvloop installed: uvloop.run(main())
    print("responses:", report.responses)
    print("learner installed snapshot", report.learner_snapshot, "->", report.learner_state)
    print("its snapshot on disk:", report.snapshot_on_disk)
    print("every node now:", report.states)
