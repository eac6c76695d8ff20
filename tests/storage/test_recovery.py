"""Power loss and operator mistakes on real files: torn multi-record writes (R8),
damage that is not a tear (R9), lost files, and `raftx inspect` agreeing with open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raftx.errors import StorageCorrupted, StorageError
from raftx.storage import SegmentedLogStore
from raftx.cli_inspect import main as inspect_main
from raftx.storage.segment import HARDSTATE_NAME
from raftx.types import Entry, LogId, Vote

OPTS = dict(cluster_name="c", node_id=1)
SECTOR = 512
REPO = Path(__file__).resolve().parents[2]


def acked() -> list[Entry]:
    return [Entry(LogId(1, i), b"acked-%03d" % i * 5) for i in range(11)]


def last_write() -> list[Entry]:
    """Eight ~230-byte records: one pwrite over several sectors."""
    return [Entry(LogId(2, i), b"w%04d-" % i * 38) for i in range(11, 19)]


async def written(d: Path, **kw: object) -> tuple[Path, int, int]:
    """Acknowledged 0..10, then the last write; returns (segment, start, end) of that write."""
    log = await SegmentedLogStore.open(d, **{**OPTS, **kw})
    await log.append(acked())
    await log.save_vote(Vote(2, 1))
    seg = log.segment_info()[-1]
    start = seg[3]
    await log.append(last_write())
    end = log.segment_info()[-1][3]
    path = log.segment_info()[-1][4]
    assert log.segment_info()[-1][0] == seg[0], "the last write went to the same segment"
    await log.close()
    return path, start, end


def zero(path: Path, lo: int, hi: int) -> None:
    data = bytearray(path.read_bytes())
    size = len(data)
    data[lo:hi] = bytes(hi - lo)
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def inspect_exit(d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = inspect_main([str(d), "--verify", "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out else {})


def tears(start: int, end: int) -> list[tuple[str, int, int]]:
    """Every one-sector tear and every tail tear from a sector boundary of [start, end)."""
    out = []
    for s in range(start - start % SECTOR, end, SECTOR):
        lo = max(s, start)
        out.append(("sector", lo, min(s + SECTOR, end)))
        out.append(("tail", lo, end))
    return out


async def test_every_sector_tear_of_a_multi_record_write_is_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12 item 1: the disk kept the size but a sector (or the tail from a sector
    boundary) of the last write reads as zeros: open cuts from the first damaged record
    on and keeps everything acknowledged; inspect --verify agrees (exit 0)."""
    probe, start, end = await written(tmp_path / "probe")
    cases = tears(start, end)
    assert len(cases) >= 8
    want = [e.log_id for e in acked() + last_write()]
    for k, (kind, lo, hi) in enumerate(cases):
        d = tmp_path / f"t{k}"
        path, s0, e0 = await written(d)
        assert (s0, e0) == (start, end)
        zero(path, lo, hi)
        code, report = inspect_exit(d, capsys)
        assert code == 0, f"{kind} tear {lo}..{hi}: inspect says {report.get('error')}"
        assert "torn write" in json.dumps(report["segments"])
        log = await SegmentedLogStore.open(d, **OPTS)
        got = [e.log_id for e in await log.try_get_log_entries(0, 100)]
        assert got[:11] == want[:11], f"{kind} tear {lo}..{hi} lost acknowledged entries"
        assert got == want[: len(got)] and len(got) < len(want), f"{kind} tear {lo}..{hi}: {got}"
        await log.append(last_write()[len(got) - 11 :])  # the leader sends the rest again
        await log.close()
        log = await SegmentedLogStore.open(d, **OPTS)
        assert [e.log_id for e in await log.try_get_log_entries(0, 100)] == want
        await log.close()


async def _write_at(d: Path, pad: int) -> tuple[Path, int]:
    """Acknowledged 0..10 (entry 0 padded by ``pad`` bytes), then the last write;
    returns the segment and the offset where that write starts."""
    log = await SegmentedLogStore.open(d, **OPTS)
    await log.append([Entry(LogId(1, 0), b"p" * pad)] + acked()[1:])
    start = log.segment_info()[-1][3]
    await log.append(last_write())
    path = log.segment_info()[-1][4]
    await log.close()
    return path, start


async def test_a_tear_of_the_first_sector_at_every_alignment_is_cut(tmp_path: Path) -> None:
    """The torn sector holds the start of the write, which may begin anywhere in it,
    down to 1 byte before its end: zeros from the write's start to the sector's. With
    fewer than 8 zero bytes (part of the length and CRC fields) the rest of the record
    must read as the next entry's header (the simulation found this tear, seed 8130)."""
    want = [e.log_id for e in acked()]
    _, start0 = await _write_at(tmp_path / "probe", 0)
    short = [(SECTOR - start0 % SECTOR - k) % SECTOR for k in range(1, 8)]  # 1..7 bytes left in the sector
    for k, pad in enumerate(sorted({*range(0, SECTOR, 9), *short})):
        d = tmp_path / f"p{k}"
        path, start = await _write_at(d, pad)
        hi = start - start % SECTOR + SECTOR
        zero(path, start, hi)
        log = await SegmentedLogStore.open(d, **OPTS)
        got = [e.log_id for e in await log.try_get_log_entries(0, 100)]
        await log.close()
        assert got == want, f"write at {start} torn up to {hi}: {got}"


