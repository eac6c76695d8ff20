"""``raftx demo`` end to end, as a user runs it: a subprocess, its stdout, its exit code.

Checks the story it tells (election, SIGKILL of the leader, a new leader, restart and
catch-up, no acknowledged write lost) and that it leaves nothing behind: its node
processes are gone and its temp directory is removed, also when interrupted (SIGINT,
as Ctrl-C; SIGTERM).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.durable]

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _pids(text: str) -> set[int]:
    return {int(p) for p in re.findall(r"\(pid (\d+)\)", text)}


def _data_dir(text: str) -> Path:
    m = re.search(r"data in (\S+)", text)
    assert m, text
    return Path(m.group(1))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_demo_fails_over_loses_nothing_and_cleans_up() -> None:
    run = subprocess.run([sys.executable, "-m", "raftx", "demo"], capture_output=True, text=True, timeout=150,
                         cwd=ROOT, env=ENV)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    m = re.search(r"node (\d) was elected leader", out)
    assert m, out
    old = m.group(1)
    assert f"killing the leader, node {old}" in out
    new = re.search(r"node (\d) is the new leader", out)
    assert new and new.group(1) != old
    assert f"node {old} is back as a Follower" in out
    checked = re.search(r"read all (\d+) acknowledged keys through the leader: (\d+) present", out)
    assert checked and checked.group(1) == checked.group(2) and int(checked.group(1)) >= 100
    assert "no acknowledged write was lost" in out
    pids = _pids(out)
    assert len(pids) == 4 and all(_gone(p) for p in pids)  # 3 nodes and the restarted one
    assert not _data_dir(out).exists()


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_demo_leaves_no_process_or_directory(sig: signal.Signals) -> None:
    # The child starts with both signals ignored, as a background job of a shell without
    # job control starts (SIGINT ignored): the demo must install its own handlers.
    proc = subprocess.Popen([sys.executable, "-m", "raftx", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=ENV, preexec_fn=_ignore_signals)
    try:
        seen = ""
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by the test timeout; the demo prints as it goes
            seen += line
            if "was elected leader" in line:
                break
        assert "was elected leader" in seen, seen
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130, seen + rest
    assert "interrupted" in rest
    pids = _pids(seen)
    assert len(pids) == 3 and all(_gone(p) for p in pids)
    assert not _data_dir(seen).exists()
