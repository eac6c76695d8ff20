"""``raftx serve`` as an operator runs it: JSON logs, SIGHUP, SIGTERM on a leader,
a removed member, pre-vote -- all with real node processes on 127.0.0.1.

Waits are on state (a file, a log line, another process's status), each bounded.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raftx.kv.client import KVClient
from raftx.launcher import LocalCluster, ManagedProcess, child_env, free_ports, wait_for_file

pytestmark = [pytest.mark.timeout(180), pytest.mark.durable]

WAIT = 30.0
TOKEN = "serve-ops-admin-token-0123456789"


def _wait(what: str, cond: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll another process's visible state (its files) until ``cond()`` is truthy."""
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return got


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _single(tmp_path: Path, *extra: str, name: str = "n1") -> tuple[ManagedProcess, str, Path]:
    (port,) = free_ports(1)
    ready = tmp_path / f"{name}.ready"
    node = ManagedProcess([sys.executable, "-m", "raftx", "serve", "--id", "1", "--listen", f"127.0.0.1:{port}",
                           "--data-dir", str(tmp_path / name), "--init", "--ready-file", str(ready), *extra],
                          log_path=tmp_path / f"{name}.out", env=child_env(), name=name)
    node.start()
    wait_for_file(ready, WAIT, [node])
    return node, f"127.0.0.1:{port}", ready


async def _status(addr: str, cluster: str = "raftx") -> dict[str, Any]:
    async with KVClient([addr], cluster_name=cluster, timeout=WAIT) as kv:
        st: dict[str, Any] = await kv.status()
        return st


def test_json_logs_and_sighup_reopens_the_log_file_and_rereads_the_level(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    cfg = tmp_path / "node.toml"
    cfg.write_text('log-level = "INFO"\nlog-format = "json"\n')
    node, addr, _ = _single(tmp_path, "--config", str(cfg), "--log-file", str(log))
    try:
        _wait("a leader", lambda: any("is leader of term" in x for x in _lines(log)))
        records = [json.loads(x) for x in _lines(log)]  # every line is one JSON object
        assert records and all(set(r) == {"time", "level", "node", "logger", "message", "fields"} for r in records)
        assert all(r["node"] == 1 and r["time"].endswith("Z") for r in records)
        assert any(r["logger"] == "raftx.engine.election" and r["level"] == "INFO" for r in records)
        # logrotate: move the file away, change the level in the config file, SIGHUP.
        rotated = tmp_path / "node.log.1"
        log.rename(rotated)
        cfg.write_text('log-level = "DEBUG"\nlog-format = "json"\n')
        node.send_signal(signal.SIGHUP)
        got = _wait("the reopened log", lambda: [json.loads(x) for x in _lines(log)
                                                  if "SIGHUP" in x])
        assert "log level DEBUG" in got[0]["message"] and "reopened" in got[0]["message"]
        node.send_signal(signal.SIGHUP)  # a second one as well
        _wait("two SIGHUPs", lambda: sum("SIGHUP" in x for x in _lines(log)) == 2)
        assert node.alive
        assert asyncio.run(_status(addr))["state"] == "Leader"  # still serving
        _wait("DEBUG records", lambda: any(json.loads(x)["level"] == "DEBUG" for x in _lines(log)))
        assert node.terminate(WAIT) == 0
        assert json.loads(_lines(log)[-1])["message"] == "node 1 stopped"
    finally:
        node.kill()


def test_sighup_without_a_log_file_keeps_the_node_running(tmp_path: Path) -> None:
    node, addr, _ = _single(tmp_path)
    try:
        node.send_signal(signal.SIGHUP)
        _wait("the SIGHUP line", lambda: "SIGHUP: log level INFO" in node.log_tail())
        assert node.alive and asyncio.run(_status(addr))["running"]
        assert node.terminate(WAIT) == 0
    finally:
        node.kill()


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    token = tmp_path / "admin-token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    c = LocalCluster(3, base_dir=tmp_path / "c", cluster_name="ops",
                     node_args=["--admin-token-file", str(token)])
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def test_sigterm_on_the_leader_hands_leadership_over_first(cluster: LocalCluster) -> None:
    old = asyncio.run(cluster.wait_for_leader(WAIT))
    term = asyncio.run(cluster.statuses())[old]["term"]
    assert cluster.terminate(old, grace=WAIT) == 0
    log = cluster.nodes[old].log_tail(20000)
    # The old leader saw another node lead *before* it stopped: that can only be the
    # transfer (it still led and sent heartbeats until then), not an election timeout.
    handed = [x for x in log.splitlines() if "handed leadership to node" in x]
    assert handed, log
    new = int(handed[0].split("handed leadership to node ")[1].split()[0])
    assert log.index("handed leadership to node") < log.index(f"node {old} stopping")
    assert asyncio.run(cluster.wait_for_leader(WAIT, exclude=[old])) == new
    assert asyncio.run(cluster.statuses())[new]["term"] == term + 1  # one election: the transfer's


