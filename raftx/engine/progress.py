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

Invariant: ``matching.index < next_index``. Every change of ``state`` is one of the
``become_*`` methods (etcd ``tracker.Progress``); the handlers never set it.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from raftx.types import LogId

__all__ = ["Progress", "ProgressState", "Send", "SendTimes"]

#: At most this many unanswered heartbeats are remembered per target (for what they
#: tell about the follower's log); an answer to a forgotten one still counts as an
#: acknowledgement of leadership, timed by `SendTimes`.
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

    def ack(self, send_id: int, sent_at: int) -> None:
        """Record that the request ``send_id``, sent at ``sent_at``, was answered by the
        target with this leader's vote (it accepted this leader then, §6.4)."""
        if send_id > self.acked_send_id:
            self.acked_send_id = send_id
        if sent_at > self.acked_sent_at:
            self.acked_sent_at = sent_at

    # -- transitions (etcd ``Progress.BecomeProbe`` / ``BecomeReplicate`` / ``BecomeSnapshot``) --

    def become_probe(self, next_index: int | None = None, *, drop_heartbeats: bool = False) -> None:
        """Forget every replication request in flight and probe from ``next_index``
        (default: right after ``matching``; never at or below it)."""
        if drop_heartbeats:
            self.sends.clear()
        else:
            for k in [k for k, s in self.sends.items() if not s.heartbeat]:
                del self.sends[k]
        self.inflight_entries = 0
        self.state = ProgressState.PROBE
        after_match = self.matching_index + 1
        self.next_index = after_match if next_index is None else max(next_index, after_match)

    def become_replicate(self) -> None:
        """The target's log was found to match: pipeline from what is known to match on.
        After a snapshot, exactly right after it; after a probe, keep what was sent."""
        after_match = self.matching_index + 1
        self.next_index = after_match if self.state is ProgressState.SNAPSHOT else max(self.next_index, after_match)
        self.state = ProgressState.REPLICATE

    def become_snapshot(self, send: Send) -> None:
        """Send the snapshot (``send``, §7); nothing else goes until it is answered."""
        self.become_probe()
        self.state = ProgressState.SNAPSHOT
        self.add(send)

    def sent_entries(self, send: Send) -> None:
        """Entries up to ``send.last_index`` left (optimistically: the next request follows them)."""
        self.add(send)
        self.next_index = send.last_index + 1

    def forget_matching(self, next_index: int) -> None:
        """The target lost what it matched (`raftx.engine.reversion`): probe anew from ``next_index``."""
        self.matching = None
        self.reverted_at = None
        self.become_probe(next_index)

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


class SendTimes:
    """When each of a leader's requests was sent, for every send id, in O(distinct times).

    Send ids grow with time, so the runs ``(first send id, time)`` recorded whenever
    the clock moved give the exact send time of any id. Runs older than ``horizon``
    are forgotten: an answer to a request sent that long ago can neither confirm a
    pending read nor extend the lease (both expire after ``election_timeout_max``).
    With it, an answer whose `Send` record was dropped (heartbeats beyond
    `MAX_HEARTBEATS_REMEMBERED`, requests forgotten after a conflict) still counts:
    on a link whose round trip spans more heartbeats than are remembered, every
    answer used to be ignored and reads waited until heartbeats stopped (issue 16).
    """

    __slots__ = ("_ids", "_times", "horizon")

    def __init__(self, horizon: int) -> None:
        self._ids: list[int] = []
        self._times: list[int] = []
        self.horizon = horizon

    def record(self, send_id: int, now: int) -> None:
        """Request ``send_id`` (larger than every id recorded before) leaves at ``now``."""
        times = self._times
        if times and times[-1] >= now:
            return  # same run
        self._ids.append(send_id)
        times.append(now)
        cut = bisect_right(times, now - self.horizon)
        if cut > 64:  # amortized: trim in chunks
            del self._ids[:cut], times[:cut]

    def sent_at(self, send_id: int, now: int) -> int | None:
        """The time request ``send_id`` was sent; None if unknown or beyond the horizon."""
        k = bisect_right(self._ids, send_id) - 1
        if k < 0 or self._times[k] <= now - self.horizon:
            return None
        return self._times[k]
