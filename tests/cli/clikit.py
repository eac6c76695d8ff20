"""Helpers shared by the online CLI tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from raftx.launcher import LocalCluster

WAIT = 30.0


def serving(c: LocalCluster) -> Iterator[LocalCluster]:
    """Run ``c``'s nodes through the ``raftx serve`` command (as a user does), wait for a
    leader, yield the cluster, clean up (a module fixture's body)."""
    for p in c.nodes.values():
        assert p.argv[1:3] == ["-m", "raftx.kv.server"]
        p.argv[2:3] = ["raftx", "serve"]
    try:
        c.start()
        asyncio.run(c.wait_for_leader(WAIT))
        yield c
    finally:
        c.cleanup()
