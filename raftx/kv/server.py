"""Run one key-value node as a process: ``python -m raftx.kv.server`` (``raftx serve``).

::

    python -m raftx.kv.server --id 1 --listen 127.0.0.1:7001 \\
        --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir ./n1 --init

The node keeps its log in ``DATA_DIR/log`` (`raftx.storage.SegmentedLogStore`,
fsync on) and its snapshots in ``DATA_DIR/snapshots`` (`raftx.kv.KVStateMachine`),
and serves Raft RPCs and ``kv.*`` clients on ``--listen`` (`KVNodeServer`).
``--init`` initializes a pristine cluster with this node (at its ``--advertise``
address, default ``--listen``) and the peers as voters (ignored when the node already
has state, so it is safe on every restart and on every node). Every flag can come
from ``RAFTX_<FLAG>`` or a ``--config`` TOML file, and ``--check-config`` validates and
prints the result without starting (`raftx.kv.serve_config`); ``--log-format json``
and ``--log-file`` are `raftx.kv.serve_logging`'s. ``--tls-cert/--tls-key/--tls-ca`` run mutual TLS and
``--admin-token-file`` sets the membership admin token (`raftx.cli_tls`, SECURITY.md).
SIGTERM or SIGINT stops it cleanly: a leader first hands leadership over
(`raftx.kv.serve_lifecycle.hand_over`), then the server closes, the node shuts down,
the log is closed (exit code 0). SIGHUP never stops it: it reopens ``--log-file`` and
re-reads the log level. A node that learns it was removed from the membership logs it
and exits 0 (`raftx.kv.serve_lifecycle.wait_removed`). ``--metrics-addr HOST:PORT``
serves HTTP ``/health``, ``/ready`` and ``/metrics`` (`raftx.kv.monitor.MonitorServer`).
If the node stops on its own with
`raftx.errors.Fatal` (a storage failure, DESIGN §2 rule 7), the process logs the cause
and exits at once with `EXIT_FATAL`, also when a SIGTERM comes after the failure: a
stopped node must not keep its port and look alive, so that a supervisor (systemd,
Kubernetes) restarts it. uvloop is used when
installed unless ``--loop asyncio``. ``--gc-gen0 N`` sets the process's
generation-0 garbage collection threshold (`GC_GEN0_THRESHOLD` by default): a
process setting, made here and never by the library.

``main(argv)`` is the entry point (returns the exit code): ``raftx serve`` can
hand its arguments to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TYPE_CHECKING, TypeVar

from raftx import cli_config, cli_tls
from raftx.config import DEFAULT_CLUSTER_NAME, Config
from raftx.errors import ConfigError, Fatal, NotAllowed, RaftError
from raftx.kv import serve_config, serve_lifecycle, serve_logging
from raftx.kv.monitor import MonitorServer
from raftx.kv.serve_config import MAX_PAYLOAD_ENTRIES
from raftx.kv.service import KVNodeServer
from raftx.kv.state_machine import KVStateMachine
from raftx.network.raft_rpc import TcpNetworkFactory
from raftx.storage.fileio import FileIO
from raftx.runtime.tasks import first_of
from raftx.storage import SegmentedLogStore
from raftx.types import BasicNode

if TYPE_CHECKING:
    from raftx.raft import Raft

__all__ = ["EXIT_FATAL", "GC_GEN0_THRESHOLD", "MAX_PAYLOAD_ENTRIES", "build_parser", "main", "run_on_loop", "serve",
           "set_gc_threshold"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: The node process's generation-0 collection threshold (Python's default: 700).
#: A node under load keeps many short-lived objects alive while writes are in
#: flight (futures, entries, responses), so the default collects young objects
#: thousands of times a second for nothing; a larger gen-0 budget collects them
#: far less often. A *process* setting made by `main`, never by the library.
GC_GEN0_THRESHOLD = 50_000

#: Exit code of a node process whose node stopped with `raftx.errors.Fatal`
#: (70 = EX_SOFTWARE in sysexits.h; 1 is a failure to start, 2 bad usage).
EXIT_FATAL = 70


def set_gc_threshold(gen0: int) -> None:
    """Set this process's generation-0 GC threshold to ``gen0`` (0: leave Python's
    default), keeping the older generations' thresholds."""
    if gen0 < 0:
        raise ValueError(f"gc generation-0 threshold must be >= 0, got {gen0}")
    if gen0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0, gen1, gen2)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="raftx serve", description="Run one raftx key-value node.")
    ap.add_argument("--id", type=int, required=True, help="this node's id (>= 0)")
    ap.add_argument("--listen", required=True, metavar="HOST:PORT", help="address for peers and clients")
    ap.add_argument("--peer", action="append", default=[], metavar="ID=HOST:PORT", help="another voter (repeat)")
    ap.add_argument("--data-dir", required=True, type=Path, help="log and snapshots live here")
    ap.add_argument("--init", action="store_true", help="initialize the cluster if this node is pristine")
    ap.add_argument("--cluster-name", default=DEFAULT_CLUSTER_NAME,
                    help=f"must match on every node and client (default {DEFAULT_CLUSTER_NAME!r})")
    ap.add_argument("--heartbeat-ms", type=int, default=50)
    ap.add_argument("--election-timeout-ms", type=int, nargs=2, default=[300, 600], metavar=("MIN", "MAX"))
    ap.add_argument("--snapshot-every", type=int, default=100_000, metavar="N",
                    help="build a snapshot after N applied entries (0: never)")
    keep = Config().max_in_snapshot_log_to_keep
    ap.add_argument("--snapshot-keep-log", type=int, default=keep, metavar="N",
                    help="entries a snapshot covers that stay in the log for lagging followers "
                         f"(Config.max_in_snapshot_log_to_keep, default {keep})")
    ap.add_argument("--allow-log-reversion", action="store_true",
                    help="as leader, replicate again from scratch to a follower that lost its log "
                         "(Config.allow_log_reversion; can lose committed data, see README)")
    ap.add_argument("--no-fsync", action="store_true", help="NOT DURABLE: skip fsync (benchmarks only)")
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument("--ready-file", type=Path, help="write the listen address here once serving")
    ap.add_argument("--metrics-addr", metavar="HOST:PORT",
                    help="serve HTTP /health, /ready and /metrics (Prometheus) here (raftx.kv.monitor; "
                         "/metrics needs the 'metrics' extra: pip install 'raftx[metrics]')")
    ap.add_argument("--gc-gen0", type=int, default=GC_GEN0_THRESHOLD, metavar="N",
                    help="process setting: the generation-0 garbage collection threshold of this node "
                         f"process (default {GC_GEN0_THRESHOLD}; Python's own is 700; 0 keeps Python's)")
    cli_tls.add_serve_options(ap)
    serve_config.add_options(ap)
    serve_logging.add_options(ap)
    return ap


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None,
                plan: serve_config.NodePlan | None = None, on_hangup: Callable[[], None] | None = None) -> int:
    """Run the node until ``stop`` is set, SIGTERM/SIGINT arrives or the node learns
    it was removed from the membership (``plan``: the validated
    `serve_config.NodePlan`, made from ``args`` when not given; ``on_hangup``: what
    SIGHUP does, default: log it). A leader hands leadership over before it stops."""
    from raftx.raft import Raft

    plan = plan or serve_config.make_plan(args)
    host, port, peers, config = plan.host, plan.port, plan.peers, plan.config
    server_ssl, peer_ssl, admin_token = cli_tls.serve_credentials(args, args.id, host)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):  # SIGHUP must never kill the node
        loop.add_signal_handler(signal.SIGHUP, on_hangup or (lambda: logger.info("SIGHUP: nothing to reload")))
    data = Path(args.data_dir)
    async with contextlib.AsyncExitStack() as stack:  # unwinds: server, node, then the log
        store = await SegmentedLogStore.open(data / "log", fsync=not args.no_fsync,
                                             cluster_name=args.cluster_name, node_id=args.id)
        stack.push_async_callback(store.close)
        sm = await KVStateMachine.open(data / "snapshots", fsync=not args.no_fsync)
        raft = await Raft.new(args.id, config, TcpNetworkFactory(ssl=peer_ssl), store, sm)
        stack.push_async_callback(raft.shutdown)
        server = await stack.enter_async_context(KVNodeServer(raft, sm, host, port, ssl=server_ssl,
                                                              admin_token=admin_token, **plan.server_options))
        advertised = plan.advertised(server.port)
        logger.info("node %d serving on %s, advertised as %s (cluster %r, data %s, loop %s, tls %s, admin token "
                    "%s, pre-vote %s)", args.id, server.addr, advertised, args.cluster_name, data,
                    type(loop).__module__, server_ssl is not None, admin_token is not None, config.enable_pre_vote)
        if plan.metrics is not None:
            monitor = await stack.enter_async_context(MonitorServer(raft, store, server.rpc.stats, *plan.metrics))
            logger.info("node %d: /health, /ready, /metrics on http://%s", args.id, monitor.addr)
        if args.init:
            members = {args.id: BasicNode(advertised), **{i: BasicNode(a) for i, a in peers.items()}}
            try:
                await raft.initialize(members)
                logger.info("initialized the cluster with %s", sorted(members))
            except NotAllowed:
                logger.info("already initialized; --init ignored")
        if args.ready_file is not None:
            # A marker for whoever started us (whole or absent, never half), not durable state.
            FileIO().write_atomic(os.fspath(args.ready_file), server.addr.encode(), sync=False)
        removed = serve_lifecycle.wait_removed(raft, config.cluster_name, 2 * config.election_timeout_max / 1000,
                                               lambda: server.rpc.stats.requests, peer_ssl)
        fatal = await _until_stopped(raft, stop, removed)
        if fatal is not None:
            logger.error("node %d stopped: %s; exiting with status %d so that a supervisor restarts it",
                         args.id, fatal, EXIT_FATAL)
            return EXIT_FATAL
        if stop.is_set():  # asked to stop, not removed: a leader hands over first (thesis §3.10)
            await serve_lifecycle.hand_over(raft, 3 * config.election_timeout_max / 1000)
        logger.info("node %d stopping", args.id)
    logger.info("node %d stopped", args.id)
    return 0


