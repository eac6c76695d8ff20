"""All three raftx stores pass the public conformance suite, one pytest test per case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from raftx.testing.log_suite import log_store_suite_cases, run_log_store_case


@pytest.mark.parametrize("case", log_store_suite_cases())
async def test_case(builder: Callable[[], Awaitable[Any]], case: str) -> None:
    await run_log_store_case(builder, case, timeout=60)
