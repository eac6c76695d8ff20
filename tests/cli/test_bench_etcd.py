"""``raftx bench --vs etcd``: a real etcd cluster on 127.0.0.1 next to raftx, in one run.

The tests that start etcd need the ``etcd`` binary on PATH (Debian: ``etcd-server``;
``.ci/run`` installs it when apt is there) and the ``aetcd`` client (``bench`` extra);
they skip with the reason otherwise. Fixed write counts keep the runs short and exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from raftx.bench.cli import build_parser, vs_systems
from raftx.bench.etcd_run import etcd_unavailable
from raftx.cli import main

pytestmark = [pytest.mark.timeout(240), pytest.mark.durable]

ROOT = Path(__file__).resolve().parents[2]
WHY_NO_ETCD = etcd_unavailable()
needs_etcd = pytest.mark.skipif(WHY_NO_ETCD is not None, reason=f"--vs etcd cannot run here: {WHY_NO_ETCD}")


def test_vs_takes_a_list_or_a_repeated_flag() -> None:
    parse = build_parser().parse_args
    assert vs_systems(parse(["--vs", "pysyncobj,etcd"])) == ["pysyncobj", "etcd"]
    assert vs_systems(parse(["--vs", "etcd", "--vs", "pysyncobj", "--vs", "etcd"])) == ["etcd", "pysyncobj"]
    assert vs_systems(parse([])) == []


@needs_etcd
def test_vs_etcd_and_pysyncobj_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pysyncobj")
    argv = ["bench", "--quiet", "--json", "-", "--client", "both", "--inflight", "1", "4", "--writes", "30",
            "--vs", "pysyncobj", "--vs", "etcd"]
    assert main(argv) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    etcd = out["etcd"]
    assert etcd["version"].startswith("3.") and etcd["client"].startswith("aetcd ") and etcd["durable"] is True
    assert [lv["inflight"] for lv in etcd["levels"]] == [1, 4]
    for lv in etcd["levels"]:
        assert lv["writes"] == 30 and lv["failed"] == 0
        assert 0 < lv["p50_ms"] <= lv["p99_ms"] <= lv["max_ms"]
        assert lv["fsyncs_per_s"] > 0  # etcd's WAL synced (its /metrics counter moved)
        assert set(lv["cpu_percent"]) == {"m1", "m2", "m3", "client"}
    for key in ("raftx_in_process", "raftx_kvclient"):
        ratios = out["etcd_compare"]["ratios"][key]
        assert ratios == [pytest.approx(rx["writes_per_s"] / e["writes_per_s"])
                          for rx, e in zip(out[key]["levels"], etcd["levels"], strict=True)]
        lat = out["etcd_latency"][key]
        assert lat["p50_ratio"] == pytest.approx(out[key]["levels"][0]["p50_ms"] / etcd["levels"][0]["p50_ms"])
    assert out["etcd_latency"]["floor_ms"] == pytest.approx(1e3 / out["fdatasync_per_s"]
                                                            + out["loopback_rtt_us"] / 1e3)
    assert len(out["ratios"]["raftx_kvclient"]) == 2  # the PySyncObj comparison of the same run
    machine = out["machine"]
    assert machine["cpu_count"] == os.cpu_count() and machine["cpu_model"]
    assert "raftx_commit" in machine


@needs_etcd
def test_vs_etcd_adds_a_one_at_a_time_level_and_prints_the_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quiet", "--inflight", "3", "--writes", "20", "--vs", "etcd", "--no-fsync"]) == 0
    text = capsys.readouterr().out
    assert "ratio of writes/s, raftx / etcd" in text
    assert "one write at a time (in-flight 1): etcd p50" in text  # etcd ran in-flight 1 although not asked


def test_vs_etcd_without_etcd_on_path_runs_the_rest(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent), PYTHONPATH=str(ROOT))
    assert not (Path(sys.executable).parent / "etcd").exists()
    run = subprocess.run([sys.executable, "-m", "raftx", "bench", "--client", "in-process", "--inflight", "2",
                          "--writes", "10", "--no-fsync", "--vs", "etcd", "--json", "-"],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert "no 'etcd' binary on PATH" in out["etcd"]["skipped"] and "apt-get install etcd-server" in run.stderr
    assert out["raftx_in_process"]["levels"][0]["writes"] == 10
    assert "etcd_compare" not in out


@needs_etcd
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_etcd_run_leaves_no_process_and_no_directory(tmp_path: Path, sig: signal.Signals) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "raftx", "bench", "--client", "none", "--inflight", "1",
                             "--vs", "etcd", "--duration", "120"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the progress lines; the etcd members run once the levels start
            seen.append(line)
            if b"etcd: in-flight" in line:
                break
        else:
            pytest.fail(b"".join(seen).decode())
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == 130, err.decode()
    assert list(tmp.iterdir()) == []  # every temp dir, the members' data dirs with them, is gone
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).find(str(tmp)) >= 0]
    assert left == []


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


@needs_etcd
def test_client_none_runs_etcd_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quiet", "--json", "-", "--client", "none", "--inflight", "2", "--writes", "10",
                 "--vs", "etcd"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert [lv["writes"] for lv in out["etcd"]["levels"]] == [10, 10]  # in-flight 1 added, then 2
    assert not any(key.startswith("raftx_") for key in out) and out["etcd_compare"]["ratios"] == {}
    assert main(["bench", "--quiet", "--client", "none", "--inflight", "2", "--writes", "10", "--vs", "etcd"]) == 0
    text = capsys.readouterr().out
    assert "etcd 3." in text and "ratio of writes/s" not in text
