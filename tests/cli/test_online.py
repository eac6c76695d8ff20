"""``raftx serve``, ``raftx status`` and ``raftx member`` against a 3-process cluster on 127.0.0.1.

The nodes run as ``python -m raftx serve`` (the console command) with segmented logs
in a temp dir; status and membership go through `raftx.cli.main` with plain
``HOST:PORT`` addresses (the any-target hello: no node ids given). A 4th node
started without ``--init`` joins with ``member add`` (learner, catch-up, then voter,
thesis §4.3) and leaves with ``member remove``, both with the nodes' admin token
(``--admin-token-file``); without it they are refused. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftx.cli import main
from raftx.launcher import LocalCluster, ManagedProcess, free_ports, wait_for_file

from clikit import serving

pytestmark = [pytest.mark.timeout(240), pytest.mark.durable]

CLUSTER = "cli-test"
WAIT = 30.0
TOKEN = "cli-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    base = tmp_path_factory.mktemp("cli-cluster")
    token = base / "admin-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    c = LocalCluster(3, base_dir=base, cluster_name=CLUSTER,
                     node_args=["--heartbeat-ms", "50", "--log-level", "INFO", "--admin-token-file", str(token)])
    yield from serving(c)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:
    assert main(argv) == code, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


async def _converged(cluster: LocalCluster, timeout: float) -> None:
    """Wait (bounded) until every node knows the leader and the 3-voter membership."""
    async with asyncio.timeout(timeout):
        while True:
            st = await cluster.statuses()
            if len(st) == len(cluster.nodes) and all(
                s.get("leader") is not None and s.get("members") == [1, 2, 3] for s in st.values()
            ):
                return
            await asyncio.sleep(0.05)  # polling a separate process's state; no event to wait on


def test_status_with_plain_addresses(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    leader = asyncio.run(cluster.wait_for_leader(WAIT))
    asyncio.run(_converged(cluster, WAIT))  # followers learn the membership by replication
    addrs = list(cluster.addrs.values())
    doc = _json(capsys, ["status", *addrs, "--cluster-name", CLUSTER, "--json"])
    rows = doc["nodes"]
    assert [r["address"] for r in rows] == addrs
    assert [r["id"] for r in rows] == list(cluster.addrs)  # learned from the hello ack
    assert all(r["ok"] and r["members"] == [1, 2, 3] for r in rows)
    assert [r["state"] for r in rows].count("Leader") == 1
    assert rows[leader - 1]["lag"] == 0 and all(r["lag"] is not None for r in rows)
    assert main(["status", *addrs, "--cluster-name", CLUSTER]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["ADDRESS", "ID", "STATE"]
    assert all(a in table for a in addrs) and "Leader" in table


def test_status_reports_an_unreachable_node(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    (dead,) = free_ports(1)
    doc = _json(capsys, ["status", cluster.addrs[1], f"127.0.0.1:{dead}", "--cluster-name", CLUSTER,
                         "--timeout", "0.5", "--json"], code=1)
    assert [r["ok"] for r in doc["nodes"]] == [True, False]
    assert doc["nodes"][1]["error"]


def test_status_wrong_cluster_name_fails(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, ["status", cluster.addrs[1], "--cluster-name", "other", "--timeout", "0.5", "--json"],
                code=1)
    assert doc["nodes"][0]["ok"] is False


def test_member_add_list_remove(cluster: LocalCluster, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)
    addr4 = f"127.0.0.1:{port}"
    ready = tmp_path / "ready4"
    token = cluster.base_dir / "admin-token"
    node4 = ManagedProcess([sys.executable, "-m", "raftx", "serve", "--id", "4", "--listen", addr4,
                            "--data-dir", str(tmp_path / "node4"), "--cluster-name", CLUSTER,
                            "--ready-file", str(ready), "--admin-token-file", str(token)],
                           log_path=tmp_path / "node4.log", env=cluster.nodes[1].env, name="raftx-node4")
    endpoint = cluster.addrs[2]  # any node: a follower redirects to the leader
    try:
        node4.start()
        wait_for_file(ready, WAIT, [node4])
        # A plain key-value client (no admin token) cannot change the membership.
        assert main(["member", "add", "4", addr4, "-e", endpoint, "--cluster-name", CLUSTER, "--timeout", "10"]) == 1
        assert "NotAuthorized" in capsys.readouterr().err
        wrong = tmp_path / "wrong-token"
        wrong.write_text("not-the-admin-token-at-all")
        assert main(["member", "add", "4", addr4, "-e", endpoint, "--cluster-name", CLUSTER, "--timeout", "10",
                     "--admin-token-file", str(wrong)]) == 1
        assert "NotAuthorized" in capsys.readouterr().err
        assert _json(capsys, ["member", "list", "-e", endpoint, "--cluster-name", CLUSTER, "--json"])["members"] \
            == [1, 2, 3]
        added = _json(capsys, ["member", "add", "4", addr4, "-e", endpoint, "--cluster-name", CLUSTER,
                               "--json", "--timeout", "60", "--admin-token-file", str(token)])
        assert added["members"] == [1, 2, 3, 4] and added["learners"] == []
        assert [4, addr4] in added["nodes"]

        listed = _json(capsys, ["member", "list", "-e", *cluster.addrs.values(), "--cluster-name", CLUSTER,
                                "--json"])
        assert listed["members"] == [1, 2, 3, 4]
        rows = _json(capsys, ["status", *cluster.addrs.values(), addr4, "--cluster-name", CLUSTER,
                              "--json"])["nodes"]
        assert rows[3]["id"] == 4 and rows[3]["state"] in ("Follower", "Leader")

        assert main(["member", "remove", "4", "-e", endpoint, "--cluster-name", CLUSTER]) == 1  # no token
        assert "NotAuthorized" in capsys.readouterr().err
        assert main(["member", "remove", "4", "-e", endpoint, "--cluster-name", CLUSTER,
                     "--admin-token-file", str(token)]) == 0
        assert "node 4 removed" in capsys.readouterr().out
        listed = _json(capsys, ["member", "list", "-e", endpoint, "--cluster-name", CLUSTER, "--json"])
        assert listed["members"] == [1, 2, 3] and all(n[0] != 4 for n in listed["nodes"])
    finally:
        node4.kill()


def test_member_add_rejects_a_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["member", "add", "4", "nowhere", "-e", "127.0.0.1:1"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_serve_stops_cleanly_on_sigterm(cluster: LocalCluster) -> None:
    """Last in this module: it stops a node (the others keep a majority)."""
    assert cluster.terminate(3, grace=WAIT) == 0
    assert "node 3 stopped" in cluster.nodes[3].log_tail()
