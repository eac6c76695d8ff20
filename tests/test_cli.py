"""The ``raftx`` command line: dispatch, info output, and delegated subcommands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import raftx
from raftx import _core
from raftx.cli import main


def test_info_json_reports_version_and_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", "--no-bench"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == raftx.__version__
    assert info["implementation"] == _core.IMPLEMENTATION


def test_no_command_runs_info_with_self_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json"]) == 0
    bench = json.loads(capsys.readouterr().out)["benchmark"]
    assert _core.IMPLEMENTATION in bench
    assert all(rate > 0 for rate in bench[_core.IMPLEMENTATION].values())


def test_inspect_is_delegated_with_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--help"]) == 0
    assert "raftx inspect" in capsys.readouterr().out


def test_inspect_rejects_a_missing_directory(tmp_path: Path) -> None:
    assert main(["inspect", str(tmp_path / "missing")]) != 0


def test_console_entry_point_runs() -> None:
    """``python -m raftx`` behaves as the installed ``raftx`` script."""
    out = subprocess.run([sys.executable, "-m", "raftx", "--version"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == f"raftx {raftx.__version__}"
