"""One benchmark node process: ``python -m raftx.bench.node ...`` (started by `raftx.bench.runs`).

Two kinds, both publishing CPU time and log fsync counts (`raftx.bench.procstats`):

* ``kv --stats FILE -- <raftx.kv.server arguments>``: a key-value node exactly as
  ``raftx serve`` runs it (the load comes from a `KVClient` in another process);
* ``inproc --index I --addrs A1,A2,.. ...``: a raftx node (segmented log, fsync on
  unless ``--no-fsync``, `KVStateMachine`, `KVNodeServer`); node 1 initializes the
  cluster; whichever node becomes leader drives the load itself with
  ``Raft.client_write`` (PySyncObj's benchmark style), one level per ``--inflight``
  value and ``--batch`` size (batch > 1: ``Raft.client_write_many`` of that many
  values per call, ``inflight // batch`` calls outstanding), and writes the results
  to ``--result``; the others serve until killed.

``--loop asyncio|uvloop`` picks the event loop (default: uvloop when installed).
``--gc-gen0 N`` sets the process's generation-0 GC threshold (default: the same
`raftx.kv.server.GC_GEN0_THRESHOLD` as ``raftx serve``; 0 keeps Python's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from raftx.bench.procstats import StatsWriter, count_log_fsyncs
from raftx.bench.trace import TRACE_ENV
from raftx.bench.trace import install as install_trace
from raftx.kv.server import GC_GEN0_THRESHOLD, MAX_PAYLOAD_ENTRIES, run_on_loop, set_gc_threshold

__all__ = ["main"]

CLUSTER = "raftx-bench"


def write_json(path: str | os.PathLike[str], doc: Any) -> None:
    """Write ``doc`` to ``path`` atomically (readers never see half a file)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


async def _inproc(args: argparse.Namespace) -> int:
    from raftx import BasicNode, Config, ServerState, SnapshotPolicy
    from raftx.bench.load import measured_level
    from raftx.kv import KVNodeServer, KVStateMachine
    from raftx.kv.commands import encode_put
    from raftx.network.raft_rpc import TcpNetworkFactory, parse_addr
    from raftx.raft import Raft
    from raftx.storage import SegmentedLogStore

    addrs = dict(enumerate(args.addrs.split(","), start=1))
    me = args.index
    data = Path(args.data_dir)
    value = b"v" * args.value_bytes
    store = await SegmentedLogStore.open(data / "log", fsync=not args.no_fsync, cluster_name=CLUSTER, node_id=me)
    sm = KVStateMachine(data / "snap", fsync=not args.no_fsync)
    # The same timing, frame size and snapshot policy as `raftx serve`'s defaults.
    config = Config(cluster_name=CLUSTER, election_timeout_min=300, election_timeout_max=600,
                    max_payload_entries=MAX_PAYLOAD_ENTRIES, snapshot_policy=SnapshotPolicy(100_000))
    raft = await Raft.new(me, config, TcpNetworkFactory(), store, sm)
    host, port = parse_addr(addrs[me])
    server = KVNodeServer(raft, sm, host, port)
    await server.start()
    try:
        if me == 1:
            await raft.initialize({i: BasicNode(a) for i, a in addrs.items()})
        m = await raft.wait(30).metrics(lambda m: m.current_leader is not None, "a leader")
        if m.current_leader != me:
            await asyncio.sleep(args.linger)
            return 0
        await raft.wait(30).state(ServerState.LEADER, "leader")

        async def write(key: int) -> None:
            await raft.client_write(encode_put(b"k%d" % key, value))

        async def write_many(keys: list[int]) -> list[BaseException]:
            results = await raft.client_write_many([encode_put(b"k%d" % k, value) for k in keys])
            return [r for r in results if isinstance(r, BaseException)]

        stats = {f"node{i}": Path(args.stats_dir) / f"stats-node{i}.json" for i in addrs}
        out: dict[str, Any] = {"leader": me, "levels": []}
        write_json(args.progress, {"phase": "warm-up"})
        await measured_level(write, 100, 1.0, 2000, stats)
        plan = [(batch, inflight) for batch in args.batch for inflight in args.inflight]
        for k, (batch, inflight) in enumerate(plan):
            what = f"in-flight {inflight}" + (f", client_write_many batches of {batch}" if batch > 1 else "")
            write_json(args.progress, {"phase": f"{what} ({k + 1}/{len(plan)})"})
            out["levels"].append(await measured_level(write, inflight, args.duration, args.max_writes, stats,
                                                      batch=batch, write_many=write_many))
        write_json(args.result, out)
        await asyncio.sleep(args.linger)
        return 0
    finally:
        await server.close()
        await raft.shutdown()
        await store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m raftx.bench.node", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("kv", "inproc"))
    ap.add_argument("--stats", required=True, help="stats file of this process")
    ap.add_argument("--index", type=int)
    ap.add_argument("--addrs")
    ap.add_argument("--data-dir")
    ap.add_argument("--stats-dir")
    ap.add_argument("--result")
    ap.add_argument("--progress")
    ap.add_argument("--inflight", type=int, nargs="+", default=[1])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--max-writes", type=int, default=1_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--linger", type=float, default=60.0)
    ap.add_argument("--gc-gen0", type=int, default=GC_GEN0_THRESHOLD, metavar="N",
                    help="process setting: generation-0 GC threshold (0: Python's default)")
    argv = sys.argv[1:] if argv is None else list(argv)
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = ap.parse_args(own)
    count_log_fsyncs()
    if os.environ.get(TRACE_ENV):  # raftx bench --critical-path
        install_trace(os.environ[TRACE_ENV])
    writer = StatsWriter(args.stats).start()
    try:
        if args.kind == "kv":
            from raftx.kv import server

            return server.main(rest)
        set_gc_threshold(args.gc_gen0)
        return run_on_loop(_inproc(args), args.loop)
    finally:
        writer.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
