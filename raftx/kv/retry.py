"""`RetryPolicy`: how `raftx.kv.KVClient` waits between the attempts of one operation.

Every retry loop of the client uses it: batched reads and writes, single requests
(`KVClient.range`, membership changes), `KVClient.status` and a `raftx.kv.Watch`'s
polls. An attempt that failed for a reason another attempt can fix (a leader
change, a redirect, a lost connection, a node that is not ready) is retried after
the next delay of a capped exponential backoff with jitter
(`raftx.network.Backoff`), never sleeping past the operation's deadline (its
``timeout``, retries included). Errors no retry can fix (`raftx.errors.BadCommand`,
`raftx.errors.NotAuthorized`, a refused hello from the one node asked) are raised at
once, whatever the policy. Reconnecting a lost connection has its own backoff, in
`raftx.network.RpcClient`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from raftx.network.backoff import Backoff

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays between retries (seconds): the n-th is ``min(maximum, initial * factor**n)``
    times a random factor in ``[1 - jitter, 1]``; see the module docstring.

    ``KVClient(addrs, retry=RetryPolicy(initial=0.1, maximum=2.0))`` backs off more
    gently than the default (first retry after 10-20 ms, then doubling up to 0.5 s).
    Invalid values raise `raftx.errors.ConfigError`.
    """

    initial: float = 0.02
    maximum: float = 0.5
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        self.backoff()  # ConfigError for values no backoff can have

    def backoff(self) -> Backoff:
        """A fresh delay sequence for one operation's retries."""
        return Backoff(self.initial, self.maximum, factor=self.factor, jitter=self.jitter)

    async def pause(self, backoff: Backoff, deadline: float) -> None:
        """Sleep ``backoff``'s next delay, but not past ``deadline`` (event-loop time)."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(min(backoff.next_delay(), max(0.0, deadline - loop.time())))
