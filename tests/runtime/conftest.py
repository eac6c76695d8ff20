"""Fixtures for the runtime tests: an in-process cluster over a MemRouter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from raftkit import Cluster, loop_factories


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """A `Cluster` over a `MemRouter` with memory stores; every node is stopped at teardown."""
    c = Cluster("mem")
    yield c
    await c.close()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object] | None:
    """The basic API tests run on the stdlib loop and, when installed, on uvloop."""
    return loop_factories(item, ("test_raft_basic.py",))