def test_sigterm_on_a_follower_just_stops(cluster: LocalCluster) -> None:
    leader = asyncio.run(cluster.wait_for_leader(WAIT))
    follower = next(i for i in cluster.nodes if i != leader)
    assert cluster.terminate(follower, grace=WAIT) == 0
    assert "handing leadership" not in cluster.nodes[follower].log_tail(20000)
    assert asyncio.run(cluster.wait_for_leader(WAIT)) == leader


def test_a_removed_member_exits_0(cluster: LocalCluster) -> None:
    leader = asyncio.run(cluster.wait_for_leader(WAIT))
    victim = next(i for i in cluster.nodes if i != leader)

    async def remove() -> Any:
        async with cluster.client(admin_token=TOKEN.encode(), timeout=WAIT) as kv:
            return await kv.member_remove(victim, timeout=WAIT)

    assert asyncio.run(remove())["members"] == sorted(set(cluster.nodes) - {victim})
    assert cluster.nodes[victim].wait(WAIT) == 0
    assert "was removed from the membership" in cluster.nodes[victim].log_tail()
    assert cluster.nodes[leader].alive


def test_pre_vote_is_on_a_paused_follower_does_not_depose_the_leader(cluster: LocalCluster) -> None:
    """A follower paused past its election timeout comes back with its timer expired:
    with pre-vote (serve's default) it asks first, the others still hear the leader
    and refuse, so no term is spent and the leader stays (thesis §9.6)."""
    leader = asyncio.run(cluster.wait_for_leader(WAIT))
    before = asyncio.run(cluster.statuses())
    follower = next(i for i in cluster.nodes if i != leader)
    cluster.nodes[follower].send_signal(signal.SIGSTOP)
    try:
        # Let the others go on: a write commits without the paused node.
        async def write() -> None:
            async with cluster.client(timeout=WAIT) as kv:
                await kv.put("k", "v")
        asyncio.run(write())
        time.sleep(1.0)  # the scenario itself: a pause longer than election_timeout_max (600 ms)
    finally:
        cluster.nodes[follower].send_signal(signal.SIGCONT)

    async def caught_up() -> dict[int, dict[str, Any]]:
        async with asyncio.timeout(WAIT):
            while True:
                st = await cluster.statuses()
                if len(st) == 3 and st[follower]["last_applied"] == st[leader]["last_applied"]:
                    return st
                await asyncio.sleep(0.05)  # other processes' state: poll

    after = asyncio.run(caught_up())
    term = before[leader]["term"]
    assert {i: s["term"] for i, s in after.items()} == {1: term, 2: term, 3: term}
    assert after[leader]["state"] == "Leader"


def test_connection_budget_flags_reach_the_server(tmp_path: Path) -> None:
    """--max-connections 0 (here from RAFTX_MAX_CONNECTIONS): the running node refuses
    every client hello, and the client is told why."""
    (port,) = free_ports(1)
    ready = tmp_path / "ready"
    node = ManagedProcess([sys.executable, "-m", "raftx", "serve", "--id", "1", "--listen", f"127.0.0.1:{port}",
                           "--data-dir", str(tmp_path / "n1"), "--init", "--ready-file", str(ready)],
                          log_path=tmp_path / "n1.out", env={**child_env(), "RAFTX_MAX_CONNECTIONS": "0"}, name="n1")
    try:
        node.start()
        wait_for_file(ready, WAIT, [node])
        r = subprocess.run([sys.executable, "-m", "raftx", "status", f"127.0.0.1:{port}", "--timeout", "5"],
                           capture_output=True, text=True, env=child_env(), timeout=60)
        assert r.returncode == 1 and "refused" in r.stdout and "max_connections" in r.stdout, r.stdout
    finally:
        node.kill()
