"""The leader's side of log replication (§5.3) and commitment (§5.4.2).

* Client writes are appended as one batch (group commit) and replicated to every
  other member; the leader names index *ranges* (`Replicate`), the runtime reads
  the bytes from its log store.
* Per target a `raftx.engine.progress.Progress` runs probe -> pipelined replicate
  (bounded window in requests and estimated bytes) -> snapshot when the entries
  it needs were purged or it lags more than ``replication_lag_threshold`` (§7).
* A failed consistency check backtracks by term using the follower's hint (§5.3).
* `maybe_commit` is the one place that advances a leader's commit index: the
  quorum-matched index counts only if its entry is from the current term
  (§5.4.2, Figure 8). The leader's own log counts only once flushed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence, cast

from raftx import _core
from raftx.engine import reads, reversion
from raftx.engine.commands import Replicate, SendSnapshot, BuildSnapshot
from raftx.engine.progress import Progress, ProgressState, Send
from raftx.messages import AppendEntriesResponse, PayloadBatch, SnapshotResponse
from raftx.errors import ClientWriteError, ForwardToLeader

if TYPE_CHECKING:
    from raftx.engine.engine import Engine

__all__ = [
    "broadcast_heartbeat",
    "client_write",
    "handle_append_response",
    "handle_replication_failed",
    "handle_snapshot_response",
    "leader_append",
    "maybe_commit",
    "rebuild_progress",
    "send_to",
]

logger = logging.getLogger(__name__)

_BYTES = frozenset({bytes})
_PLAIN = frozenset({bytes, type(None)})


# -- appending ------------------------------------------------------------------------------


def client_write(eng: Engine, payloads: Sequence[bytes | None], responders: Sequence[Any]) -> None:
    """Append a batch of client payloads as one write (group commit) and replicate it."""
    if len(responders) != len(payloads):
        raise ValueError(f"{len(payloads)} payloads but {len(responders)} responders")
    if not payloads:
        return
    kinds = set(map(type, payloads))
    plain = kinds <= _PLAIN  # the common case, checked at C speed: bytes (or blanks) only
    bad = [] if plain else [k for k, x in enumerate(payloads)
                            if x is not None and not isinstance(x, (bytes, bytearray, memoryview))]
    if bad:
        for r in responders:
            eng.respond(r, ClientWriteError(f"payloads must be bytes; not at positions {bad}"))
        return
    err: Exception | None = None
    if eng.leader is None:
        err = eng.forward_to_leader()
    elif eng.leader.transfer_to is not None or not reads.lease_valid(eng):
        err = ForwardToLeader(None, None)  # transferring, or no quorum heard within the lease
    if err is not None:
        for r in responders:
            eng.respond(r, err)
        return
    if kinds == _BYTES:  # every payload is bytes
        size = sum(map(len, cast("Sequence[bytes]", payloads)))
    else:
        size = sum(len(p) for p in payloads if p is not None)
    limit = eng.config.max_payload_bytes
    if size > limit:  # a payload no frame can carry would stall replication: refuse it alone
        fits = [p is None or len(p) <= limit for p in payloads]
        if not all(fits):
            for r, p, ok in zip(responders, payloads, fits):
                if not ok:
                    eng.respond(r, ClientWriteError(f"payload of {len(p or b'')} bytes exceeds "
                                                    f"Config.max_payload_bytes ({limit})"))
            payloads = [p for p, ok in zip(payloads, fits) if ok]
            responders = [r for r, ok in zip(responders, fits) if ok]
            if not payloads:
                return
            size = sum(len(p) for p in payloads if p is not None)
    leader = eng.leader
    assert leader is not None
    leader.entry_bytes = 0.9 * leader.entry_bytes + 0.1 * (size / len(payloads))
    if not plain:
        payloads = [bytes(x) if isinstance(x, (bytearray, memoryview)) else x for x in payloads]
    leader_append(eng, PayloadBatch(eng.vote.term, eng.log.last_index + 1, payloads), responders)


def leader_append(eng: Engine, batch: PayloadBatch, responders: Sequence[Any]) -> None:
    """Append ``batch`` to the leader's log, remember its responders, replicate (§5.3)."""
    eng.append_to_log(batch)
    eng.responders.push(batch.first_index, responders)
    for target, progress in eng.leader.progress.items() if eng.leader else ():
        send_to(eng, target, progress)


# -- progress bookkeeping ----------------------------------------------------------------------


