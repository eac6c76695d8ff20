"""``raftx bench`` with tiny workloads: the figures it reports, as JSON, are the run's.

Each test starts real node processes on 127.0.0.1 (temp dirs) with a fixed number
of writes per level, so the counts are exact and the run is short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raftx.cli import main

pytestmark = [pytest.mark.timeout(240), pytest.mark.durable]

ROOT = Path(__file__).resolve().parents[2]


def _bench(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["bench", "--quiet", "--json", "-", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_kvclient_run_reports_every_level(capsys: pytest.CaptureFixture[str]) -> None:
    out = _bench(capsys, "--inflight", "1", "8", "--writes", "40", "--value-bytes", "64")
    assert out["fsync"] is True and out["value_bytes"] == 64 and out["nodes"] == 3
    assert out["fdatasync_per_s"] > 0 and out["loopback_rtt_us"] > 0
    levels = out["raftx_kvclient"]["levels"]
    assert [lv["inflight"] for lv in levels] == [1, 8]
    for lv in levels:
        assert lv["writes"] + lv["failed"] == 40 and lv["failed"] == 0
        assert 0 < lv["p50_ms"] <= lv["p99_ms"] <= lv["p999_ms"] <= lv["max_ms"]
        assert lv["fsyncs_per_s"] > 0  # fsync on: the nodes' logs synced
        assert set(lv["cpu_percent"]) == {"node1", "node2", "node3", "client"}
    assert "raftx_in_process" not in out and "pysyncobj" not in out


def test_in_process_client_without_fsync_makes_no_fsyncs(capsys: pytest.CaptureFixture[str]) -> None:
    out = _bench(capsys, "--in-process-client", "--no-fsync", "--inflight", "4", "--writes", "50")
    assert out["fsync"] is False
    (lv,) = out["raftx_in_process"]["levels"]
    assert lv["writes"] == 50 and lv["fsyncs_per_s"] == 0
    assert set(lv["cpu_percent"]) == {"node1", "node2", "node3"}  # the load runs inside the leader
    assert "raftx_kvclient" not in out


def test_vs_pysyncobj_prints_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pysyncobj")
    assert main(["bench", "--quiet", "--inflight", "2", "--writes", "20", "--vs", "pysyncobj"]) == 0
    text = capsys.readouterr().out
    assert "pysyncobj" in text and "ratio of writes/s, raftx / PySyncObj" in text
    out = _bench(capsys, "--inflight", "2", "--writes", "20", "--vs", "pysyncobj", "--no-fsync")
    (ps,) = out["pysyncobj"]["levels"]
    (rx,) = out["raftx_kvclient"]["levels"]
    assert ps["writes"] == 20 and rx["writes"] == 20
    assert out["ratios"]["raftx_kvclient"] == [pytest.approx(rx["writes_per_s"] / ps["writes_per_s"])]


def test_vs_pysyncobj_without_it_says_how_to_install(tmp_path: Path) -> None:
    (tmp_path / "pysyncobj.py").write_text("raise ImportError('hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    run = subprocess.run([sys.executable, "-m", "raftx", "bench", "--vs", "pysyncobj"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env=env)
    assert run.returncode == 2
    assert "pip install 'raftx[bench]'" in run.stderr


@pytest.mark.parametrize("argv", [["--inflight", "0"], ["--writes", "-3"], ["--duration", "0"], ["--vs", "etcd"]])
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2
    assert "usage: raftx bench" in capsys.readouterr().err


def test_cpu_us_per_write_sums_the_nodes_not_the_client() -> None:
    from raftx.bench.stats import cpu_us_per_write

    level = {"writes_per_s": 50_000.0, "cpu_percent": {"node1": 80.0, "node2": 30.0, "node3": 30.0, "client": 20.0}}
    assert cpu_us_per_write(level) == pytest.approx(1.4 / 50_000 * 1e6)
    assert cpu_us_per_write({"writes_per_s": 0.0, "cpu_percent": {"node1": 5.0}}) is None
