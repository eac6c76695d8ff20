"""Truncating a SegmentedLogStore right at its purge point (issue 10, bug 1).

A follower that installs a snapshot its log lacks truncates every uncommitted
entry after its commit index, which may equal its purge point while the purged
records still sit in the last segment. The truncate must leave an empty log that
continues at ``purged + 1`` (§7), also after a reopen.
"""

from __future__ import annotations

from pathlib import Path

from raftx.storage import SegmentedLogStore
from raftx.types import Entry, LogId


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(LogId(term, i), b"value-%04d" % i) for i in range(lo, hi)]


async def test_truncate_after_the_purge_point_inside_one_segment(tmp_path: Path) -> None:
    log = await SegmentedLogStore.open(tmp_path, cluster_name="c", node_id=1)
    await log.append(entries(0, 10))
    await log.purge(LogId(1, 5))  # records 0..5 stay in the file: the segment still holds 6..9
    await log.truncate_after(LogId(1, 5))
    state = await log.get_log_state()
    assert state.last_purged_log_id == LogId(1, 5) and state.last_log_id == LogId(1, 5)
    await log.append(entries(6, 8, term=2))
    assert [e.log_id for e in await log.try_get_log_entries(0, 100)] == [LogId(2, 6), LogId(2, 7)]
    await log.close()
    log = await SegmentedLogStore.open(tmp_path, cluster_name="c", node_id=1)
    assert [e.log_id for e in await log.try_get_log_entries(0, 100)] == [LogId(2, 6), LogId(2, 7)]
    await log.close()
