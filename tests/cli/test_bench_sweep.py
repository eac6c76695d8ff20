"""``raftx bench --sweep --plot``: the scale curves at tiny sizes, their JSON and charts.

Real node processes on 127.0.0.1 and temp dirs; fixed write counts and small sizes
keep it short. The figures are not judged (the machine is shared), only that every
part ran and reported consistent numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raftx.cli import main

pytestmark = [pytest.mark.timeout(300), pytest.mark.durable]

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def _sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["bench", "--sweep", "--quiet", "--json", "-", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_tiny_sweep_reports_every_part_and_plots_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    out = _sweep(capsys, "--sweep-values", "100", "2048", "--sweep-nodes", "3", "5", "--sweep-inflight", "8",
                 "--writes", "40", "--sweep-keys", "3000", "--sweep-log-entries", "25000", "--plot", str(plots))
    assert out["kind"] == "sweep" and out["fsync"] is True
    assert out["fdatasync_per_s"] > 0 and out["disk_mb_per_s"] > 0 and out["loopback_rtt_us"] > 0
    assert out["machine"]["cpu_count"] == os.cpu_count()
    assert [v["value_bytes"] for v in out["value_sizes"]] == [100, 2048]
    for v in out["value_sizes"]:
        assert v["writes"] == 40 and v["failed"] == 0 and v["inflight"] == 8 and v["nodes"] == 3
        assert v["mb_per_s"] == pytest.approx(v["writes_per_s"] * v["value_bytes"] / 1e6)
        assert v["disk_share"] == pytest.approx(3 * v["mb_per_s"] / out["disk_mb_per_s"])
    assert [c["nodes"] for c in out["cluster_sizes"]] == [3, 5]
    for c in out["cluster_sizes"]:
        assert [lv["inflight"] for lv in c["levels"]] == [1, 8]
        assert all(lv["writes"] == 40 and lv["failed"] == 0 for lv in c["levels"])
        assert len(c["levels"][0]["cpu_percent"]) == c["nodes"]
    st = out["state"]
    # The learner caught up by InstallSnapshot (the log was purged) and holds every key;
    # the node restarted after kill -9 has them all too.
    assert st["keys"] == st["learner_keys"] == st["restart_keys"] == 3000
    assert st["snapshot_receives"] == st["snapshot_installs"] == 1
    assert st["snapshot_bytes"] > 3000 * 100
    for field in ("load_s", "snapshot_build_s", "snapshot_transfer_s", "snapshot_install_s", "restart_s",
                  "restart_log_open_s", "restart_snapshot_load_s", "add_learner_s"):
        assert st[field] >= 0, field
    assert st["restart_s"] >= st["restart_process_start_s"] >= 0
    assert math.isfinite(st["state_bytes_per_key"]) and math.isfinite(st["leader_bytes_per_key"])
    lg = out["log"]
    assert lg["entries"] == 25000 and lg["disk_bytes"] > 25000 * 100 and lg["open_s"] >= 0
    assert lg["index_bytes_per_entry"] == pytest.approx(lg["index_bytes"] / 25000) and lg["index_bytes"] > 0
    charts = sorted(p.name for p in plots.iterdir())
    assert charts == ["cluster-size.png", "state-and-log.png", "value-size.png"]
    assert all((plots / c).read_bytes().startswith(PNG) for c in charts)


def test_sweep_without_state_and_log_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = _sweep(capsys, "--sweep-values", "100", "--sweep-nodes", "3", "--sweep-inflight", "2", "--writes", "10",
                 "--sweep-keys", "0", "--sweep-log-entries", "0", "--no-fsync", "--plot", str(tmp_path))
    assert "state" not in out and "log" not in out and out["fsync"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster-size.png", "value-size.png"]
    assert main(["bench", "--sweep", "--quiet", "--sweep-values", "100", "--sweep-nodes", "3", "--sweep-inflight",
                 "2", "--writes", "10", "--sweep-keys", "0", "--sweep-log-entries", "0", "--no-fsync"]) == 0
    text = capsys.readouterr().out
    assert "value size (3 nodes" in text and "cluster of 3 nodes" in text


@pytest.mark.parametrize("argv", [["--plot", "x"], ["--sweep", "--vs", "etcd"], ["--sweep", "--sweep-keys", "-1"],
                                  ["--sweep", "--sweep-values", "0"]])
def test_bad_sweep_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2
    assert "usage: raftx bench" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_install(tmp_path: Path) -> None:
    (tmp_path / "matplotlib.py").write_text("raise ImportError('hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    run = subprocess.run([sys.executable, "-m", "raftx", "bench", "--sweep", "--plot", str(tmp_path / "p")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert run.returncode == 2 and "pip install 'raftx[bench]'" in run.stderr
    assert not (tmp_path / "p").exists()
