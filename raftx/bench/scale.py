"""The scale measurements of ``raftx bench --sweep`` that need a process of their own
(``python -m raftx.bench.scale KIND ...``, started by `raftx.bench.sweep`).

* ``state``: a one-voter raftx node (segmented log, fsync on, `KVStateMachine`, TCP)
  loads ``--keys`` keys with ``client_write_many``, builds a snapshot (§7), purges its
  log, and adds a fresh ``learner`` process (``--learner``) that can only catch up by
  InstallSnapshot over TCP; it reports load, build, transfer and install times and
  the resident memory its state grew by;
* ``learner``: that learner; its state machine notes when the snapshot's first chunk
  arrived and how long installing it took, and it reports its resident memory before
  and after (the state alone: the learner holds no log entries);
* ``restart``: the ``state`` node again on its data directory after a kill -9: time to
  open the log, load the snapshot, and apply the log to its end;
* ``log``: a ``--entries`` entry segmented log (fsync'ed per 10,000-entry batch),
  closed and opened again: open time and the in-memory index's bytes per entry.

Each writes one JSON result file (atomically) and, where a driver waits on it, lingers.
Times are wall clock (``time.time``): the processes run on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from raftx.bench.node import write_json
from raftx.kv import KVStateMachine
from raftx.types import SnapshotMeta

__all__ = ["main", "rss_bytes"]

CLUSTER = "raftx-bench-scale"
LOAD_BATCH = 1000
LOAD_CALLS = 8
LOG_BATCH = 10_000


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TimedKV(KVStateMachine):
    """`KVStateMachine` that notes when a snapshot starts arriving and how long its install takes."""

    receive_started: float | None = None
    install: tuple[float, float] | None = None
    receives = 0
    installs = 0

    async def begin_receiving_snapshot(self) -> BinaryIO:
        self.receives += 1
        if self.receive_started is None:
            self.receive_started = time.time()
        return await super().begin_receiving_snapshot()

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        t0 = time.time()
        await super().install_snapshot(meta, snapshot)
        self.installs += 1
        if self.install is None:
            self.install = (t0, time.time())


async def _node(data: Path, me: int, addr: str, sm_class: type[KVStateMachine] = KVStateMachine,
                install_snapshot_timeout: int | None = None) -> Any:
    """A raftx node on ``data``: (raft, state machine, server, store, timings of the opens)."""
    from raftx import Config, SnapshotPolicy
    from raftx.kv import KVNodeServer
    from raftx.kv.server import MAX_PAYLOAD_ENTRIES
    from raftx.network.raft_rpc import TcpNetworkFactory, parse_addr
    from raftx.raft import Raft
    from raftx.storage import SegmentedLogStore

    t0 = time.time()
    store = await SegmentedLogStore.open(data / "log", cluster_name=CLUSTER, node_id=me)
    t1 = time.time()
    sm = await sm_class.open(data / "snap")
    t2 = time.time()
    # No snapshot of its own during the load: the one measured is triggered explicitly.
    config = Config(cluster_name=CLUSTER, election_timeout_min=300, election_timeout_max=600,
                    max_payload_entries=MAX_PAYLOAD_ENTRIES, snapshot_policy=SnapshotPolicy(1 << 62))
    if install_snapshot_timeout is not None:
        config = dataclasses.replace(config, install_snapshot_timeout=install_snapshot_timeout)
    raft = await Raft.new(me, config, TcpNetworkFactory(), store, sm)
    host, port = parse_addr(addr)
    server = KVNodeServer(raft, sm, host, port)
    await server.start()
    return raft, sm, server, store, {"log_open_s": t1 - t0, "snapshot_load_s": t2 - t1}


async def _close(raft: Any, server: Any, store: Any) -> None:
    await server.close()
    await raft.shutdown()
    await store.close()


async def _state(args: argparse.Namespace) -> int:
    from raftx import BasicNode, ServerState
    from raftx.kv.commands import encode_put

    rss0 = rss_bytes()
    raft, sm, server, store, _ = await _node(Path(args.data_dir), 1, args.addr,
                                             install_snapshot_timeout=args.install_snapshot_timeout)
    try:
        await raft.initialize({1: BasicNode(args.addr)})
        await raft.wait(30).state(ServerState.LEADER, "leader")
        value = b"v" * args.value_bytes
        next_key = 0
        write_json(args.progress, {"phase": f"loading {args.keys:,} keys"})
        t0 = time.time()

        async def loader() -> None:
            nonlocal next_key
            while next_key < args.keys:
                first, next_key = next_key, min(args.keys, next_key + LOAD_BATCH)
                results = await raft.client_write_many([encode_put(b"key%09d" % k, value)
                                                        for k in range(first, next_key)])
                bad = [r for r in results if isinstance(r, BaseException)]
                if bad:
                    raise bad[0]

        await asyncio.gather(*(loader() for _ in range(LOAD_CALLS)))
        load_s = time.time() - t0
        rss1 = rss_bytes()
        last = raft.metrics().borrow().last_log_index
        write_json(args.progress, {"phase": "building a snapshot"})
        t0 = time.time()
        await raft.trigger().snapshot()
        m = await raft.wait(600).metrics(lambda m: m.snapshot is not None and m.snapshot.index >= last,
                                         "snapshot of the loaded state")
        build_s = time.time() - t0
        snap_bytes = sum(p.stat().st_size for p in (Path(args.data_dir) / "snap").iterdir() if p.is_file())
        await raft.trigger().purge_log(m.snapshot.index)  # the learner can only catch up by snapshot
        await raft.wait(60).metrics(lambda m: m.purged is not None and m.purged.index >= last, "log purged")
        write_json(args.progress, {"phase": "sending the snapshot to a new learner"})
        t0 = time.time()
        await raft.add_learner(2, BasicNode(args.learner), blocking=True)
        added_s = time.time() - t0
        write_json(args.result, {"keys": args.keys, "value_bytes": args.value_bytes, "load_s": load_s,
                                 "load_writes_per_s": args.keys / load_s, "leader_rss_growth_bytes": rss1 - rss0,
                                 "snapshot_build_s": build_s, "snapshot_bytes": snap_bytes,
                                 "last_log_index": last, "add_learner_started": t0, "add_learner_s": added_s})
        await asyncio.sleep(args.linger)  # until the driver kills it (a crash, then `restart`)
        return 0
    finally:
        await _close(raft, server, store)


async def _learner(args: argparse.Namespace) -> int:
    raft, sm, server, store, _ = await _node(Path(args.data_dir), 2, args.addr, TimedKV)
    try:
        rss0 = rss_bytes()
        assert isinstance(sm, TimedKV)
        # the metrics change once more after the install (the applied log id moves to the snapshot's)
        await raft.wait(None).metrics(lambda m: sm.install is not None, "snapshot installed")
        assert sm.install is not None and sm.receive_started is not None
        write_json(args.result, {"keys": len(sm), "receives": sm.receives, "installs": sm.installs,
                                 "receive_started": sm.receive_started,
                                 "install_started": sm.install[0], "install_s": sm.install[1] - sm.install[0],
                                 "state_rss_growth_bytes": rss_bytes() - rss0})
        await asyncio.sleep(args.linger)
        return 0
    finally:
        await _close(raft, server, store)


async def _restart(args: argparse.Namespace) -> int:
    from raftx import ServerState

    raft, sm, server, store, opens = await _node(Path(args.data_dir), 1, args.addr)
    try:
        m = await raft.wait(120).state(ServerState.LEADER, "leader again")
        last = m.last_log_index or 0
        await raft.wait(600).metrics(lambda m: m.last_applied is not None and m.last_applied.index >= last,
                                     "applied to the end of the log")
        write_json(args.result, {**opens, "keys": len(sm), "started": args.started, "ready": time.time()})
        return 0
    finally:
        await _close(raft, server, store)


async def _log(args: argparse.Namespace) -> int:
    from raftx.storage import SegmentedLogStore
    from raftx.types import Entry, LogId

    directory = Path(args.data_dir)
    payload = b"v" * args.value_bytes
    t0 = time.time()
    store = await SegmentedLogStore.open(directory, cluster_name=CLUSTER, node_id=1)
    for first in range(1, args.entries + 1, LOG_BATCH):
        n = min(LOG_BATCH, args.entries + 1 - first)
        await store.append([Entry(LogId(1, i), payload) for i in range(first, first + n)])
        if first % 1_000_000 == 1:
            write_json(args.progress, {"phase": f"writing a {args.entries:,}-entry log: {first - 1:,}"})
    await store.close()
    build_s = time.time() - t0
    disk = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    write_json(args.progress, {"phase": f"opening the {args.entries:,}-entry log"})
    rss0 = rss_bytes()
    t0 = time.time()
    store = await SegmentedLogStore.open(directory, cluster_name=CLUSTER, node_id=1)
    open_s = time.time() - t0
    index_bytes = int(store.log_index.memory_bytes())
    rss1 = rss_bytes()
    await store.close()
    write_json(args.result, {"entries": args.entries, "value_bytes": args.value_bytes, "build_s": build_s,
                             "disk_bytes": disk, "open_s": open_s, "index_bytes": index_bytes,
                             "index_bytes_per_entry": index_bytes / max(1, args.entries),
                             "open_rss_growth_bytes": rss1 - rss0})
    return 0


KINDS = {"state": _state, "learner": _learner, "restart": _restart, "log": _log}


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # the interpreter is up and raftx imported
    ap = argparse.ArgumentParser(prog="python -m raftx.bench.scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--progress", default=os.devnull)
    ap.add_argument("--addr", default="127.0.0.1:0")
    ap.add_argument("--learner", help="state: the learner's address")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--install-snapshot-timeout", type=int, default=None, metavar="MS",
                    help="state: Config.install_snapshot_timeout of the node that sends the snapshot")
    ap.add_argument("--linger", type=float, default=600.0)
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = ap.parse_args(argv)
    args.started = started
    from raftx.kv.server import run_on_loop

    return run_on_loop(KINDS[args.kind](args), args.loop)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
