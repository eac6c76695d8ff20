"""`MonitorServer`: a node's ``/health``, ``/ready`` and ``/metrics`` over HTTP.

``raftx serve --metrics-addr HOST:PORT`` runs one in the node's event loop. It is a
deliberately small HTTP/1.1 server (``GET`` / ``HEAD``, one request per connection,
``Connection: close``): a request head over `MAX_REQUEST_HEAD` bytes, one not complete
within `REQUEST_TIMEOUT` seconds, or more than `MAX_CONNECTIONS` at once is answered
400 / 408 / 503 or dropped, and never reaches the node.

* ``/health``: 200 ``{"health": true, ...}`` while the node runs and has heard from a
  leader within the election timeout (``Config.election_timeout_max``; the leader
  itself: a quorum acknowledged it within that time), else 503 with ``"reason"``.
* ``/ready``: 200 once the node has applied everything up to the committed index it
  learned when it first heard from a leader after start (a follower: the leader's
  commit index, `raftx.Raft.leader_committed_index`, not capped by its own lagging
  log; a leader: its last index when elected, which its no-op commits), so a
  restarted follower is ready once it caught up with the cluster as of its start;
  else 503 with the progress. Ready stays ready unless the node stops.
* ``/metrics``: the Prometheus text format (`prometheus_client`, the ``metrics``
  extra; imported on the first scrape), names after etcd's: ``raftx_server_*``
  (role, term, indexes, proposals, leader changes, apply latency, per-follower
  matched index and lag), ``raftx_disk_*`` (fsync count and latency),
  ``raftx_network_*`` (bytes and frames, refused connections and requests). Every
  value is read at scrape time from `raftx.metrics.RaftMetrics`, `raftx.stats` and
  `raftx.network.server.ServerStats`: nothing on the node's hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from raftx.errors import BindError, Fatal
from raftx.stats import CLIENT_TRAFFIC, SERVER_TRAFFIC, Histogram, Traffic
from raftx.types import ServerState

__all__ = ["MAX_CONNECTIONS", "MAX_REQUEST_HEAD", "REQUEST_TIMEOUT", "MonitorServer"]

logger = logging.getLogger(__name__)

#: Bytes of request line + headers accepted (a probe or a scraper sends ~200).
MAX_REQUEST_HEAD = 8192
#: Seconds a connection may take to send its request head.
REQUEST_TIMEOUT = 5.0
#: Connections served at once; more are closed at once.
MAX_CONNECTIONS = 32

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 500: "Internal Server Error", 503: "Service Unavailable"}

# (ServerStats field, reason label) of refused connections / requests.
_REFUSED_CONNECTIONS = (("connections_rejected", "hello_rejected"), ("identity_rejected", "tls_identity"),
                        ("hello_timeouts", "hello_timeout"), ("pending_evicted", "pending_evicted"),
                        ("idle_timeouts", "idle_timeout"), ("buffer_evictions", "buffer_budget"),
                        ("error_budget_closes", "error_budget"), ("frames_rejected", "bad_frame"))


class MonitorServer:
    """HTTP ``/health``, ``/ready``, ``/metrics`` of one node (see the module doc).

    ``raft``: the `raftx.Raft`; ``log_store``: its log store (``fsync_stats()`` is read
    if it has one); ``rpc_stats``: the node's `ServerStats` (refused connections), or None.

    Example::

        async with MonitorServer(raft, store, server.rpc.stats, "127.0.0.1", 9101) as mon:
            ...   # curl http://127.0.0.1:9101/health
    """

    def __init__(self, raft: Any, log_store: Any = None, rpc_stats: Any = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.raft = raft
        self.log_store = log_store
        self.rpc_stats = rpc_stats
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._ready_task: asyncio.Task[None] | None = None
        #: The committed index to apply before ready (None: no leader known yet).
        self.ready_target: int | None = None
        self.ready = False
        self._registry: Any = None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (``port`` 0: any free port, see `addr`) and start watching for ready."""
        try:
            self._server = await asyncio.start_server(self._on_connection, self.host, self.port,
                                                      limit=MAX_REQUEST_HEAD, reuse_address=True)
        except OSError as exc:
            raise BindError(f"--metrics-addr {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready_task = asyncio.get_running_loop().create_task(self._watch_ready(), name="raftx-ready")

    @property
    def addr(self) -> str:
        """``host:port`` this server listens on."""
        return f"{self.host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and drop open connections (idempotent)."""
        if self._ready_task is not None:
            self._ready_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing must not fail the node's exit
                await self._ready_task
            self._ready_task = None
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MonitorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _watch_ready(self) -> None:
        # Follows metrics only until ready: afterwards nothing watches them.
        try:
            async for m in self.raft.metrics():
                if m.running_state is not None or self._check_ready(m):
                    return
        except Fatal:  # the node stopped: /ready says so from its metrics
            return

    def _check_ready(self, m: Any) -> bool:
        """Fix the target at the first leader contact, then compare applied with it."""
        if self.ready:
            return True
        if self.ready_target is None and m.current_leader is not None:
            if m.state == ServerState.LEADER:  # its no-op commits everything before it (§5.4.2)
                self.ready_target = -1 if m.last_log_index is None else m.last_log_index
            elif (committed := self.raft.leader_committed_index()) >= 0:
                self.ready_target = committed
        if self.ready_target is None:
            return False
        applied = -1 if m.last_applied is None else m.last_applied.index
        if applied >= self.ready_target:
            self.ready = True
            logger.info("node %d ready: applied %d, committed at start %d", m.id, applied, self.ready_target)
        return self.ready

    # -- HTTP -------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(task)
        try:
            status, ctype, body, head_only = await self._respond(reader)
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
            writer.write(head if head_only else head + body)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        """(status, content type, body, HEAD?) for the request on ``reader``."""
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            return (*_json(408, {"error": "request head not complete in time"}), False)
        except asyncio.LimitOverrunError:
            return (*_json(400, {"error": f"request head over {MAX_REQUEST_HEAD} bytes"}), False)
        except asyncio.IncompleteReadError:
            return (*_json(400, {"error": "connection closed before the request head ended"}), False)
        parts = raw.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return (*_json(400, {"error": "malformed request line"}), False)
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return (*_json(405, {"error": "only GET and HEAD"}), False)
        head_only = method == b"HEAD"
        try:
            if target == b"/health":
                return (*self.health(), head_only)
            if target == b"/ready":
                return (*self.readiness(), head_only)
            if target == b"/metrics":
                return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics_text(), head_only
        except Exception:  # noqa: BLE001 - a scrape must never take the node down
            logger.exception("monitor: %s failed", target.decode("latin-1"))
            return (*_json(500, {"error": "internal error, see the node's log"}), head_only)
        return (*_json(404, {"error": "try /health, /ready or /metrics"}), head_only)

    # -- the three answers --------------------------------------------------------------

    def health(self) -> tuple[int, str, bytes]:
        """``/health``: (status, content type, JSON body)."""
        m = self.raft.metrics().borrow()
        timeout = self.raft.config.election_timeout_max
        base: dict[str, Any] = {"id": m.id, "state": m.state.value, "term": m.current_term,
                                "leader": m.current_leader}
        if m.running_state is not None:
            return _json(503, {**base, "health": False, "reason": f"node stopped: {m.running_state}"})
        seen = self.raft.millis_since_leader_seen()
        base["millis_since_leader_seen"] = seen
        if m.current_leader is None or seen is None:
            return _json(503, {**base, "health": False, "reason": "no leader known"})
        if seen > timeout:
            who = "no quorum acknowledged this leader" if m.state == ServerState.LEADER else "no word from the leader"
            return _json(503, {**base, "health": False,
                               "reason": f"{who} for {seen} ms (election timeout {timeout} ms)"})
        return _json(200, {**base, "health": True})

    def readiness(self) -> tuple[int, str, bytes]:
        """``/ready``: (status, content type, JSON body)."""
        m = self.raft.metrics().borrow()
        if m.running_state is not None:
            return _json(503, {"id": m.id, "ready": False, "reason": f"node stopped: {m.running_state}"})
        ready = self._check_ready(m)
        applied = None if m.last_applied is None else m.last_applied.index
        body: dict[str, Any] = {"id": m.id, "applied": applied, "target": self.ready_target, "ready": ready}
        if ready:
            return _json(200, body)
        reason = ("no word from a leader yet" if self.ready_target is None
                  else f"applied {applied} of the {self.ready_target} committed at start")
        return _json(503, {**body, "reason": reason})

    def metrics_text(self) -> bytes:
        """``/metrics``: every family in the Prometheus text format."""
        if self._registry is None:
            from prometheus_client import (  # the `metrics` extra, imported lazily
                CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector)

            # A registry of our own (not the process-global one): two nodes in one process
            # each export their own; plus process_* (CPU, memory, fds), python_gc_*, python_info.
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Collector(self))
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
            self._registry = registry
        from prometheus_client import generate_latest

        return bytes(generate_latest(self._registry))


