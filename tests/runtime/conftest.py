"""Fixtures for the runtime tests: an in-process cluster over a MemRouter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from raftkit import Cluster


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """A `Cluster` over a `MemRouter` with memory stores; every node is stopped at teardown."""
    c = Cluster("mem")
    yield c
    await c.close()