async def _until_stopped(raft: Raft, stop: asyncio.Event, removed: Coroutine[Any, Any, None]) -> Fatal | None:
    """Wait for ``stop``, for the node to stop on its own or to be removed from the
    membership; the `Fatal` that stopped it (None: asked to stop or removed, and the
    node still runs)."""
    async def node_stopped() -> None:
        async for m in raft.metrics():
            if m.running_state is not None:
                return

    await first_of([stop.wait(), node_stopped(), removed])
    fatal: Fatal | None = raft.metrics().borrow().running_state  # also when SIGTERM came after it
    return fatal


def _runner(choice: str) -> asyncio.Runner:
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("--loop uvloop: uvloop is not installed (pip install 'raftx[fast]')") from None
        else:
            return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def run_on_loop(coro: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """Run ``coro`` to completion on uvloop (``auto``: when installed) or on asyncio's
    own loop (``asyncio``); the process-level choice of ``--loop`` options."""
    with _runner(choice) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the node, return the exit code."""
    # Until the loop's handler is installed, a SIGHUP must not kill the node either.
    with contextlib.suppress(ValueError, AttributeError):  # not in the main thread / no SIGHUP
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    argv = sys.argv[1:] if argv is None else argv
    try:
        layered = cli_config.layered_parse(build_parser(), argv, file_tables=("raft",))
        args = layered.args
        if args.gc_gen0 < 0:
            raise ConfigError("--gc-gen0 must be >= 0")
        if not isinstance(logging.getLevelName(args.log_level.upper()), int):
            raise ConfigError(f"--log-level {args.log_level!r}: not a level (DEBUG, INFO, WARNING, ERROR)")
        plan = serve_config.make_plan(args, layered.table.get("raft"), str(layered.config_file))
        if args.check_config:
            cli_tls.serve_credentials(args, args.id, plan.host)  # the TLS files load and name this node
            json.dump(serve_config.effective_config(plan, args, layered.sources, layered.config_file),
                      sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
    except ConfigError as exc:
        sys.stderr.write(f"raftx serve: {exc}\n")
        return 2
    set_gc_threshold(args.gc_gen0)

    def read_level() -> str:  # SIGHUP: the same layers again (the config file may have changed)
        return str(cli_config.layered_parse(build_parser(), argv, file_tables=("raft",)).args.log_level)

    try:
        logs = serve_logging.ServeLogging(args.id, args.log_format, args.log_level, args.log_file, read_level)
    except OSError as exc:
        sys.stderr.write(f"raftx serve: --log-file {args.log_file}: {exc.strerror or exc}\n")
        return 2
    try:
        with _runner(args.loop) as runner:
            return runner.run(serve(args, plan=plan, on_hangup=logs.reload))
    except RaftError as exc:
        logger.error("node %d failed: %s", args.id, exc)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