def _json(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", (json.dumps(body, sort_keys=True) + "\n").encode()


def _index(log_id: Any) -> float:
    return -1.0 if log_id is None else float(log_id.index)


class _Collector:
    """Builds the metric families of one `MonitorServer` at scrape time."""

    def __init__(self, monitor: MonitorServer) -> None:
        self.monitor = monitor

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        mon = self.monitor
        raft = mon.raft
        m = raft.metrics().borrow()
        stats = raft.stats

        def gauge(name: str, doc: str, value: float) -> Any:
            return GaugeMetricFamily(f"raftx_server_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> Any:
            return CounterMetricFamily(name, doc, value=value)

        yield gauge("has_leader", "1 if this node knows a leader", float(m.current_leader is not None))
        yield gauge("is_leader", "1 if this node is the leader", float(m.state == ServerState.LEADER))
        yield gauge("running", "1 while the node runs (0: stopped with a fatal error)", float(m.running_state is None))
        state = GaugeMetricFamily("raftx_server_state", "1 for the node's current role (§5.1)", labels=["state"])
        for s in ServerState:
            state.add_metric([s.value], float(m.state == s))
        yield state
        yield gauge("term", "current term (Figure 2 currentTerm)", float(m.current_term))
        yield gauge("leader_id", "id of the leader this node knows (-1: none)",
                    -1.0 if m.current_leader is None else float(m.current_leader))
        yield counter("raftx_server_leader_changes_seen", "leader changes this node has seen", stats.leader_changes)
        yield gauge("last_log_index", "index of the last log entry (-1: empty)",
                    -1.0 if m.last_log_index is None else float(m.last_log_index))
        yield gauge("committed_index", "highest index known committed (§5.3)", _index(m.committed))
        yield gauge("applied_index", "highest index applied to the state machine", _index(m.last_applied))
        yield gauge("snapshot_index", "last index in the latest snapshot (-1: none)", _index(m.snapshot))
        yield gauge("purged_index", "last purged log index (-1: none)", _index(m.purged))
        yield gauge("ready", "1 once /ready answers 200", float(mon.ready))
        seen = raft.millis_since_leader_seen()
        yield gauge("leader_seen_age_seconds", "seconds since this node last heard from a leader (-1: never)",
                    -1.0 if seen is None else seen / 1000.0)
        matched = GaugeMetricFamily("raftx_server_follower_matched_index",
                                    "on the leader: each follower's matched index (§5.3 matchIndex)",
                                    labels=["follower"])
        lag = GaugeMetricFamily("raftx_server_follower_lag_entries",
                                "on the leader: entries the leader has that the follower has not matched",
                                labels=["follower"])
        last = -1 if m.last_log_index is None else m.last_log_index
        for target, lid in sorted((m.replication or {}).items()):
            idx = -1 if lid is None else lid.index
            matched.add_metric([str(target)], float(idx))
            lag.add_metric([str(target)], float(last - idx))
        yield matched
        yield lag
        yield counter("raftx_server_proposals_committed", "client writes committed and applied",
                      stats.proposals_committed)
        yield counter("raftx_server_proposals_failed", "client writes that failed (not leader, stopped, ...)",
                      stats.proposals_failed)
        yield _histogram("raftx_server_proposal_duration_seconds",
                         "seconds per client_write / client_write_many call, propose to applied",
                         stats.proposal_seconds)
        yield _histogram("raftx_server_apply_duration_seconds", "seconds per state machine apply call",
                         stats.apply_seconds)
        yield counter("raftx_server_log_reversions", "followers seen to lose acknowledged entries",
                      m.log_reversions)
        fsync = getattr(mon.log_store, "fsync_stats", None)
        got = fsync() if callable(fsync) else None
        if got is not None:
            count, hist = got
            yield counter("raftx_disk_wal_fsync", "fdatasync calls on the log", count)
            yield _histogram("raftx_disk_wal_fsync_duration_seconds",
                             "seconds per group-commit round's fdatasync calls", hist)
        yield from _traffic()
        refused_requests = CounterMetricFamily("raftx_network_refused_requests",
                                               "peer RPCs refused, by reason (nothing changed on the node)",
                                               labels=["reason"])
        refused_requests.add_metric(["unauthorized"], m.rpcs_unauthorized)
        refused_requests.add_metric(["invalid"], m.rpcs_invalid)
        yield refused_requests
        rpc = mon.rpc_stats
        if rpc is not None:
            refused = CounterMetricFamily("raftx_network_refused_connections",
                                          "connections closed or refused by the server's checks and budgets",
                                          labels=["reason"])
            for attr, reason in _REFUSED_CONNECTIONS:
                refused.add_metric([reason], getattr(rpc, attr))
            yield refused
            yield counter("raftx_network_connections_accepted", "connections accepted", rpc.connections_accepted)
            yield GaugeMetricFamily("raftx_network_connections_active", "connections open now",
                                    value=rpc.connections_active)
            yield counter("raftx_network_requests", "requests received", rpc.requests)
            yield counter("raftx_network_handler_errors", "requests whose handler failed", rpc.handler_errors)


def _traffic() -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily

    sides: tuple[tuple[str, Traffic], ...] = (("server", SERVER_TRAFFIC), ("client", CLIENT_TRAFFIC))
    for field, name in (("bytes_sent", "sent_bytes"), ("bytes_received", "received_bytes"),
                        ("frames_sent", "sent_frames"), ("frames_received", "received_frames")):
        fam = CounterMetricFamily(f"raftx_network_{name}",
                                  f"{name.replace('_', ' ')} by this process, by side (server: accepted "
                                  "connections, client: connections it opened)", labels=["side"])
        for side, traffic in sides:
            fam.add_metric([side], getattr(traffic, field))
        yield fam


def _histogram(name: str, doc: str, hist: Histogram) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    return HistogramMetricFamily(name, doc, buckets=hist.cumulative(), sum_value=hist.sum)
