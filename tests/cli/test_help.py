"""``--help`` works for every command and names it; bad usage exits 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from raftx.cli import DELEGATED, main

COMMANDS = [["info"], ["status"], ["put"], ["get"], ["del"], ["member"], ["member", "list"], ["member", "add"], ["member", "remove"], ["certs"],
            *[[name] for name in DELEGATED]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: raftx {' '.join(command)}")


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ["info", "status", "member", "demo", "bench", "serve", "inspect", "certs"]:
        assert f"\n    {name} " in out, name


@pytest.mark.parametrize("argv", [["status"], ["status", "no-port"], ["member", "add", "x", "127.0.0.1:1", "-e",
                                                                       "127.0.0.1:2"],
                                  ["member", "list"], ["serve", "--id", "1"], ["demo", "--writes", "0"], ["nope"],
                                  ["certs", "--out", "x", "--nodes", "1,x"]])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_from_the_console_command() -> None:
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "raftx", "demo", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=root)
    assert run.returncode == 0 and run.stdout.startswith("usage: raftx demo")
