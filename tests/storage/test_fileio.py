"""`FileIO`'s atomic write (tmp + fsync + rename + directory fsync, R7), the one copy
every durable store uses (segment creation, the hard state, snapshot files).

Crashed at every file operation and then losing power (`SimFS`), the file holds its
old content or all of the new one; once the write returned, the new one survives.
"""

from __future__ import annotations

import pytest

from raftx.testing import SimFS, SimulatedCrash

OPS = ["open", "pwrite", "fsync", "rename", "fsync_dir"]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("crash_at", range(len(OPS) + 1))
def test_write_atomic_is_old_or_new_after_a_crash_and_power_loss(crash_at: int, seed: int) -> None:
    fs = SimFS(seed)
    fs.makedirs("/d")
    fs.write_atomic("/d/f", b"old")
    start = fs.ops
    fs.crash_after(crash_at)
    try:
        fs.write_atomic("/d/f", b"new content")
        returned = True
    except SimulatedCrash:
        returned = False
    assert returned == (crash_at == len(OPS))
    assert [name for _, name, _ in fs.ops_since(start)] == OPS[:crash_at]
    fs.power_loss()
    content = fs.files()["/d/f"]
    assert content == b"new content" if returned else content in (b"old", b"new content")


def test_write_atomic_without_sync_skips_only_the_fsyncs() -> None:
    fs = SimFS(0)
    fs.makedirs("/d")
    start = fs.ops
    fd = fs.create_atomic("/d/f", b"x", sync=False)
    assert [name for _, name, _ in fs.ops_since(start)] == ["open", "pwrite", "rename"]
    assert fs.pread(fd, 1, 0) == b"x"  # create_atomic leaves it open for reading and writing
    fs.close(fd)
