"""Integration tests reuse the runtime test kit (`raftkit`) and the transport tests' PKI."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent
for sub in ("runtime", "network"):
    if str(_TESTS / sub) not in sys.path:
        sys.path.insert(0, str(_TESTS / sub))

_spec = importlib.util.spec_from_file_location("raftx_network_test_conftest", _TESTS / "network" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_network_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _network_conftest
_spec.loader.exec_module(_network_conftest)

#: A throwaway CA with server and client certificates (see tests/network/conftest.py).
pki = _network_conftest.pki


def pytest_asyncio_loop_factories(config: object, item: object) -> dict[str, object] | None:
    """The TCP cluster tests run on the stdlib loop and, when installed, on uvloop."""
    from raftkit import loop_factories

    return loop_factories(item, ("test_tcp_cluster.py",))
