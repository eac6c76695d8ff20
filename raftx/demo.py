"""``raftx demo``: a 3-node cluster loses its leader and nothing acknowledged is lost.

Step by step, printed as it happens:

1. start three key-value node processes (``python -m raftx.kv.server``) on 127.0.0.1,
   each with a segmented log (fsync on) in a temporary directory;
2. wait for an election (§5.2) and write keys through `raftx.kv.KVClient`, which is
   given plain ``HOST:PORT`` addresses and finds the leader itself;
3. kill the leader with SIGKILL (a crash: nothing flushed, no goodbye) while a writer
   keeps writing; the survivors elect a new leader and the writes resume;
4. restart the old leader from its data directory; it comes back as a follower and
   catches up from the new leader's log (§5.3);
5. read back every acknowledged write, linearizably through the leader (thesis §6.4)
   and from the restarted node's own applied state: Leader Completeness (§5.4) says
   none may be missing.

The nodes and the temporary directory are removed on every exit path (also Ctrl-C or
SIGTERM). Exit code 0 when every acknowledged write was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from raftx import cli_config
from raftx.errors import RaftError, Timeout
from raftx.kv.client import KVClient
from raftx.launcher import LocalCluster

__all__ = ["main", "run_demo", "sigterm_as_interrupt"]

logger = logging.getLogger(__name__)

CLUSTER = "raftx-demo"
WAIT = 30.0


class _Writer:
    """Writes ``demo-<n>`` keys one after another and remembers what was acknowledged."""

    def __init__(self, kv: KVClient) -> None:
        self.kv = kv
        self.acked: dict[str, bytes] = {}
        self.unknown = 0  # timed out: may or may not have been applied, so not counted
        self._n = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def write(self, count: int) -> None:
        for _ in range(count):
            await self._one()

    async def _one(self) -> None:
        self._n += 1
        key, value = f"demo-{self._n:05d}", f"value {self._n} written at {time.time():.3f}".encode()
        try:
            await self.kv.put(key, value)
        except Timeout:
            self.unknown += 1
        else:
            self.acked[key] = value

    def start_background(self) -> None:
        async def loop() -> None:
            while not self._stop.is_set():
                await self._one()

        self._task = asyncio.ensure_future(loop())

    async def stop_background(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


async def run_demo(out: TextIO, base_dir: Path, writes: int = 50) -> bool:
    """Run the scenario (module docstring) with its data under ``base_dir``; True if no
    acknowledged write was lost. The caller removes ``base_dir``."""
    t0 = time.monotonic()

    def say(text: str) -> None:
        out.write(f"[{time.monotonic() - t0:5.1f}s] {text}\n")
        out.flush()

    cluster = LocalCluster(3, base_dir=base_dir, cluster_name=CLUSTER,
                           node_args=["--log-level", "WARNING", "--heartbeat-ms", "50",
                                      "--election-timeout-ms", "300", "600"])
    try:
        say(f"starting 3 raftx nodes on 127.0.0.1, data in {base_dir}")
        cluster.start()
        for i, p in cluster.nodes.items():
            say(f"  node {i}: {cluster.addrs[i]} (pid {p.pid})")
        leader = await cluster.wait_for_leader(WAIT)
        say(f"node {leader} was elected leader (§5.2)")

        addrs = list(cluster.addrs.values())
        async with KVClient(addrs, cluster_name=CLUSTER, timeout=WAIT, attempt_timeout=2.0) as kv:
            writer = _Writer(kv)
            t = time.monotonic()
            await writer.write(writes)
            say(f"wrote {writes} keys through KVClient({', '.join(addrs)}) in {time.monotonic() - t:.2f}s; "
                f"each one acknowledged only once committed on a majority (§5.3)")
            key = next(iter(writer.acked))
            say(f"read {key!r} back (linearizable): {await kv.get(key)!r}")

            say(f"killing the leader, node {leader} (pid {cluster.nodes[leader].pid}), with SIGKILL "
                f"while a client keeps writing")
            writer.start_background()
            t = time.monotonic()
            cluster.kill(leader)
            before = len(writer.acked)
            new = await cluster.wait_for_leader(WAIT, exclude=[leader])
            say(f"node {new} is the new leader after {time.monotonic() - t:.2f}s "
                f"(its log holds every committed entry, §5.4.1)")
            await _wait_for(lambda: len(writer.acked) >= before + writes, "writes resume on the new leader")
            await writer.stop_background()
            say(f"writes continued: {len(writer.acked)} acknowledged so far"
                + (f" ({writer.unknown} timed out: outcome unknown, not counted)" if writer.unknown else ""))

            cluster.restart(leader)
            say(f"restarted node {leader} from its data directory (pid {cluster.nodes[leader].pid})")
            st = await _caught_up(cluster, leader, new)
            say(f"node {leader} is back as a {st['state']} of term {st['term']} and caught up: "
                f"applied index {st['last_applied']} (§5.3)")

            lost = []
            for k, v in writer.acked.items():
                if await kv.get(k) != v:
                    lost.append(k)
            say(f"read all {len(writer.acked)} acknowledged keys through the leader: "
                f"{len(writer.acked) - len(lost)} present with the written value")
            async with KVClient([cluster.addrs[leader]], cluster_name=CLUSTER, timeout=WAIT) as old:
                stale_missing = [k for k, v in writer.acked.items()
                                 if await old.get(k, linearizable=False) != v]
            say(f"node {leader}'s own state machine has {len(writer.acked) - len(stale_missing)} of them")

        from raftx.cli import fetch_statuses, print_status_table

        out.write("\n")
        print_status_table(await fetch_statuses(addrs, CLUSTER, 3.0), out)
        out.write("\n")
        ok = not lost and not stale_missing
        if ok:
            say(f"no acknowledged write was lost ({len(writer.acked)} checked); stopping the nodes")
        else:
            say(f"LOST acknowledged writes: {sorted(set(lost) | set(stale_missing))[:20]}")
        codes = await asyncio.to_thread(cluster.stop)
        say("nodes stopped (exit codes " + ", ".join(f"{i}: {c}" for i, c in codes.items()) + ")")
        return ok
    finally:
        cluster.cleanup()  # kills whatever still runs (also on Ctrl-C / errors)


async def _wait_for(predicate: Any, what: str) -> None:
    """Poll ``predicate`` (state owned by another task of this loop) for up to WAIT s."""
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.05)


async def _caught_up(cluster: LocalCluster, node: int, leader: int) -> dict[str, Any]:
    """``node``'s status once it applied everything the leader had committed."""
    async with asyncio.timeout(WAIT):
        while True:
            st = await cluster.statuses(2.0)
            if node in st and leader in st and st[node]["last_applied"] is not None \
                    and st[leader]["committed"] is not None and st[node]["last_applied"] >= st[leader]["committed"]:
                return st[node]
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM acts as Ctrl-C, so the demo cleans up the same way
    (``finally`` blocks kill child processes and remove temp dirs)."""

    def interrupt(signum: int, frame: Any) -> None:
        # Delegate to the current SIGINT handler: inside asyncio.run that is the
        # runner's, which cancels the main task. Raising KeyboardInterrupt here
        # instead can land in a weakref callback or __del__, where Python prints
        # "Exception ignored" and the interrupt is lost.
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signum, frame)

    previous = signal.signal(signal.SIGTERM, interrupt)
    # Ctrl-C too, even when started with SIGINT ignored (a background job of a shell
    # without job control inherits SIG_IGN, and Python then leaves it ignored).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raftx demo``; returns the exit code."""
    ap = argparse.ArgumentParser(prog="raftx demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=50, help="keys written before and during the failover")
    ap.add_argument("--keep", action="store_true", help="keep the data directory (its path is printed)")
    args = cli_config.parse_args(ap, argv)
    if args.writes < 1:
        ap.error("--writes must be >= 1")
    logging.basicConfig(stream=sys.stderr, level=logging.CRITICAL)  # the nodes' restarts make expected noise
    base = Path(tempfile.mkdtemp(prefix="raftx-demo-"))
    try:
        with sigterm_as_interrupt():
            ok = asyncio.run(run_demo(sys.stdout, base, args.writes))
    except KeyboardInterrupt:
        sys.stdout.write("\ninterrupted: nodes killed, cleaning up\n")
        return 130
    except RaftError as exc:
        sys.stdout.write(f"demo failed: {type(exc).__name__}: {exc}\n")
        return 1
    finally:
        if args.keep:
            sys.stdout.write(f"data kept in {base}\n")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
