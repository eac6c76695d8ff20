"""README "Backup by snapshot", as written: copy a node's newest snapshot file while the
cluster runs, lose every data directory, restore the file into fresh data directories
and start the nodes without ``--init``: the keys the snapshot covers are back, the
restored cluster elects a leader and takes writes. Real processes, bounded waits.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from raftx.launcher import LocalCluster
from raftx.cli_inspect import main as inspect_main

pytestmark = [pytest.mark.timeout(180)]

WAIT = 30.0
KEYS = 300


def test_a_copied_snapshot_restores_the_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = LocalCluster(3, base_dir=tmp_path / "cluster", node_args=["--no-fsync", "--snapshot-every", "100"])
    backup = tmp_path / "backup"
    try:
        c.start()
        first = asyncio.run(c.wait_for_leader(WAIT))
        c.kill(first)  # a failover first: the writes below, and so the snapshot, are of a term >= 2
        asyncio.run(c.wait_for_leader(WAIT, exclude=[first]))
        c.restart(first)

        async def write() -> None:
            async with c.client() as kv:
                await asyncio.gather(*(kv.put(b"k%d" % k, b"v%d" % k) for k in range(KEYS)))
        asyncio.run(write())

        async def copy_newest() -> Path:
            """Copy node 1's newest snapshot while it runs (snapshots are renamed into place
            whole); if a newer one replaced it meanwhile, take that one. Polls another
            process's files, bounded."""
            backup.mkdir()
            src = c.nodes[1].argv[c.nodes[1].argv.index("--data-dir") + 1]
            async with asyncio.timeout(WAIT):
                while True:
                    snaps = sorted((Path(src) / "snapshots").glob("*.snap"))
                    if snaps:
                        try:
                            shutil.copy2(snaps[-1], backup / snaps[-1].name)
                            return backup / snaps[-1].name
                        except FileNotFoundError:
                            pass
                    await asyncio.sleep(0.05)
        newest = asyncio.run(copy_newest())
    finally:
        c.stop()
    for i in c.nodes:  # every data directory is lost
        shutil.rmtree(c.base_dir / f"node{i}")
        (c.base_dir / f"node{i}" / "snapshots").mkdir(parents=True)
        shutil.copy2(newest, c.base_dir / f"node{i}" / "snapshots" / newest.name)
        p = c.nodes[i]
        if "--init" in p.argv:
            p.argv.remove("--init")
    assert inspect_main([str(c.base_dir / "node1"), "--verify"]) == 0, capsys.readouterr()
    try:
        c.start()
        asyncio.run(c.wait_for_leader(WAIT))

        async def check() -> int:
            async with c.client() as kv:
                present = sum([await kv.get(b"k%d" % k) == b"v%d" % k for k in range(KEYS)])
                await kv.put(b"after-restore", b"yes")
                assert await kv.get(b"after-restore") == b"yes"
                return present
        present = asyncio.run(check())

        async def converged() -> dict[int, dict[str, object]]:
            """Poll (other processes' state, bounded) until all three applied the same index."""
            async with asyncio.timeout(WAIT):
                while True:
                    st = await c.statuses()
                    if len(st) == 3 and len({s["last_applied"] for s in st.values()}) == 1:
                        return st
                    await asyncio.sleep(0.05)
        statuses = asyncio.run(converged())
        assert all(s["term"] >= 1 for s in statuses.values())
        # --snapshot-every 100: the snapshot holds ~100 writes, each restored with its value,
        # and no key that was not written (the +1 is the write after the restore)
        assert present >= 90 and all(s["keys"] == present + 1 for s in statuses.values()), (present, statuses)
    finally:
        c.stop()
        c.cleanup()
