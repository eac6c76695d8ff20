"""`raftx.kv.RetryPolicy`: one policy for every retry loop of `KVClient`.

The client is pointed at a loopback port nobody listens on, so every attempt fails
with a retryable error until the operation's timeout; the policy given to the client
records each wait it is asked for (it still waits: the loops run as in production).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from raftx.errors import ConfigError, Timeout
from raftx.kv import KVClient, RetryPolicy
from raftx.network.backoff import Backoff


class Recording(RetryPolicy):
    """A `RetryPolicy` that also notes which loop asked it to wait."""

    waits: list[float] = []

    async def pause(self, backoff: Backoff, deadline: float) -> None:
        Recording.waits.append(deadline)
        await RetryPolicy.pause(self, backoff, deadline)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def next_event(kv: KVClient) -> Any:
    async with kv.watch("p/") as w:
        return await w.__anext__()


OPERATIONS: dict[str, Callable[[KVClient], Awaitable[Any]]] = {
    "batched write": lambda kv: kv.put("k", b"v"),
    "batched read": lambda kv: kv.get("k"),
    "single request (range)": lambda kv: kv.range(b"a", b"b"),
    "status": lambda kv: kv.status(),
    "watch poll": next_event,
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
async def test_every_retry_loop_waits_through_the_clients_policy(name: str) -> None:
    Recording.waits = []
    policy = Recording(initial=0.01, maximum=0.01)
    async with KVClient([f"1=127.0.0.1:{closed_port()}"], timeout=1.0, attempt_timeout=0.1, retry=policy) as kv:
        assert kv.retry is policy
        with pytest.raises(Timeout):
            await OPERATIONS[name](kv)
    assert Recording.waits, f"{name}: retried without asking the client's RetryPolicy"


def test_default_policy_and_validation() -> None:
    p = RetryPolicy()
    assert (p.initial, p.maximum, p.factor, p.jitter) == (0.02, 0.5, 2.0, 0.5)
    assert KVClient(["127.0.0.1:1"]).retry == p
    delays = RetryPolicy(initial=0.1, maximum=0.4, jitter=0.0).backoff()
    assert [delays.next_delay() for _ in range(4)] == [0.1, 0.2, 0.4, 0.4]
    for bad in ({"initial": 0}, {"maximum": 0.001}, {"factor": 0.5}, {"jitter": 2}):
        with pytest.raises(ConfigError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
