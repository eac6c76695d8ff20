"""Cheap in-process counters and latency histograms behind ``/metrics``.

These are plain Python objects with no dependency: the hot paths only add to an
int or call `Histogram.observe` once per *batch* (a group-commit round, an apply
chunk, a ``client_write_many`` call), and `raftx.kv.http_status` turns them into
Prometheus families when ``/metrics`` is scraped (prometheus-client is imported
only there, lazily). Nothing here takes a lock: every counter has one writer (the
event loop thread; `Histogram`s of the log store's fsyncs: its I/O thread), and a
scrape that reads a value mid-update sees it a moment early or late, which a
monotonic counter tolerates.

* `Histogram`: fixed buckets (seconds), Prometheus-style cumulative on export.
* `NodeStats`: per node (``Raft.stats``): leader changes, proposals committed /
  failed, proposal and apply latency.
* `Traffic`: bytes and frames sent / received; `SERVER_TRAFFIC` (connections this
  process accepted) and `CLIENT_TRAFFIC` (connections it opened), per process.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["CLIENT_TRAFFIC", "LATENCY_BUCKETS", "SERVER_TRAFFIC", "Histogram", "NodeStats", "Traffic"]

#: Upper bounds (seconds) of the latency buckets: 0.1 ms .. ~13 s, doubling (etcd's
#: disk histograms use the same doubling from 1 ms).
LATENCY_BUCKETS: tuple[float, ...] = tuple(0.0001 * 2 ** i for i in range(18))


class Histogram:
    """Observations counted in fixed buckets (``bounds`` ascending; one more for +Inf)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"histogram bounds must be ascending and distinct, got {bounds!r}")
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation (the first bucket whose bound is >= ``value``)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``[(upper bound as text, observations <= it), ..., ("+Inf", count)]``."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, n in zip(self.bounds, self.counts):
            total += n
            out.append((repr(bound), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


@dataclass
class NodeStats:
    """One node's counters (`raftx.Raft.stats`), all since the node started."""

    #: Times this node learned of a leader other than the last one it knew (the first too).
    leader_changes: int = 0
    #: Client writes committed and applied (§5.3) / failed (not leader, stopped, ...).
    proposals_committed: int = 0
    proposals_failed: int = 0
    #: Seconds per ``client_write`` / ``client_write_many`` call, propose to applied.
    proposal_seconds: Histogram = field(default_factory=Histogram)
    #: Seconds per state-machine ``apply`` call (one chunk of committed entries).
    apply_seconds: Histogram = field(default_factory=Histogram)


@dataclass
class Traffic:
    """Bytes and frames through the connections of one side, since the process started."""

    bytes_sent: int = 0
    frames_sent: int = 0
    bytes_received: int = 0
    frames_received: int = 0


#: Connections this process accepted (`raftx.network.server.RpcServer`).
SERVER_TRAFFIC = Traffic()
#: Connections this process opened (`raftx.network.client.RpcClient`: peers, kv clients).
CLIENT_TRAFFIC = Traffic()
