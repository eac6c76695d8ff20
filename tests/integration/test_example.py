"""The README example (examples/embed_cluster.py) runs as written."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "embed_cluster.py"


@pytest.mark.timeout(60)
async def test_embed_cluster_example_runs() -> None:
    module = runpy.run_path(str(EXAMPLE))
    assert await module["main"]() == [b"hello 0", b"hello 1", b"hello 2"]
