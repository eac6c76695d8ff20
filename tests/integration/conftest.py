"""Integration tests reuse the runtime test kit (`tests.runtime.raftkit`) and the
transport tests' throwaway PKI (`tests.network.pkikit`)."""

from __future__ import annotations

import pytest

from tests.network.pkikit import Pki, make_pki
from tests.runtime.raftkit import loop_factories


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server and a client certificate from it, and a client certificate from another CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object] | None:
    """The TCP cluster tests run on the stdlib loop and, when installed, on uvloop."""
    return loop_factories(item, ("test_tcp_cluster.py",))
