"""``raftx serve`` exits at once, non-zero, when its node stops with ``Fatal`` (issue 10, bug 3).

A real ``raftx serve`` process (through `raftx.cli.main`) runs with a file-size limit
(RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write past it fails with EFBIG): once its
log segment reaches the limit, the log append fails, the node stops with
`raftx.errors.Fatal` (DESIGN §2 rule 7), and the process must log the cause and exit
with `raftx.kv.server.EXIT_FATAL` by itself instead of keeping its port. Bounded waits.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from raftx.errors import RaftError
from raftx.kv import KVClient
from raftx.kv.server import EXIT_FATAL
from raftx.launcher import ManagedProcess, child_env, free_ports, wait_for_file

pytestmark = [pytest.mark.timeout(120), pytest.mark.durable]

WAIT = 30.0
LIMIT = 1 << 20  # bytes any file of the node process may grow to

_WITH_FSIZE_LIMIT = (
    "import resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))\n"
    "from raftx.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


async def _write_until_refused(addr: str) -> int:
    """Put 32 KiB values until the node stops answering; how many were acknowledged."""
    acked = 0
    async with KVClient([f"1={addr}"], cluster_name="fatal-test", timeout=5.0, attempt_timeout=2.0) as kv:
        for k in range(4 * LIMIT // 32768):
            try:
                await kv.put(f"k{k}", b"x" * 32768)
            except RaftError:
                return acked
            acked += 1
    return acked


def test_serve_exits_non_zero_when_the_node_stops_with_fatal(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    addr = f"127.0.0.1:{port}"
    ready = tmp_path / "ready"
    p = ManagedProcess([sys.executable, "-c", _WITH_FSIZE_LIMIT, "serve", "--id", "1", "--listen", addr,
                        "--data-dir", str(tmp_path / "data"), "--cluster-name", "fatal-test", "--init",
                        "--ready-file", str(ready)],
                       log_path=tmp_path / "node.log", env=child_env(), name="raftx-serve-fatal")
    p.start()
    try:
        wait_for_file(ready, WAIT, [p])
        acked = asyncio.run(_write_until_refused(addr))
        assert acked < 4 * LIMIT // 32768, "the file-size limit never failed a write"
        code = p.wait(WAIT)  # exits by itself: no SIGTERM needed
        log = p.log_tail(20000)
        assert code == EXIT_FATAL, log
        assert "File too large" in log and "so that a supervisor restarts it" in log, log
    finally:
        p.kill()