@pytest.mark.parametrize("field", [16, 25], ids=["index", "reserved"])
async def test_short_zeros_before_a_header_that_is_not_the_next_entry_are_refused(tmp_path: Path, field: int) -> None:
    """Fewer than 8 zero bytes at a bad record prove a tear only together with the
    expected header after them; with a wrong index or non-zero reserved bytes it is
    damage (R9), refused."""
    _, start0 = await _write_at(tmp_path / "probe", 0)
    pad = (SECTOR - start0 % SECTOR - 5) % SECTOR
    path, start = await _write_at(tmp_path / "d", pad)
    assert SECTOR - start % SECTOR == 5
    zero(path, start, start + 5)
    data = bytearray(path.read_bytes())
    data[start + field] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(StorageCorrupted):
        await SegmentedLogStore.open(tmp_path / "d", **OPTS)


async def test_damage_with_a_valid_record_after_it_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Non-zero damage (a flipped byte) in a record of the last write with valid records
    after it is corruption, not a tear (R9): refused, and inspect says so."""
    path, start, end = await written(tmp_path)
    data = bytearray(path.read_bytes())
    data[start + 300] ^= 0x55  # inside the second record of the last write
    path.write_bytes(bytes(data))
    assert inspect_exit(tmp_path, capsys)[0] == 1
    with pytest.raises(StorageCorrupted, match="CRC32C mismatch"):
        await SegmentedLogStore.open(tmp_path, **OPTS)


async def test_a_flip_before_a_later_tear_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A zero sector at the end does not excuse damage earlier in the file with valid
    records between the two."""
    path, start, end = await written(tmp_path)
    data = bytearray(path.read_bytes())
    data[start - 40] ^= 0x01  # in acknowledged entry 10
    data[end - 100 :] = bytes(100)
    path.write_bytes(bytes(data))
    assert inspect_exit(tmp_path, capsys)[0] == 1
    with pytest.raises(StorageCorrupted):
        await SegmentedLogStore.open(tmp_path, **OPTS)


async def test_a_zero_sector_in_an_earlier_segment_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the last segment can hold an interrupted write; zeros elsewhere are damage."""
    log = await SegmentedLogStore.open(tmp_path, **OPTS, segment_bytes=1500)
    for i in range(0, 40, 4):
        await log.append([Entry(LogId(1, j), b"x%03d" % j * 20) for j in range(i, i + 4)])
    first = log.segment_info()[0]
    assert len(log.segment_info()) > 2
    await log.close()
    zero(first[4], first[3] - 100, first[3])
    assert inspect_exit(tmp_path, capsys)[0] == 1
    with pytest.raises(StorageCorrupted):
        await SegmentedLogStore.open(tmp_path, **OPTS, segment_bytes=1500)


async def many_segments(d: Path) -> SegmentedLogStore:
    log = await SegmentedLogStore.open(d, **OPTS, segment_bytes=700)
    for i in range(0, 60, 5):
        await log.append([Entry(LogId(1, j), b"value-%04d" % j) for j in range(i, i + 5)])
    return log


async def test_lost_first_segment_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12 item 2: the head of a never-purged log deleted."""
    await (await many_segments(tmp_path)).close()
    first = sorted(tmp_path.glob("*.seg"))[0]
    first.unlink()
    code, report = inspect_exit(tmp_path, capsys)
    assert code == 1 and "missing" in str(report["error"])
    with pytest.raises(StorageError, match=r"segment\(s\) 1\.\.1 .* are missing"):
        await SegmentedLogStore.open(tmp_path, **OPTS, segment_bytes=700)


@pytest.mark.parametrize("purge", [False, True])
async def test_lost_hard_state_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], purge: bool) -> None:
    """Issue 12 item 2: the hard state deleted while segments exist (the vote is gone, §5.2)."""
    log = await many_segments(tmp_path)
    await log.save_vote(Vote(3, 1))
    if purge:
        await log.purge(LogId(1, 30))
    await log.close()
    (tmp_path / HARDSTATE_NAME).unlink()
    code, report = inspect_exit(tmp_path, capsys)
    assert code == 1 and "hard state" in str(report["error"])
    with pytest.raises(StorageError, match="hard state file .* is missing"):
        await SegmentedLogStore.open(tmp_path, **OPTS, segment_bytes=700)


async def test_a_new_log_has_a_hard_state_from_the_start(tmp_path: Path) -> None:
    """Why a missing hard state can be refused: open writes it with the directory."""
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    assert (tmp_path / HARDSTATE_NAME).exists()
    await log.append(acked())
    await log.close()
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    assert await log.read_vote() is None and len(await log.try_get_log_entries(0, 100)) == 11
    await log.close()


