"""Client sessions: apply each client write once, even when it is retried (Raft §8).

A client that times out or loses its leader retries the same command; the first
attempt may have committed. Every write therefore carries ``(client_id, serial)``,
and the state machine keeps, per client, the responses of the serials the client
has not yet acknowledged (Raft thesis §6.3). A retried command finds its response
here and is not applied again. With one request in flight per client this is
exactly "the last serial and its response"; a pipelining client keeps a few.

``acked`` (carried by every command) is the client's lowest serial still waiting
for an answer: responses below it are dropped, and a command below it is a late
duplicate of something the client already has an answer for (`STALE`).

Memory is bounded: at most ``max_responses`` cached responses per client (beyond
that the oldest quarter are dropped *and* the floor moves past them, so a very late retry
of one gets `STALE` rather than being applied twice) and at most ``max_sessions``
clients, the least recently used evicted first. Eviction happens in apply order, so
every replica evicts the same sessions. A retry arriving after its session was
evicted is applied again: keep ``max_sessions`` above the number of live clients.

The table is part of the state machine's snapshot (`SessionTable.dump` / `load`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from raftx.kv.commands import STALE, KVResponse

__all__ = ["Session", "SessionTable", "DEFAULT_MAX_SESSIONS", "DEFAULT_MAX_RESPONSES"]

DEFAULT_MAX_SESSIONS = 100_000
DEFAULT_MAX_RESPONSES = 16_384


class Session:
    """One client's floor (lowest serial that may still be retried) and cached responses."""

    __slots__ = ("floor", "responses")

    def __init__(self, floor: int = 0, responses: dict[int, KVResponse] | None = None) -> None:
        self.floor = floor
        self.responses: dict[int, KVResponse] = responses if responses is not None else {}

    def advance(self, acked: int) -> None:
        """Forget every response below ``acked`` (the client has them)."""
        if acked > self.floor:
            self.floor = acked
            r = self.responses
            if r:
                for s in [s for s in r if s < acked]:
                    del r[s]


class SessionTable:
    """``client_id -> Session`` with LRU eviction (see the module docstring)."""

    def __init__(self, max_sessions: int = DEFAULT_MAX_SESSIONS, max_responses: int = DEFAULT_MAX_RESPONSES) -> None:
        if max_sessions < 1 or max_responses < 1:
            raise ValueError("max_sessions and max_responses must be >= 1")
        self.max_sessions = max_sessions
        self.max_responses = max_responses
        self._sessions: OrderedDict[int, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._sessions

    def check(self, client_id: int, serial: int, acked: int) -> KVResponse | None:
        """The recorded response if ``serial`` was already applied, `STALE` if it is below
        the client's floor, None if it must be applied now (then call `record`)."""
        s = self._sessions.get(client_id)
        if s is None:
            return None
        self._sessions.move_to_end(client_id)
        s.advance(acked)
        cached = s.responses.get(serial)
        if cached is not None:
            return cached
        if serial < s.floor:
            return KVResponse(STALE, None)
        return None

    def record(self, client_id: int, serial: int, acked: int, response: KVResponse) -> None:
        """Remember the response to ``serial`` (just applied)."""
        sessions = self._sessions
        s = sessions.get(client_id)
        if s is None:
            s = sessions[client_id] = Session()
            s.advance(acked)
            if len(sessions) > self.max_sessions:
                sessions.popitem(last=False)
        r = s.responses
        r[serial] = response
        if len(r) > self.max_responses:
            # Drop the oldest quarter at once: one sort per max_responses/4 writes, not
            # a scan per write (a client whose floor lags must not slow every apply).
            drop = sorted(r)[: len(r) - self.max_responses * 3 // 4]
            for old in drop:
                del r[old]
            s.floor = max(s.floor, drop[-1] + 1)

    def items(self) -> Iterator[tuple[int, Session]]:
        """Sessions in eviction order (least recently used first)."""
        return iter(self._sessions.items())

    def dump(self) -> list[Any]:
        """A msgpack-encodable copy: ``[[client_id, floor, [[serial, status, value], ...]], ...]``."""
        return [[cid, s.floor, [[serial, r[0], r[1]] for serial, r in s.responses.items()]]
                for cid, s in self._sessions.items()]

    def load_item(self, item: Any) -> None:
        """Add one session from `dump` output (raises ValueError/TypeError if malformed)."""
        cid, floor, responses = item
        if not isinstance(cid, int) or not isinstance(floor, int):
            raise TypeError(f"malformed session {item!r:.100}")
        self._sessions[cid] = Session(
            floor, {int(serial): KVResponse(int(status), value) for serial, status, value in responses})