def rebuild_progress(eng: Engine) -> None:
    """Targets = every member but self; the commit tracker follows the effective voters."""
    leader = eng.leader
    assert leader is not None
    m = eng.membership.effective.membership
    targets = set(m.nodes) - {eng.id}
    for gone in set(leader.progress) - targets:
        del leader.progress[gone]
    for t in sorted(targets - set(leader.progress)):
        # probe with the last entry (§5.3): a conflict answer walks back from there
        leader.progress[t] = Progress(max(eng.log.last_index, eng.log.first_index))
    leader.new_tracker(m)
    own = eng.io.flushed_log_id
    if own is not None and eng.log.has(own):
        leader.tracker.update(eng.id, own.index)


def _new_send_id(eng: Engine) -> int:
    leader = eng.leader
    assert leader is not None
    leader.next_send_id += 1
    return leader.next_send_id


def send_to(eng: Engine, target: int, p: Progress) -> bool:
    """Send what ``target`` needs next, within its window; True if anything was sent."""
    leader = eng.leader
    assert leader is not None
    if p.state is ProgressState.SNAPSHOT:
        return False
    log = eng.log
    if p.next_index <= log.purged_index or _lags_beyond_threshold(eng, p):
        return _send_snapshot(eng, target, p)
    if p.state is ProgressState.PROBE and p.replicating():
        return False
    c = eng.config
    # Entries per request: max_payload_entries, fewer when the average payload size
    # says they would fill more than half a frame (a frame over max_frame_bytes is refused).
    per_request = max(1, min(c.max_payload_entries, int(c.max_frame_bytes / 2 / max(leader.entry_bytes, 1.0))))
    sent = False
    while p.next_index <= log.last_index:
        if p.replicating() >= (1 if p.state is ProgressState.PROBE else c.max_inflight_appends):
            break
        if p.inflight_entries and p.inflight_entries * leader.entry_bytes >= c.max_inflight_bytes:
            break
        prev = log.log_id_at(p.next_index - 1)
        if prev is None and p.next_index - 1 >= 0:
            return _send_snapshot(eng, target, p)
        last = min(log.last_index, p.next_index + per_request - 1)
        send_id = _new_send_id(eng)
        p.add(Send(send_id, eng.now, prev, last, last - p.next_index + 1))
        eng.emit(Replicate(target, send_id, leader.vote, prev, p.next_index, last, eng.committed))
        p.next_index = last + 1
        sent = True
    return sent


def _lags_beyond_threshold(eng: Engine, p: Progress) -> bool:
    snap = eng.snapshot
    if snap is None or snap.last_log_id is None:
        return False
    return (
        eng.log.last_index - p.matching_index > eng.config.replication_lag_threshold
        and snap.last_log_id.index > p.matching_index
    )


def _send_snapshot(eng: Engine, target: int, p: Progress) -> bool:
    """Send the snapshot to ``target`` (§7); build one first if there is none."""
    leader = eng.leader
    assert leader is not None
    snap = eng.snapshot
    if snap is None or snap.last_log_id is None or snap.last_log_id.index < eng.log.purged_index:
        if not eng.snapshot_building:
            eng.snapshot_building = True
            eng.emit(BuildSnapshot())
        return False
    p.reset_to_probe()
    p.state = ProgressState.SNAPSHOT
    send_id = _new_send_id(eng)
    p.add(Send(send_id, eng.now, None, snap.last_log_id.index, 0, snapshot_last=snap.last_log_id))
    eng.emit(SendSnapshot(target, send_id, leader.vote))
    return True


def broadcast_heartbeat(eng: Engine) -> None:
    """Send every target what it needs, or an empty AppendEntries (heartbeat, §5.2)."""
    leader = eng.leader
    if leader is None:
        return
    eng.next_heartbeat = eng.now + eng.config.heartbeat_interval
    for target, p in leader.progress.items():
        if not send_to(eng, target, p):
            send_heartbeat(eng, target, p)


def send_heartbeat(eng: Engine, target: int, p: Progress) -> None:
    """An empty AppendEntries with prev = what the target is known to match."""
    leader = eng.leader
    assert leader is not None
    send_id = _new_send_id(eng)
    p.add(Send(send_id, eng.now, p.matching, p.matching_index, 0, heartbeat=True))
    eng.emit(Replicate(target, send_id, leader.vote, p.matching, p.matching_index + 1, p.matching_index, eng.committed))


# -- answers -----------------------------------------------------------------------------------


