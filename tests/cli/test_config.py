"""``raftx serve --config / RAFTX_<FLAG> / --check-config / --advertise`` as real processes.

Precedence is flag > environment > file > default: one option is set at every layer
and ``--check-config`` (run as ``python -m raftx serve``) reports the value and the
source of each. ``--advertise`` is what a node writes into the membership: a node
listening on 127.0.0.1 and advertising ``localhost`` is listed under ``localhost``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raftx import cli_config
from raftx.cli import build_parser, main
from raftx.kv.server import build_parser as serve_parser
from raftx.launcher import ManagedProcess, child_env, free_ports, wait_for_file

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0


def _serve(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAFTX_") or k == "RAFTX_NO_EXTENSIONS"}
    return subprocess.run([sys.executable, "-m", "raftx", "serve", *args], capture_output=True, text=True,
                          env=child_env({**clean, **(env or {})}), cwd=cwd, timeout=60)


def _check(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    r = _serve([*args, "--check-config"], env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('id = 1\nlisten = "127.0.0.1:7001"\ndata-dir = "/tmp/x"\n'
                   'heartbeat-ms = 40\nsnapshot-every = 7\ncluster_name = "from-file"\nmax-connections = 9\n'
                   'peer = ["2=127.0.0.1:7002", "3=127.0.0.1:7003"]\ninit = true\n'
                   'election-timeout-ms = [400, 800]\n[raft]\nmax_payload_entries = 123\n')
    env = {"RAFTX_HEARTBEAT_MS": "45", "RAFTX_SNAPSHOT_EVERY": "8", "RAFTX_CLUSTER_NAME": "from-env"}
    doc = _check(["--config", str(cfg), "--heartbeat-ms", "44"], env)
    opts, src = doc["options"], doc["sources"]
    assert (opts["heartbeat_ms"], src["heartbeat_ms"]) == (44, "flag")
    assert (opts["snapshot_every"], src["snapshot_every"]) == (8, "env")
    assert (opts["cluster_name"], src["cluster_name"]) == ("from-env", "env")
    assert (opts["max_connections"], src["max_connections"]) == (9, "file")
    assert (opts["snapshot_keep_log"], src["snapshot_keep_log"]) == (1000, "default")
    assert opts["peer"] == ["2=127.0.0.1:7002", "3=127.0.0.1:7003"] and opts["init"] is True
    assert doc["node"]["peers"] == {"2": "127.0.0.1:7002", "3": "127.0.0.1:7003"}
    raft = doc["raft"]
    assert (raft["heartbeat_interval"], raft["cluster_name"], raft["snapshot_policy"]) == (44, "from-env", 8)
    assert (raft["election_timeout_min"], raft["election_timeout_max"]) == (400, 800)
    assert raft["max_payload_entries"] == 123 and raft["enable_pre_vote"] is True
    assert doc["server"]["max_connections"] == 9
    # RAFTX_CONFIG names the file when --config is not given.
    doc = _check([], {"RAFTX_CONFIG": str(cfg)})
    assert doc["config_file"] == str(cfg) and doc["options"]["cluster_name"] == "from-file"


def test_required_flags_from_the_environment_alone() -> None:
    doc = _check([], {"RAFTX_ID": "3", "RAFTX_LISTEN": "127.0.0.1:7003", "RAFTX_DATA_DIR": "/tmp/n3",
                      "RAFTX_PEER": "1=127.0.0.1:7001,2=127.0.0.1:7002", "RAFTX_NO_PRE_VOTE": "1",
                      "RAFTX_INIT": "yes"})
    assert doc["node"] == {"id": 3, "listen": "127.0.0.1:7003", "advertise": "127.0.0.1:7003",
                           "peers": {"1": "127.0.0.1:7001", "2": "127.0.0.1:7002"}}
    assert doc["raft"]["enable_pre_vote"] is False and doc["options"]["init"] is True


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--listen", "0.0.0.0:7001"], {}, "wildcard"),
    (["--listen", "[::]:7001"], {}, "wildcard"),
    (["--advertise", "0.0.0.0:7001"], {}, "no wildcard"),
    ([], {"RAFTX_HEARTBEAT_MS": "fast"}, "RAFTX_HEARTBEAT_MS"),
    ([], {"RAFTX_INIT": "maybe"}, "RAFTX_INIT"),
    ([], {"RAFTX_ELECTION_TIMEOUT_MS": "300"}, "RAFTX_ELECTION_TIMEOUT_MS"),
    (["--heartbeat-ms", "500"], {}, "heartbeat_interval"),
    (["--max-pending-connections", "0"], {}, "max_pending_connections"),
    (["--peer", "1=127.0.0.1:9"], {}, "own id"),
])
def test_bad_configuration_is_refused_before_starting(tmp_path: Path, args: list[str], env: dict[str, str],
                                                      needle: str) -> None:
    base = ["--id", "1", "--listen", "127.0.0.1:7001", "--data-dir", str(tmp_path / "d")]
    r = _serve([*base, *args], env)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert not (tmp_path / "d").exists()  # nothing was opened


@pytest.mark.parametrize(("text", "needle"), [
    ("id = 1\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\nlisen = \"x\"\n", "unknown keys lisen"),
    ("id = 1\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n[raft]\nheartbeat_interval = 10\n", "heartbeat-ms"),
    ("id = 1\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n[raft]\nmax_payload = 10\n", "not a Config field"),
    ("id = 1\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n[raft]\nenable_tick = 1\n", "must be bool"),
    ("id = = 1\n", "not valid TOML"),
])
def test_bad_config_file_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    r = _serve(["--config", str(cfg), "--check-config"])
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_every_flag_of_every_command_has_an_environment_mirror() -> None:
    """Walk the parsers (as the mirror does): each long option is honoured from its
    RAFTX_<FLAG> variable -- checked on one option per command by its effect."""
    names: set[str] = set()
    for parser in cli_config._parsers(build_parser()) + [serve_parser()]:
        for action in parser._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt not in ("--help", "--version"):
                    names.add(cli_config.env_name(opt))
    assert {"RAFTX_ENDPOINTS", "RAFTX_CLUSTER_NAME", "RAFTX_ADVERTISE", "RAFTX_MAX_CONNECTIONS",
            "RAFTX_TLS_CERT", "RAFTX_NO_PRE_VOTE"} <= names
    parser = build_parser()
    ns = cli_config.layered_parse(parser, ["member", "list"], {"RAFTX_TIMEOUT": "7.5",
                                                                "RAFTX_ENDPOINTS": "127.0.0.1:1,127.0.0.1:2"}).args
    assert ns.timeout == 7.5 and ns.endpoints == ["127.0.0.1:1", "127.0.0.1:2"]
    assert cli_config.layered_parse(build_parser(), ["member", "list", "--timeout", "2"],
                                    {"RAFTX_TIMEOUT": "7.5", "RAFTX_ENDPOINTS": "127.0.0.1:1"}).args.timeout == 2.0
    # An option added to a parser later is covered with no more code.
    ap = argparse.ArgumentParser()
    ap.add_argument("--brand-new-flag", type=int, default=1)
    assert cli_config.layered_parse(ap, [], {"RAFTX_BRAND_NEW_FLAG": "5"}).args.brand_new_flag == 5


def test_bad_environment_value_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAFTX_TIMEOUT", "soon")
    assert main(["member", "list", "--endpoints", "127.0.0.1:1"]) == 2
    assert "RAFTX_TIMEOUT" in capsys.readouterr().err


def test_advertised_address_goes_into_the_membership(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    ready = tmp_path / "ready"
    node = ManagedProcess([sys.executable, "-m", "raftx", "serve", "--id", "1", "--listen", f"127.0.0.1:{port}",
                           "--advertise", f"localhost:{port}", "--data-dir", str(tmp_path / "n1"), "--init",
                           "--ready-file", str(ready), "--cluster-name", "adv"],
                          log_path=tmp_path / "n1.log", env=child_env(), name="adv-node")
    try:
        node.start()
        wait_for_file(ready, WAIT, [node])
        from raftx.kv.client import KVClient

        async def nodes() -> Any:
            async with KVClient([f"127.0.0.1:{port}"], cluster_name="adv", timeout=WAIT) as kv:
                async with asyncio.timeout(WAIT):
                    while True:
                        st = await kv.status()
                        if st["nodes"]:
                            return st["nodes"]
                        await asyncio.sleep(0.05)  # another process's state: poll it

        assert asyncio.run(nodes()) == [[1, f"localhost:{port}"]]
        assert f"advertised as localhost:{port}" in node.log_tail()
    finally:
        node.kill()
