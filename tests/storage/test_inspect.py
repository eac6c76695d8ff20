"""`raftx inspect`: reports segments, hard state and snapshots; --verify finds corruption."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from raftx.storage import MemStateMachine, SegmentedLogStore
from raftx.cli_inspect import main
from raftx.types import Entry, LogId, Vote


async def _make(d: Path) -> None:
    log = await SegmentedLogStore.open(d / "log", segment_bytes=600, cluster_name="c1", node_id=3)
    for i in range(0, 40, 4):
        await log.append([Entry(LogId(2, j), b"payload-%d" % j) for j in range(i, i + 4)])
    await log.save_vote(Vote(2, 3, True))
    await log.save_committed(LogId(2, 30))
    await log.close()
    sm = await MemStateMachine.open(d / "snap")
    await sm.apply([Entry(LogId(2, j), b"p") for j in range(5)])
    await (await sm.get_snapshot_builder()).build_snapshot()


async def test_inspect_reports_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _make(tmp_path)
    assert main([str(tmp_path), "--json", "--dump", "--verify"]) == 0
    report = json.loads(capsys.readouterr().out)
    segs = report["segments"]
    assert len(segs) > 1
    assert segs[0]["first_index"] == 0 and segs[-1]["last_index"] == 39
    assert [s["sequence"] for s in segs] == list(range(1, len(segs) + 1))
    assert report["hard_state"]["vote"] == {"term": 2, "node_id": 3, "committed": True}
    assert report["hard_state"]["committed"] == [2, 30]
    assert [e["index"] for e in report["entries"]] == list(range(40))
    assert report["entries"][7]["payload"] == "payload-7"
    assert report["snapshots"][0]["last_log_id"] == [2, 4]
    assert report["error"] is None


async def test_verify_names_the_corrupt_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flip_record_bit: Callable[[Path, int], None]
) -> None:
    await _make(tmp_path)
    log = await SegmentedLogStore.open(tmp_path / "log", cluster_name="c1", node_id=3, segment_bytes=600)
    seg, offset, _ = log.log_index.locate(17)  # where record 17 lives
    await log.close()
    flip_record_bit(tmp_path / "log", 17)
    assert main([str(tmp_path), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "CORRUPT" in out and "CRC32C mismatch" in out
    assert main([str(tmp_path), "--verify", "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["offset"] == offset
    assert Path(err["file"]).name.startswith(f"{seg:016x}-")


async def test_verify_finds_corrupt_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _make(tmp_path)
    snap = next((tmp_path / "snap").glob("*.snap"))
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 1
    snap.write_bytes(bytes(data))
    assert main([str(tmp_path)]) == 0  # without --verify only headers are read
    capsys.readouterr()
    assert main([str(tmp_path), "--verify"]) == 1
    assert "snapshot checksum mismatch" in capsys.readouterr().out


def test_bad_directory(tmp_path: Path) -> None:
    assert main([str(tmp_path / "missing")]) == 2
