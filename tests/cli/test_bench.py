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
    # in-flight 1 is also compared with the Python skeleton of a commit, from a client process
    skeleton = out["skeleton"]
    assert skeleton["leader"]["writes"] > 0 and skeleton["client"]["writes"] > 0
    r = out["skeleton_compare"]["raftx_kvclient"]
    assert r["p50_ms"] == levels[0]["p50_ms"] and r["skeleton_p50_ms"] == skeleton["client"]["p50_ms"]
    assert r["p50_ratio"] == pytest.approx(r["p50_ms"] / r["skeleton_p50_ms"])


def test_the_skeleton_replicates_every_write_it_counts(tmp_path: Path) -> None:
    """`raftx.bench.skeleton` is a real commit: every write it times is in the leader's
    file and in both followers' (fsync on)."""
    from raftx.bench import skeleton

    out = skeleton.measure(tmp_path, value_bytes=10, duration=0.3, loop="asyncio")
    for mode in ("leader", "client"):
        n = out[mode]["writes"]
        assert n > 0 and 0 < out[mode]["p50_ms"] <= out[mode]["p99_ms"]
        assert (tmp_path / f"{mode}-leader" / "log").stat().st_size == 10 * n
        for i in (2, 3):
            assert (tmp_path / f"{mode}-follower{i}" / "log").stat().st_size == 10 * n


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
    # PySyncObj may refuse a few writes while its cluster settles on a loaded machine
    # (counted as failed); raftx's KVClient retries until each write is committed.
    assert ps["writes"] + ps["failed"] == 20 and ps["writes"] > 0
    assert rx["writes"] == 20
    assert out["ratios"]["raftx_kvclient"] == [pytest.approx(rx["writes_per_s"] / ps["writes_per_s"])]


def test_vs_pysyncobj_without_it_says_how_to_install(tmp_path: Path) -> None:
    (tmp_path / "pysyncobj.py").write_text("raise ImportError('hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    run = subprocess.run([sys.executable, "-m", "raftx", "bench", "--vs", "pysyncobj"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env=env)
    assert run.returncode == 2
    assert "pip install 'raftx[bench]'" in run.stderr


@pytest.mark.parametrize("argv", [["--inflight", "0"], ["--writes", "-3"], ["--duration", "0"], ["--vs", "zookeeper"], ["--vs", "pysyncobj,zk"], ["--client", "none"]])
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2
    assert "usage: raftx bench" in capsys.readouterr().err


def test_cpu_us_per_write_sums_the_nodes_not_the_client() -> None:
    from raftx.bench.stats import cpu_us_per_write

    level = {"writes_per_s": 50_000.0, "cpu_percent": {"node1": 80.0, "node2": 30.0, "node3": 30.0, "client": 20.0}}
    assert cpu_us_per_write(level) == pytest.approx(1.4 / 50_000 * 1e6)
    assert cpu_us_per_write({"writes_per_s": 0.0, "cpu_percent": {"node1": 5.0}}) is None


def test_in_process_batches_count_every_write(capsys: pytest.CaptureFixture[str]) -> None:
    out = _bench(capsys, "--in-process-client", "--no-fsync", "--loop", "asyncio", "--inflight", "20",
                 "--batch", "1", "10", "--writes", "55")
    assert out["batch"] == [1, 10] and out["loop"] == "asyncio"
    (single,) = out["raftx_in_process"]["levels"]
    assert single["batch"] == 1 and single["inflight"] == 20 and single["writes"] == 55
    run = out["raftx_in_process_batch10"]
    assert run["batch"] == 10 and "client_write_many batches of 10" in run["title"]
    (lv,) = run["levels"]
    # 55 writes in calls of 10: two calls outstanding, the last call carries the 5 left over.
    assert lv["batch"] == 10 and lv["inflight"] == 20 and lv["calls_in_flight"] == 2
    assert lv["writes"] == 55 and lv["failed"] == 0
    assert 0 < lv["p50_ms"] <= lv["p99_ms"] <= lv["max_ms"]


def test_batch_with_kvclient_only_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--client", "kv", "--batch", "10"]) == 2
    assert "in-process client only" in capsys.readouterr().err


def test_batched_run_is_compared_with_pysyncobjs_best(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pysyncobj")
    out = _bench(capsys, "--client", "in-process", "--no-fsync", "--inflight", "2", "10", "--batch", "5",
                 "--writes", "20", "--vs", "pysyncobj")
    assert "raftx_in_process" not in out  # only the batched run was asked for
    levels = out["raftx_in_process_batch5"]["levels"]
    assert [lv["inflight"] for lv in levels] == [5, 10]  # in-flight 2 < one batch: one call of 5
    ps = out["pysyncobj"]["levels"]
    ps_best = max(ps, key=lambda lv: lv["writes_per_s"])
    rx_best = max(levels, key=lambda lv: lv["writes_per_s"])
    best = out["best"]
    assert best["pysyncobj"]["writes_per_s"] == ps_best["writes_per_s"]
    assert best["raftx_in_process_batch5"]["ratio_to_pysyncobj_best"] == pytest.approx(
        rx_best["writes_per_s"] / ps_best["writes_per_s"])
    # Same in-flight level only: PySyncObj's level 2 has no batched counterpart.
    assert out["ratios"]["raftx_in_process_batch5"] == [
        None, pytest.approx(levels[1]["writes_per_s"] / ps[1]["writes_per_s"])]


def test_drive_counts_each_write_of_a_call_and_its_failures() -> None:
    import asyncio

    from raftx.bench.load import drive

    calls: list[list[int]] = []

    async def write_many(keys: list[int]) -> list[BaseException]:
        calls.append(keys)
        await asyncio.sleep(0)
        if len(calls) == 2:
            raise OSError("the whole call failed")
        return [TimeoutError(k) for k in keys if k % 4 == 0]  # these writes of the call failed

    async def single(key: int) -> None:
        raise AssertionError("batch > 1 must not write one at a time")

    level = asyncio.run(asyncio.wait_for(
        drive(single, 8, 30.0, 23, keys=1000, batch=4, write_many=write_many), 30))
    assert sorted(len(c) for c in calls) == [3, 4, 4, 4, 4, 4]  # 23 writes, the last call short
    assert sorted(k for c in calls for k in c) == list(range(23))
    failed_in_calls = sum(1 for i, c in enumerate(calls) if i != 1 for k in c if k % 4 == 0)
    assert level["failed"] == len(calls[1]) + failed_in_calls
    assert level["errors"] == {"OSError": len(calls[1]), "TimeoutError": failed_in_calls}
    assert level["writes"] == 23 - level["failed"] and level["calls_in_flight"] == 2


def test_kvclient_run_over_mutual_tls(capsys: pytest.CaptureFixture[str]) -> None:
    out = _bench(capsys, "--inflight", "4", "--writes", "20", "--no-fsync", "--tls")
    assert out["tls"] is True
    (level,) = out["raftx_kvclient"]["levels"]
    assert level["writes"] == 20 and level["failed"] == 0
