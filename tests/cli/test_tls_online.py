"""A mutual-TLS cluster of three ``raftx serve --tls-*`` processes on 127.0.0.1.

Certificates come from ``raftx certs`` in a temp dir. ``raftx status``, ``raftx
member`` and `KVClient` talk to it with ``--tls-*`` / ``ssl=``; a client without a
certificate, or with one from another CA, is refused; a member's certificate that
says another node's id in its hello is refused; a client certificate may read and
write but not change the membership, an admin certificate may (issue 11).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftx.cli import main
from raftx.errors import HandshakeRejected, NotAuthorized, RaftError, Unreachable
from raftx.kv import KVClient
from raftx.launcher import LocalCluster, ManagedProcess, free_ports, wait_for_file
from raftx.network import RpcClient, tls

from clikit import serving

pytestmark = [pytest.mark.timeout(240), pytest.mark.durable]

CLUSTER = "tls-test"
WAIT = 30.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(3, base_dir=tmp_path_factory.mktemp("tls-cluster"), cluster_name=CLUSTER, tls=True,
                     node_args=["--heartbeat-ms", "50"])
    yield from serving(c)


def _tls_args(pki: tls.TestPki, which: str) -> list[str]:
    cert, key = pki.admin if which == "admin" else pki.client
    return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(pki.ca)]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> str:
    got = main(argv)
    out, err = capsys.readouterr()
    assert got == code, err
    return out + err


def test_raftx_certs_writes_a_usable_pki(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--nodes", "1,2", "--host", "127.0.0.1", "--host", "db1"]) == 0
    assert "node 2:" in capsys.readouterr().out
    assert (tmp_path / "node2.key").stat().st_mode & 0o077 == 0
    ctx = tls.client_context(tmp_path / "node1.pem", tmp_path / "node1.key", tmp_path / "ca.pem")
    assert ctx.verify_mode.name == "CERT_REQUIRED"
    before = (tmp_path / "ca.pem").read_bytes()
    assert main(["certs", "--out", str(tmp_path), "--nodes", "3"]) == 0  # the CA is reused for a later node
    assert (tmp_path / "ca.pem").read_bytes() == before and (tmp_path / "node3.pem").exists()


def test_status_over_tls(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(_run(capsys, ["status", *cluster.addrs.values(), "--cluster-name", CLUSTER, "--json",
                                   *_tls_args(cluster.pki, "client")]))
    assert [r["ok"] for r in doc["nodes"]] == [True] * 3
    assert sum(r["state"] == "Leader" for r in doc["nodes"]) == 1


def test_clients_without_a_valid_certificate_are_refused(cluster: LocalCluster, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    addr = cluster.addrs[1]
    # no TLS at all
    doc = json.loads(_run(capsys, ["status", addr, "--cluster-name", CLUSTER, "--json", "--timeout", "2"], code=1))
    assert doc["nodes"][0]["ok"] is False
    # a certificate from another CA, even one that names an admin
    stranger = tls.make_test_pki(tmp_path / "stranger", [1])
    doc = json.loads(_run(capsys, ["status", addr, "--cluster-name", CLUSTER, "--json", "--timeout", "2",
                                   *_tls_args(stranger, "admin")], code=1))
    assert doc["nodes"][0]["ok"] is False
    # incomplete --tls-* is a usage error
    assert "go together" in _run(capsys, ["status", addr, "--tls-ca", str(cluster.pki.ca)], code=2)


async def test_kvclient_over_tls_and_forged_node_identity(cluster: LocalCluster) -> None:
    pki = cluster.pki
    client_ssl = tls.client_context(*pki.client, pki.ca)
    async with KVClient(list(cluster.addrs.values()), cluster_name=CLUSTER, ssl=client_ssl, timeout=WAIT) as kv:
        await kv.put("tls-key", b"over mutual TLS")
        assert await kv.get("tls-key") == b"over mutual TLS"
        with pytest.raises(NotAuthorized, match="admin credential"):
            await kv.member_remove(3, timeout=10)
    assert 3 in (await cluster.statuses())[1]["members"]

    leader = await cluster.wait_for_leader(WAIT)
    other, third = [i for i in cluster.addrs if i != leader]
    host, port = cluster.addrs[leader].rsplit(":", 1)
    # node `other`'s own certificate, but the hello says it is `third`: refused at the hello
    forged = RpcClient(host, int(port), cluster_name=CLUSTER, node_id=third, target_id=leader,
                       ssl=tls.client_context(*pki.nodes[other], pki.ca))
    with pytest.raises(HandshakeRejected, match=f"node {other}'s, but the hello says it is from {third}"):
        await forged.call("vote", b"", timeout=5)
    await forged.close()
    # the same certificate with its own id is accepted (and a garbage vote is just an error answer)
    honest = RpcClient(host, int(port), cluster_name=CLUSTER, node_id=other, target_id=leader,
                       ssl=tls.client_context(*pki.nodes[other], pki.ca))
    with pytest.raises(RaftError) as info:
        await honest.call("vote", b"", timeout=5)
    assert not isinstance(info.value, Unreachable)
    await honest.close()
    # a plain client certificate in a named hello gets client methods only: no Raft RPCs
    client = RpcClient(host, int(port), cluster_name=CLUSTER, node_id=other, target_id=leader, ssl=client_ssl)
    with pytest.raises(RaftError, match="client methods only"):
        await client.call("vote", b"", timeout=5)
    await client.close()
    assert (await cluster.statuses())[leader]["state"] == "Leader"


def test_member_add_and_remove_need_the_admin_certificate(cluster: LocalCluster, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    pki = tls.make_test_pki(cluster.pki.directory, [4])  # same CA: node 4's certificate
    (port,) = free_ports(1)
    addr4 = f"127.0.0.1:{port}"
    ready = tmp_path / "ready4"
    cert4, key4 = pki.nodes[4]
    node4 = ManagedProcess([sys.executable, "-m", "raftx", "serve", "--id", "4", "--listen", addr4,
                            "--data-dir", str(tmp_path / "node4"), "--cluster-name", CLUSTER,
                            "--ready-file", str(ready), "--tls-cert", str(cert4), "--tls-key", str(key4),
                            "--tls-ca", str(pki.ca)],
                           log_path=tmp_path / "node4.log", env=cluster.nodes[1].env, name="raftx-node4")
    endpoint = cluster.addrs[2]
    try:
        node4.start()
        wait_for_file(ready, WAIT, [node4])
        base = ["-e", endpoint, "--cluster-name", CLUSTER, "--timeout", "60"]
        assert "NotAuthorized" in _run(capsys, ["member", "add", "4", addr4, *base, *_tls_args(pki, "client")],
                                       code=1)
        added = json.loads(_run(capsys, ["member", "add", "4", addr4, *base, "--json", *_tls_args(pki, "admin")]))
        assert added["members"] == [1, 2, 3, 4]
        listed = json.loads(_run(capsys, ["member", "list", *base, "--json", *_tls_args(pki, "client")]))
        assert listed["members"] == [1, 2, 3, 4]
        assert "removed" in _run(capsys, ["member", "remove", "4", *base, *_tls_args(pki, "admin")])
    finally:
        node4.kill()