def handle_append_response(eng: Engine, target: int, send_id: int, resp: AppendEntriesResponse) -> None:
    """Process a follower's answer to `Replicate` ``send_id`` (§5.3)."""
    from raftx.engine.election import step_down_to_term

    if resp.vote.term > eng.vote.term:
        step_down_to_term(eng, resp.vote.term)  # §5.1
        return
    leader = eng.leader
    if leader is None:
        return
    p = leader.progress.get(target)
    if p is None:
        return
    send = p.pop(send_id)
    if send is None:
        return  # answer to a request forgotten after a conflict or failure
    if resp.vote != leader.vote:
        return  # not an answer from our term
    p.ack(send)
    reads.on_quorum_ack(eng)
    if resp.success:
        matching = resp.matching
        if matching is None:
            matching = send.prev_log_id if send.heartbeat else eng.log.log_id_at(send.last_index)
        elif matching.index > send.last_index or not eng.log.has(matching):
            matching = None  # a follower claiming more than was sent: ignore the claim
        if p.update_matching(matching) and target in leader.progress:
            maybe_commit(eng, leader.tracker.update(target, p.matching_index))
        if not send.heartbeat and p.matching_index < send.last_index:
            p.reset_to_probe()  # partial success: resend from what matched
        elif p.state is ProgressState.PROBE and not send.heartbeat:
            p.state = ProgressState.REPLICATE
            p.next_index = max(p.next_index, p.matching_index + 1)
    elif not send.heartbeat or send.prev_log_id is not None:
        _backtrack(eng, target, p, send, resp)
    if eng.leader is not None:
        send_to(eng, target, p)
        from raftx.engine import transfer

        transfer.maybe_send_transfer(eng)


def _backtrack(eng: Engine, target: int, p: Progress, send: Send, resp: AppendEntriesResponse) -> None:
    """The consistency check failed at ``send.prev_log_id`` (§5.3): probe lower.

    The follower's hint (``conflict_index``, ``conflict_term``) names the last
    index where its term is <= our prev term; our own log answers which index
    below that can match, skipping a whole term per round trip. ``send`` is still
    in flight (answers to forgotten requests never get here) and from this term, so
    a rejection at or below the matching index is no reordered answer: the
    follower lost entries it had acknowledged (`raftx.engine.reversion`).
    """
    rejected = -1 if send.prev_log_id is None else send.prev_log_id.index
    if rejected <= p.matching_index:
        reversion.on_follower_log_reverted(eng, target, p, send, resp)
        return
    probe, _ = eng.log.find_conflict_by_term(min(resp.conflict_index, rejected), resp.conflict_term)
    if resp.conflict_index < 0:
        probe = -1
    p.reset_to_probe()
    p.next_index = max(min(rejected, probe + 1), p.matching_index + 1)


def handle_replication_failed(eng: Engine, target: int, send_id: int) -> None:
    """A request could not be delivered: forget it and probe again at the next heartbeat."""
    leader = eng.leader
    if leader is None or target not in leader.progress:
        return
    p = leader.progress[target]
    send = p.sends.get(send_id) if send_id >= 0 else None
    if send_id >= 0 and send is None:
        return
    if send is not None and send.heartbeat:
        p.pop(send_id)
        return
    p.sends.clear()
    p.inflight_entries = 0
    p.reset_to_probe()


def handle_snapshot_response(eng: Engine, target: int, send_id: int, resp: SnapshotResponse) -> None:
    """The target installed (or already had) the snapshot (§7): replicate after it."""
    from raftx.engine.election import step_down_to_term

    if resp.vote.term > eng.vote.term:
        step_down_to_term(eng, resp.vote.term)
        return
    leader = eng.leader
    if leader is None or target not in leader.progress:
        return
    p = leader.progress[target]
    send = p.pop(send_id)
    if send is None or resp.vote != leader.vote:
        return
    p.ack(send)
    reads.on_quorum_ack(eng)
    if p.update_matching(send.snapshot_last):
        maybe_commit(eng, leader.tracker.update(target, p.matching_index))
    p.state = ProgressState.REPLICATE
    p.next_index = p.matching_index + 1
    send_to(eng, target, p)


def on_local_flushed(eng: Engine) -> None:
    """The leader's own log became durable further: it counts toward commit now."""
    leader = eng.leader
    assert leader is not None
    own = eng.io.flushed_log_id
    if own is not None and eng.log.has(own):
        maybe_commit(eng, leader.tracker.update(eng.id, own.index))


# -- commitment ----------------------------------------------------------------------------------


def maybe_commit(eng: Engine, quorum_index: int) -> bool:
    """Commit up to ``quorum_index`` (matched by a quorum) if allowed; True if it moved.

    §5.4.2 (Figure 8): a leader commits by counting replicas only entries of its
    own term; earlier entries are committed indirectly with them. This is the
    only place a leader's commit index advances.
    """
    leader = eng.leader
    if leader is None or quorum_index == _core.quorum.INDEX_MAX:
        return False
    committed = -1 if eng.committed is None else eng.committed.index
    if quorum_index <= committed:
        return False
    if eng.log.term_at(quorum_index) != leader.vote.term:
        return False
    eng.commit_to(quorum_index)
    return True
