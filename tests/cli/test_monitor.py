"""``raftx serve --metrics-addr``: real node processes, real HTTP requests.

``/health`` and ``/ready`` answer 200 on a healthy 3-node cluster and 503 with a
reason once the node lost its leader (two of three killed) or never had one (a
pristine node); ``/metrics`` is parsed with `prometheus_client.parser` and its values
are checked against the writes made; malformed HTTP gets 400/404/405 and the node
stays healthy. ``raftx health`` exits 0 / 1 with its reason, ``raftx status`` exits
1 for an unreachable node and for a cluster without a leader. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from raftx.cli import main
from raftx.launcher import LocalCluster, free_ports

from clikit import serving

pytest.importorskip("prometheus_client", reason="/metrics needs the 'metrics' extra (prometheus-client)")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

pytestmark = [pytest.mark.timeout(240)]

CLUSTER = "monitor-test"
WAIT = 30.0
WRITES = 25


def with_metrics(c: LocalCluster) -> dict[int, str]:
    """Give every node of ``c`` a ``--metrics-addr``; node id -> ``host:port``."""
    ports = free_ports(len(c.nodes))
    addrs = {}
    for (i, p), port in zip(sorted(c.nodes.items()), ports):
        addrs[i] = f"127.0.0.1:{port}"
        p.argv += ["--metrics-addr", addrs[i]]
    return addrs


def get(addr: str, path: str) -> tuple[int, bytes]:
    """(status, body) of ``GET http://addr/path``."""
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_status(addr: str, path: str, want: int, timeout: float = WAIT) -> dict[str, Any]:
    """Poll ``path`` (another process's state: nothing to wait on) until it answers ``want``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = get(addr, path)
        except OSError:
            status, body = -1, b"{}"
        if status == want:
            return json.loads(body)  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} at {addr}: {status} {body!r}, not {want} within {timeout}s")
        time.sleep(0.05)


def families(addr: str) -> dict[str, Any]:
    status, body = get(addr, "/metrics")
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def hist_count(fams: dict[str, Any], name: str) -> float:
    """The ``_count`` of histogram ``name``."""
    assert fams[name].type == "histogram"
    return next(float(s.value) for s in fams[name].samples if s.name == name + "_count")


def value(fams: dict[str, Any], name: str, **labels: str) -> float:
    for s in fams[name].samples:
        if s.labels == labels and s.name in (name, name + "_total"):
            return float(s.value)
    raise KeyError(f"{name} {labels}: {fams[name].samples}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, dict[int, str]]]:
    c = LocalCluster(3, base_dir=tmp_path_factory.mktemp("monitor"), cluster_name=CLUSTER)
    maddrs = with_metrics(c)
    for c in serving(c):
        async def write() -> None:
            async with c.client() as kv:
                for k in range(WRITES):
                    await kv.put(b"k%d" % k, b"v%d" % k)
        asyncio.run(write())
        yield c, maddrs


@contextlib.contextmanager
def running(c: LocalCluster) -> Iterator[LocalCluster]:
    """`serving` as a context manager: the nodes are stopped also when the body fails."""
    yield from serving(c)


def _leader(c: LocalCluster) -> int:
    return asyncio.run(c.wait_for_leader(WAIT))


def test_health_and_ready_answer_200_on_every_node(cluster: tuple[LocalCluster, dict[int, str]]) -> None:
    c, maddrs = cluster
    leader = _leader(c)
    for i, addr in maddrs.items():
        health = wait_status(addr, "/health", 200)
        assert health["health"] is True and health["leader"] == leader and health["id"] == i
        ready = wait_status(addr, "/ready", 200)
        assert ready["ready"] is True and ready["applied"] >= ready["target"] >= 0


def test_metrics_parse_and_match_the_cluster(cluster: tuple[LocalCluster, dict[int, str]]) -> None:
    c, maddrs = cluster
    leader = _leader(c)
    lf = families(maddrs[leader])
    assert value(lf, "raftx_server_is_leader") == 1
    assert value(lf, "raftx_server_state", state="Leader") == 1
    assert value(lf, "raftx_server_has_leader") == 1
    assert value(lf, "raftx_server_leader_changes_seen") >= 1
    assert value(lf, "raftx_server_term") >= 1
    assert value(lf, "raftx_server_proposals_committed") >= WRITES
    assert value(lf, "raftx_server_proposals_failed") == 0
    committed = value(lf, "raftx_server_committed_index")
    assert committed >= WRITES and value(lf, "raftx_server_last_log_index") >= committed
    assert value(lf, "raftx_server_applied_index") <= committed
    assert value(lf, "raftx_server_snapshot_index") == -1 and value(lf, "raftx_server_purged_index") == -1
    followers = {s.labels["follower"] for s in lf["raftx_server_follower_matched_index"].samples}
    assert followers == {str(i) for i in c.nodes if i != leader}
    for f in followers:
        assert value(lf, "raftx_server_follower_lag_entries", follower=f) >= 0
    assert hist_count(lf, "raftx_server_proposal_duration_seconds") >= 1  # one per client_write_many batch
    assert value(lf, "raftx_disk_wal_fsync") > 0
    assert hist_count(lf, "raftx_disk_wal_fsync_duration_seconds") > 0
    for name in ("raftx_network_sent_bytes", "raftx_network_received_bytes",
                 "raftx_network_sent_frames", "raftx_network_received_frames"):
        assert value(lf, name, side="server") > 0 and value(lf, name, side="client") > 0, name
    assert value(lf, "raftx_network_refused_requests", reason="unauthorized") == 0
    assert value(lf, "process_resident_memory_bytes") > 0 and "python_info" in lf
    assert value(lf, "raftx_network_refused_connections", reason="hello_rejected") >= 0
    for i in c.nodes:
        if i != leader:
            ff = families(maddrs[i])
            assert value(ff, "raftx_server_is_leader") == 0
            assert value(ff, "raftx_server_leader_id") == leader
            assert ff["raftx_server_follower_matched_index"].samples == []
            assert hist_count(ff, "raftx_server_apply_duration_seconds") >= 1


def test_refused_hello_is_counted(cluster: tuple[LocalCluster, dict[int, str]]) -> None:
    """A client of another cluster is refused; the refusal shows in /metrics."""
    from raftx.kv.client import KVClient

    c, maddrs = cluster
    before = value(families(maddrs[1]), "raftx_network_refused_connections", reason="hello_rejected")

    async def stranger() -> None:
        async with KVClient([c.addrs[1]], cluster_name="another-cluster", timeout=1, attempt_timeout=1) as kv:
            with pytest.raises(Exception):
                await kv.status()

    asyncio.run(stranger())
    after = value(families(maddrs[1]), "raftx_network_refused_connections", reason="hello_rejected")
    assert after > before


def _raw(addr: str, data: bytes) -> bytes:
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("request_bytes, status", [
    (b"garbage\r\n\r\n", b"400"),
    (b"GET /health\r\n\r\n", b"400"),
    (b"POST /health HTTP/1.1\r\n\r\n", b"405"),
    (b"GET /nothing HTTP/1.1\r\n\r\n", b"404"),
    (b"GET /health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"400"),
    (b"GET /health HTTP/1.1\r\nHost: x", b"400"),  # closed before the head ended
    (b"\xff\xfe\x00 \x01 HTTP/1.1\r\n\r\n", b"405"),
])
def test_bad_requests_get_an_error_and_the_node_stays_healthy(
        cluster: tuple[LocalCluster, dict[int, str]], request_bytes: bytes, status: bytes) -> None:
    c, maddrs = cluster
    answer = _raw(maddrs[2], request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert _raw(maddrs[2], b"HEAD /health HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert get(maddrs[2], "/health")[0] == 200
    assert all(p.alive for p in c.nodes.values())


def test_raftx_health_and_status_exit_0_on_a_healthy_cluster(
        cluster: tuple[LocalCluster, dict[int, str]], capsys: pytest.CaptureFixture[str]) -> None:
    c, _ = cluster
    _leader(c)
    endpoints = ",".join(c.addrs.values())
    assert main(["health", "--endpoints", endpoints, "--cluster-name", CLUSTER]) == 0, capsys.readouterr()
    assert capsys.readouterr().out.startswith("healthy: leader ")
    assert main(["status", *c.addrs.values(), "--cluster-name", CLUSTER]) == 0, capsys.readouterr()


def test_losing_the_quorum_turns_health_503_and_the_clis_to_exit_1(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    c = LocalCluster(3, base_dir=tmp_path, cluster_name=CLUSTER, node_args=["--no-fsync"])
    maddrs = with_metrics(c)
    with running(c):
        leader = _leader(c)
        survivor = next(i for i in c.nodes if i != leader)
        wait_status(maddrs[survivor], "/health", 200)
        for i in c.nodes:
            if i != survivor:
                c.kill(i)
        body = wait_status(maddrs[survivor], "/health", 503)
        assert body["health"] is False and body["reason"], body
        endpoints = ",".join(c.addrs.values())
        assert main(["health", "--endpoints", endpoints, "--cluster-name", CLUSTER, "--timeout", "1"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("UNHEALTHY: ") and "unreachable" in err, err
        assert main(["status", *c.addrs.values(), "--cluster-name", CLUSTER, "--timeout", "1"]) == 1
        assert "unreachable" in capsys.readouterr().err


def test_a_node_without_leader_is_not_healthy_not_ready_and_status_exits_1(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A pristine node (no --init): reachable, but no leader; before this change
    ``raftx status`` exited 0 here."""
    c = LocalCluster(1, base_dir=tmp_path, cluster_name=CLUSTER, node_args=["--no-fsync"])
    maddrs = with_metrics(c)
    c.nodes[1].argv.remove("--init")
    c.nodes[1].argv[2:3] = ["raftx", "serve"]
    try:
        c.start()
        health = wait_status(maddrs[1], "/health", 503)
        assert health["reason"] == "no leader known", health
        ready = wait_status(maddrs[1], "/ready", 503)
        assert ready["ready"] is False and ready["target"] is None
        assert main(["status", c.addrs[1], "--cluster-name", CLUSTER]) == 1
        captured = capsys.readouterr()
        assert "UNREACHABLE" not in captured.out
        assert "no node that answered knows a leader" in captured.err
        assert main(["status", c.addrs[1], "--cluster-name", CLUSTER, "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["problems"] == ["no node that answered knows a leader"] and doc["nodes"][0]["ok"]
        assert main(["health", "-e", c.addrs[1], "--cluster-name", CLUSTER]) == 1
        assert "no leader" in capsys.readouterr().err
    finally:
        c.cleanup()


def test_a_restarted_lagging_follower_is_ready_only_after_catching_up(tmp_path: Any) -> None:
    """/ready waits for the leader's commit index, not the follower's own (capped by its log)."""
    c = LocalCluster(3, base_dir=tmp_path, cluster_name=CLUSTER, node_args=["--no-fsync"])
    maddrs = with_metrics(c)
    with running(c):
        leader = _leader(c)
        lagging = next(i for i in c.nodes if i != leader)
        c.kill(lagging)

        async def write() -> None:
            async with c.client() as kv:
                for chunk in range(0, 3000, 500):  # concurrent puts: the client batches them
                    await asyncio.gather(*(kv.put(b"x%d" % k, b"y" * 100) for k in range(chunk, chunk + 500)))
        asyncio.run(write())
        committed = value(families(maddrs[leader]), "raftx_server_committed_index")
        c.restart(lagging)
        ready = wait_status(maddrs[lagging], "/ready", 200)
        assert ready["target"] >= committed, (ready, committed)
        assert ready["applied"] >= committed


def test_serve_with_a_monitor_still_exits_fatal_at_once(tmp_path: Any) -> None:
    """The monitor closes with the node: a node stopping with Fatal still exits 70 by
    itself (tests/cli/test_serve_fatal.py's file-size limit), /health answered before."""
    from raftx.kv.server import EXIT_FATAL
    from raftx.launcher import ManagedProcess, child_env, wait_for_file

    from test_serve_fatal import _WITH_FSIZE_LIMIT, _write_until_refused

    port, mport = free_ports(2)
    addr, maddr = f"127.0.0.1:{port}", f"127.0.0.1:{mport}"
    ready = tmp_path / "ready"
    p = ManagedProcess([sys.executable, "-c", _WITH_FSIZE_LIMIT, "serve", "--id", "1", "--listen", addr,
                        "--data-dir", str(tmp_path / "data"), "--cluster-name", "fatal-test", "--init",
                        "--ready-file", str(ready), "--metrics-addr", maddr],
                       log_path=tmp_path / "node.log", env=child_env(), name="raftx-serve-fatal-monitor")
    p.start()
    try:
        wait_for_file(ready, WAIT, [p])
        assert wait_status(maddr, "/health", 200)["health"] is True
        asyncio.run(_write_until_refused(addr))
        assert p.wait(WAIT) == EXIT_FATAL, p.log_tail(5000)
    finally:
        p.kill()
