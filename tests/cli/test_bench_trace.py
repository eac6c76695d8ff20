"""``raftx bench --critical-path``: one write's steps from traced node processes.

Runs three real node processes with `raftx.bench.trace` wrapping production methods
(no stand-ins): the report must follow a write from the leader's ``client_write``
through a follower's AppendEntries handler and its fsync back to the leader's
responders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raftx.bench.trace import MILESTONES, critical_path
from raftx.cli import main

pytestmark = [pytest.mark.timeout(180), pytest.mark.durable]


def test_critical_path_follows_a_write_through_a_follower_and_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--critical-path", "--quiet", "--duration", "1", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    cp = out["critical_path"]
    assert cp["complete"] > 10 and cp["complete"] <= cp["writes"]
    assert [s["step"] for s in cp["steps"]] == [f"{who}: {label}" for who, label in MILESTONES]
    assert all(s["us"] >= 0 for s in cp["steps"])
    assert max(s["us"] for s in cp["steps"]) < cp["p50_us"]
    assert out["level"]["writes"] > 10 and out["fsync"] is True


def _trace(tmp_path: Path, events: list[tuple[float, int, str]]) -> None:
    for pid in {p for _, p, _ in events}:
        (tmp_path / f"trace-{pid}.tsv").write_text(
            "".join(f"{int(t * 1000)}\t{p}\t{label}\n" for t, p, label in events if p == pid))


def test_phases_follow_the_first_answering_follower_and_skip_overlapping_writes(tmp_path: Path) -> None:
    leader, slow, fast = 7, 8, 9
    events: list[tuple[float, int, str]] = [
        (1, leader, "client_write"), (2, leader, "client_write"),  # two in flight: left out
        (3, leader, "client_write returns"), (4, leader, "client_write returns"),
    ]
    t = 100.0
    events.append((t, leader, "client_write"))
    for who, label in MILESTONES:
        t += 10
        events.append((t, leader if who == "leader" else fast, label))
        if who == "follower":
            events.append((t + 0.5, slow, label))  # the other follower, always a little behind
    # the first writes are the warm-up: ten copies of the write, shifted, so one is cut
    shifted = [(a + k * 1000, p, label) for k in range(10) for a, p, label in events[4:]]
    _trace(tmp_path, events[:4] + shifted)
    cp = critical_path(tmp_path, leader)
    assert cp["writes"] == 9 and cp["complete"] == 9  # the overlapping pair, then 1 of 10 warm-up
    assert [s["us"] for s in cp["steps"]] == [10.0] * len(MILESTONES)
    assert cp["p50_us"] == 10.0 * len(MILESTONES)
