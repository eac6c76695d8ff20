"""The leader's view of one follower or learner (etcd ``tracker.Progress``).

::

                     conflict / send failed
          +--------------------------------------------+
          v                                            |
       PROBE  --- first success ---> REPLICATE --------+
         |  ^                            |
 needs   |  | snapshot answered          | needs purged entries
 purged  v  |                            v
        SNAPSHOT <-----------------------+

* ``PROBE``: at most one AppendEntries in flight, until the follower's log is found
  to match (§5.3 consistency check, backtracking by term);
* ``REPLICATE``: pipelined AppendEntries, bounded by a window of requests and of
  (estimated) bytes; ``next_index`` moves optimistically past what was sent;
* ``SNAPSHOT``: a snapshot is being sent (§7); nothing else until it is answered.

Invariant: ``matching.index < next_index``.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

from raftx.types import LogId

__all__ = ["Progress", "ProgressState", "Send"]

#: At most this many unanswered heartbeats are remembered per target.
MAX_HEARTBEATS_REMEMBERED = 8


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class Send:
    """One request in flight to a target."""

    send_id: int
    sent_at: int
    prev_log_id: LogId | None
    #: Index of the last entry sent; ``prev_log_id.index`` for a heartbeat.
    last_index: int
    n_entries: int
    heartbeat: bool = False
    #: For a snapshot send: the snapshot's last log id.
    snapshot_last: LogId | None = None


class Progress:
    """Replication state of one target; see the module docstring."""

    __slots__ = (
        "matching", "next_index", "state", "sends", "inflight_entries",
        "acked_send_id", "acked_sent_at", "reverted_at",
    )

    def __init__(self, next_index: int) -> None:
        #: The last log id known to match the leader's log (None: nothing known).
        self.matching: LogId | None = None
        #: The next index to send. Invariant: matching.index < next_index.
        self.next_index = next_index
        self.state = ProgressState.PROBE
        #: Requests in flight, oldest first (replication, heartbeats and snapshot).
        self.sends: OrderedDict[int, Send] = OrderedDict()
        #: Entries in flight in replication requests (the window's byte estimate).
        self.inflight_entries = 0
        #: The largest send id this target answered (confirms leadership, §6.4 reads).
        self.acked_send_id = -1
        #: When the request with the largest answered send id was sent (leader lease).
        self.acked_sent_at = -1
        #: The match found lost when the target's log went back (logged once per value).
        self.reverted_at: LogId | None = None

    @property
    def matching_index(self) -> int:
        return -1 if self.matching is None else self.matching.index

    def replicating(self) -> int:
        """How many replication (non-heartbeat) requests are in flight."""
        return sum(1 for s in self.sends.values() if not s.heartbeat)

    def add(self, send: Send) -> None:
        self.sends[send.send_id] = send
        if send.heartbeat:
            hb = [k for k, s in self.sends.items() if s.heartbeat]
            for k in hb[:-MAX_HEARTBEATS_REMEMBERED]:
                del self.sends[k]
        else:
            self.inflight_entries += send.n_entries

    def pop(self, send_id: int) -> Send | None:
        send = self.sends.pop(send_id, None)
        if send is not None and not send.heartbeat:
            self.inflight_entries -= send.n_entries
        return send

    def ack(self, send: Send) -> None:
        """Record that ``send`` was answered by the target (with any vote <= ours)."""
        if send.send_id > self.acked_send_id:
            self.acked_send_id = send.send_id
        if send.sent_at > self.acked_sent_at:
            self.acked_sent_at = send.sent_at

    def reset_to_probe(self) -> None:
        """Forget every replication request in flight and probe from ``matching`` on."""
        for k in [k for k, s in self.sends.items() if not s.heartbeat]:
            del self.sends[k]
        self.inflight_entries = 0
        self.state = ProgressState.PROBE
        self.next_index = self.matching_index + 1

    def update_matching(self, log_id: LogId | None) -> bool:
        """``log_id`` is known to match; True if ``matching`` moved forward."""
        if log_id is None or log_id.index <= self.matching_index:
            return False
        self.matching = log_id
        if self.next_index <= log_id.index:
            self.next_index = log_id.index + 1
        return True

    def __repr__(self) -> str:
        return (
            f"Progress(state={self.state.value}, matching={self.matching!r}, next_index={self.next_index}, "
            f"in_flight={len(self.sends)})"
        )
