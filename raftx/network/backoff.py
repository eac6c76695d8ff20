"""Capped exponential backoff with jitter, for reconnecting to an unreachable peer.

openraft backs replication off after ``RPCError::Unreachable`` with a policy of
200, 400, 800, 1000, 1000... ms (``RaftNetworkV2::backoff``); the TCP client here
does the same for connection attempts, from 50 ms doubling to 1 s by default.
Jitter comes from an injected `random.Random`, so a seeded run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from raftx.errors import ConfigError

__all__ = ["Backoff"]


class Backoff:
    """Delays (seconds) of a capped exponential backoff with "equal jitter".

    The n-th delay (n = 0, 1, ...) is ``d * (1 - jitter + jitter * rng.random())``
    with ``d = min(maximum, initial * factor**n)``: with the default ``jitter=0.5``
    each delay lies in ``[d/2, d]``. Iterating yields delays forever; `next_delay`
    advances the same sequence and `reset` starts it again (after a success).
    """

    __slots__ = ("initial", "maximum", "factor", "jitter", "_rng", "_attempt")

    def __init__(
        self,
        initial: float = 0.05,
        maximum: float = 1.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not (initial > 0 and maximum >= initial and factor >= 1.0 and 0.0 <= jitter <= 1.0):
            raise ConfigError(
                f"invalid backoff: initial={initial} maximum={maximum} factor={factor} jitter={jitter}"
            )
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays have been handed out since the last `reset`."""
        return self._attempt

    def next_delay(self) -> float:
        """The next delay in seconds."""
        base = min(self.maximum, self.initial * self.factor ** min(self._attempt, 64))
        self._attempt += 1
        return base * (1.0 - self.jitter + self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start the sequence again from ``initial``."""
        self._attempt = 0

    def __iter__(self) -> Iterator[float]:
        while True:
            yield self.next_delay()
