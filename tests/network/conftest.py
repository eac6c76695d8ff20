"""Fixtures for the transport tests: servers on 127.0.0.1:0, throwaway TLS material."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio.plugin

from raftx.network import RpcClient, RpcServer
from tests.runtime.raftkit import loop_factories

from netkit import CLUSTER, echo
from pkikit import Pki, make_pki

if hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):  # the hook exists from pytest-asyncio 1.x

    def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
        """Run every async transport test on the stdlib loop and, when installed, on uvloop
        (only items under tests/network/ see this conftest's hook)."""
        return loop_factories(item)


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Any]]:
    """``await make_server(handler=echo, node_id=2, **kw)`` -> a started `RpcServer`, closed at teardown."""
    servers: list[RpcServer] = []

    async def make(handler: Any = echo, node_id: int = 2, port: int = 0, **kw: Any) -> RpcServer:
        kw.setdefault("cluster_name", CLUSTER)
        server = RpcServer(handler, "127.0.0.1", port, node_id=node_id, **kw)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., RpcClient]]:
    """``make_client(port, node_id=1, target_id=2, **kw)`` -> an `RpcClient`, closed at teardown."""
    clients: list[RpcClient] = []

    def make(port: int, node_id: int = 1, target_id: int = 2, **kw: Any) -> RpcClient:
        kw.setdefault("cluster_name", CLUSTER)
        client = RpcClient("127.0.0.1", port, node_id=node_id, target_id=target_id, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def spawn() -> AsyncIterator[Callable[[Any], asyncio.Task[Any]]]:
    """``spawn(coro)`` -> a task that is cancelled and awaited at teardown, so a failing
    test leaves no pending task behind (request it after ``make_client``)."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server and a client certificate from it, and a client certificate from another CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))