async def test_inspect_refuses_what_open_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12 item 6: a segment copied from another node, a committed index beyond the
    durable log: inspect --verify exits 1 (it said "all checksums OK")."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    await (await many_segments(mine)).close()
    log = await SegmentedLogStore.open(other, cluster_name="c", node_id=9, segment_bytes=700)
    for i in range(0, 60, 5):
        await log.append([Entry(LogId(1, j), b"value-%04d" % j) for j in range(i, i + 5)])
    await log.close()
    victim = sorted(mine.glob("*.seg"))[2]
    victim.write_bytes((other / victim.name).read_bytes())
    code, report = inspect_exit(mine, capsys)
    assert code == 1 and "node 9" in str(report["error"])
    with pytest.raises(StorageCorrupted, match="node 9"):
        await SegmentedLogStore.open(mine, **OPTS, segment_bytes=700)

    beyond = tmp_path / "beyond"
    log = await many_segments(beyond)
    await log.save_committed(LogId(1, 59))
    await log.close()
    sorted(beyond.glob("*.seg"))[-1].unlink()  # the tail of the log lost
    code, report = inspect_exit(beyond, capsys)
    assert code == 1 and "beyond the durable log" in str(report["error"])
    with pytest.raises(StorageCorrupted, match="beyond the durable log"):
        await SegmentedLogStore.open(beyond, **OPTS, segment_bytes=700)


async def test_inspect_checks_the_identity_the_node_opens_with(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await (await many_segments(tmp_path)).close()
    assert inspect_main([str(tmp_path), "--verify", "--cluster-name", "c", "--node-id", "1"]) == 0
    assert inspect_main([str(tmp_path), "--verify", "--node-id", "2"]) == 1
    assert "not cluster 'c' node 2" in capsys.readouterr().out
    with pytest.raises(StorageCorrupted, match="node 2"):
        await SegmentedLogStore.open(tmp_path, cluster_name="c", node_id=2, segment_bytes=700)


def test_inspect_exits_2_on_a_directory_that_holds_no_raftx_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect_main([str(tmp_path), "--verify"]) == 2
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "data.bin").write_bytes(b"\0" * 100)
    assert inspect_main([str(tmp_path), "--verify"]) == 2
    err = capsys.readouterr().err
    assert "not a raftx data directory" in err


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


async def test_a_second_process_is_refused_naming_the_owner(tmp_path: Path) -> None:
    """Issue 12 item 7: one owner per data directory, across processes (flock)."""
    log = await SegmentedLogStore.open(tmp_path, **OPTS)
    code = (
        "import asyncio, sys\n"
        "from raftx.storage import SegmentedLogStore\n"
        "from raftx.errors import StorageError\n"
        "async def main():\n"
        "    try:\n"
        "        await SegmentedLogStore.open(sys.argv[1], cluster_name='c', node_id=1)\n"
        "    except StorageError as exc:\n"
        "        print(exc); sys.exit(3)\n"
        "asyncio.run(main())\n"
    )
    got = _python(code, str(tmp_path))
    assert got.returncode == 3 and f"data directory in use by pid {os.getpid()}" in got.stdout, got
    await log.close()
    assert _python(code, str(tmp_path)).returncode == 0  # the owner is gone: the next one may open


async def test_serve_on_a_locked_directory_exits_non_zero(tmp_path: Path) -> None:
    """``raftx serve`` on a data directory another node owns: exit non-zero, with the message."""
    log = await SegmentedLogStore.open(tmp_path / "log", cluster_name="raftx", node_id=1)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        got = subprocess.run(
            [sys.executable, "-m", "raftx", "serve", "--id", "1", "--listen", "127.0.0.1:1", "--data-dir", str(tmp_path)],
            capture_output=True, text=True, env=env, timeout=120,
        )
    finally:
        await log.close()
    assert got.returncode != 0
    assert f"data directory in use by pid {os.getpid()}" in got.stderr, got.stderr


async def test_records_read_back_after_a_process_crash_are_synced_at_open() -> None:
    """kill -9 leaves appended records in the page cache, unsynced; the reopened node
    treats its whole log as durable (it acknowledges it, §5.3), so `open` must sync it:
    a power loss after the restart keeps every record the restarted node read back.
    Found by the simulation (seeds 416 and 674: "durable log lost")."""
    from raftx.testing.simfs import SimFS

    fs = SimFS(seed=1)
    d = Path("/sim/log")
    log = await SegmentedLogStore.open(d, io=fs)
    await log.append([Entry(LogId(1, i), b"value-%04d" % i) for i in range(10)])  # durable
    await log.close()
    log = await SegmentedLogStore.open(d, io=fs, fsync=False)  # these reach the page cache only
    await log.append([Entry(LogId(1, i), b"value-%04d" % i) for i in range(10, 20)])
    fs.crash()  # kill -9 before any fdatasync of them: the page cache survives
    fs.revive()
    log = await SegmentedLogStore.open(d, io=fs)
    assert (await log.get_log_state()).last_log_id == LogId(1, 19)  # read back: now vouched for
    fs.crash()
    fs.power_loss(kept=0)  # nothing unsynced survives
    log = await SegmentedLogStore.open(d, io=fs)
    assert (await log.get_log_state()).last_log_id == LogId(1, 19)
    await log.close()
