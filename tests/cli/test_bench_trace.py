"""``raftx bench --critical-path``: one write's steps from traced node processes.

Runs three real node processes with `raftx.bench.trace` wrapping production methods
(no stand-ins): the report must follow a write from the leader's ``client_write``
through a follower's AppendEntries handler back to the leader's responders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raftx.bench.trace import critical_path
from raftx.cli import main

pytestmark = [pytest.mark.timeout(180), pytest.mark.durable]


def test_critical_path_follows_a_write_through_a_follower_and_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--critical-path", "--quiet", "--duration", "1", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    cp = out["critical_path"]
    assert cp["writes"] > 10
    at = {s["step"]: s["at_us"] for s in cp["steps"]}
    assert at["follower: AppendEntries handler"] < at["follower: AppendEntries handler returns"]
    assert at["leader: replicator: send AppendEntries"] < at["follower: server: bytes received"]
    io_round = "follower: I/O round (after any sync ahead)"
    assert at[f"{io_round} returns (io thread)"] > at[f"{io_round} (io thread)"] > at["follower: storage worker: queued"]
    assert at["leader: responders settled"] <= cp["p50_us"]
    assert out["level"]["writes"] > 10 and out["fsync"] is True


def test_overlapping_writes_are_left_out(tmp_path: Path) -> None:
    # two writes in flight at once cannot be cut into steps; the one after them can
    lines = [(1, "client_write"), (2, "client_write"), (3, "client_write returns"), (4, "client_write returns"),
             (10, "client_write"), (12, "engine"), (15, "client_write returns")]
    (tmp_path / "trace-7.tsv").write_text("".join(f"{t * 1000}\t7\tloop\t{label}\n" for t, label in lines))
    cp = critical_path(tmp_path, 7)
    assert cp["writes"] == 1 and cp["p50_us"] == 5.0
    assert [s["step"] for s in cp["steps"]] == ["leader: engine", "leader: client_write returns"]
