"""Fixtures of the hostile-peer suite: a 3-node cluster over real TCP on 127.0.0.1
with durable stores in a temp dir, and `HostilePeer`s that speak the real protocol
(`RpcClient` + `RpcRaftNetwork`) under any node id they like."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtime.raftkit import Cluster, fast_config, loop_factories


@pytest.fixture
async def tcp_cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster("tcp", durable=True, tmp=tmp_path, config=fast_config())
    yield c
    await c.close()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object] | None:
    """The hostile-peer tests run on the stdlib loop only (they test logic, not the loop)."""
    return loop_factories(item, ())
