"""CLI conventions against a real 3-node cluster (``raftx serve`` processes):
``--endpoints a,b,c`` / ``RAFTX_ENDPOINTS`` on every client command, ``put / get / del``,
``member`` errors that say what state the cluster is left in, the real cause of a
failure (a wrong cluster name), bare ``raftx`` printing help, help texts without reST
markup and ``inspect --dump --decode kv``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftx.cli import DELEGATED, main
from raftx.launcher import LocalCluster, child_env, free_ports

from clikit import serving

pytestmark = [pytest.mark.timeout(240), pytest.mark.durable]

CLUSTER = "conv-test"
TOKEN = "conventions-admin-token-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    base = tmp_path_factory.mktemp("conv")
    token = base / "admin-token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    c = LocalCluster(3, base_dir=base, cluster_name=CLUSTER, node_args=["--admin-token-file", str(token)])
    yield from serving(c)


@pytest.fixture
def env(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> LocalCluster:
    """RAFTX_CLUSTER_NAME for every command below (the environment mirror)."""
    monkeypatch.setenv("RAFTX_CLUSTER_NAME", CLUSTER)
    return cluster


def _eps(c: LocalCluster) -> str:
    return ",".join(c.addrs.values())


def test_put_get_del(env: LocalCluster, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    eps = _eps(env)
    assert main(["put", "greeting", "hello world", "--endpoints", eps]) == 0
    assert capsysbinary.readouterr().out == b"OK\n"
    assert main(["get", "greeting", "-e", eps]) == 0
    assert capsysbinary.readouterr().out == b"hello world\n"
    assert main(["get", "-e", eps, "greeting", "--serializable"]) == 0  # -e takes one argument: KEY stays
    assert capsysbinary.readouterr().out in (b"hello world\n", b"")  # serializable: maybe not applied yet
    assert main(["del", "greeting", "-e", eps]) == 0
    assert capsysbinary.readouterr().out == b"1\n"
    assert main(["del", "greeting", "-e", eps]) == 0
    assert capsysbinary.readouterr().out == b"0\n"
    assert main(["get", "greeting", "-e", eps, "--json"]) == 0
    assert json.loads(capsysbinary.readouterr().out) == {"format": 1, "key": "greeting", "value": None}


def test_endpoints_from_the_environment_and_repeated(env: LocalCluster, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    addrs = list(env.addrs.values())
    monkeypatch.setenv("RAFTX_ENDPOINTS", ",".join(addrs))
    assert main(["put", "k", "v"]) == 0 and capsys.readouterr().out == "OK\n"
    assert main(["status", "--json"]) == 0
    assert [r["address"] for r in json.loads(capsys.readouterr().out)["nodes"]] == addrs
    assert main(["member", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == [1, 2, 3]
    # a flag beats the environment; -e repeats and mixes with commas; old positionals still work
    assert main(["status", "--json", "-e", addrs[0], "-e", ",".join(addrs[1:])]) == 0
    assert [r["address"] for r in json.loads(capsys.readouterr().out)["nodes"]] == addrs
    assert main(["status", "--json", addrs[2], "-e", addrs[2]]) == 0
    assert [r["address"] for r in json.loads(capsys.readouterr().out)["nodes"]] == [addrs[2]]


def test_a_wrong_cluster_name_is_reported_as_such(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    addr = cluster.addrs[1]
    assert main(["status", addr, "--cluster-name", "other", "--timeout", "10"]) == 1
    out = capsys.readouterr().out
    assert f"wrong cluster 'other' (this is '{CLUSTER}')" in out and "Timeout" not in out
    assert main(["get", "k", "-e", addr, "--cluster-name", "other", "--timeout", "2"]) == 1
    assert "wrong cluster 'other'" in capsys.readouterr().err


def test_member_remove_of_a_non_member_is_an_error(env: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    token = env.base_dir / "admin-token"
    assert main(["member", "remove", "9", "-e", _eps(env), "--admin-token-file", str(token)]) == 1
    err = capsys.readouterr().err
    assert "node 9 is not a member" in err and "nothing changed" in err


def test_member_add_that_times_out_says_it_left_a_learner(env: LocalCluster,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    token = env.base_dir / "admin-token"
    (port,) = free_ports(1)  # nobody serves there: the learner never catches up
    eps = _eps(env)
    try:
        assert main(["member", "add", "7", f"127.0.0.1:{port}", "-e", eps, "--admin-token-file", str(token),
                     "--timeout", "3"]) == 1
        err = capsys.readouterr().err
        assert "node 7 is a LEARNER now" in err and "raftx member remove 7" in err, err
        assert main(["member", "list", "-e", eps, "--json"]) == 0
        assert 7 in json.loads(capsys.readouterr().out)["learners"]
    finally:
        assert main(["member", "remove", "7", "-e", eps, "--admin-token-file", str(token)]) == 0
    assert "node 7 removed" in capsys.readouterr().out
    assert main(["member", "list", "-e", eps, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["learners"] == []


def test_bare_raftx_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: raftx") and "implementation=" not in out
    assert main(["info", "--no-bench", "--json"]) == 0
    assert "implementation" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command", [[], ["info"], ["status"], ["put"], ["get"], ["del"], ["member"],
                                     ["member", "add"], ["certs"], *[[n] for n in DELEGATED]], ids=" ".join)
def test_help_texts_have_no_rest_markup(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "`" not in out


def test_inspect_decodes_kv_commands(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """Last in this module: it stops node 3 to read its data directory."""
    assert main(["put", "decode-me", "some value", "-e", _eps(cluster), "--cluster-name", CLUSTER]) == 0
    capsys.readouterr()
    assert cluster.terminate(3, grace=30) == 0
    data = str(cluster.base_dir / "node3")
    run = subprocess.run([sys.executable, "-m", "raftx", "inspect", data, "--dump", "--decode", "kv"],
                         capture_output=True, text=True, env=child_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "PUT key='decode-me' value='some value'" in run.stdout
    run = subprocess.run([sys.executable, "-m", "raftx", "inspect", data, "--dump", "--decode", "kv", "--json"],
                         capture_output=True, text=True, env=child_env(), timeout=60)
    puts = [e["payload"] for e in json.loads(run.stdout)["entries"] if e["kind"] == "NORMAL"]
    assert {"op": "PUT", "key": "decode-me", "value": "some value"}.items() <= puts[-1].items()
    raw = subprocess.run([sys.executable, "-m", "raftx", "inspect", data, "--dump"], capture_output=True,
                         text=True, env=child_env(), timeout=60)
    assert "PUT key=" not in raw.stdout  # the default stays raw
