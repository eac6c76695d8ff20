"""The Raft RPC payloads (`raftx.network.raft_rpc`): round trips and malformed input.

Every request survives encode -> decode; entry records travel as the log's bytes;
random or damaged payloads raise `ProtocolError` and nothing else.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftx.errors import ProtocolError
from raftx.messages import AppendEntriesRequest, TransferLeaderRequest, VoteRequest
from raftx.network.raft_rpc import decode_request, encode_request
from raftx.runtime.entries import BatchEntries
from raftx.storage import EncodedBatch
from raftx.types import Entry, LogId, Membership, Vote


def _batch() -> EncodedBatch:
    return EncodedBatch.from_entries([
        Entry(LogId(2, 5), b"a"), Entry(LogId(2, 6), None), Entry(LogId(3, 7), Membership.new([1, 2])),
        Entry(LogId(3, 8), b"b" * 100),
    ])


def test_append_request_round_trip_carries_the_log_bytes_unchanged() -> None:
    batch = _batch()
    req = AppendEntriesRequest(Vote(3, 1, True), LogId(2, 4), BatchEntries(batch), LogId(2, 5))
    got = decode_request("append", encode_request("append", req))
    assert (got.vote, got.prev_log_id, got.leader_commit) == (req.vote, req.prev_log_id, req.leader_commit)
    assert isinstance(got.entries, EncodedBatch) and got.entries.data == batch.data
    wrapped = BatchEntries(got.entries)
    assert wrapped.term_runs() == [(5, 2), (7, 3)]
    assert wrapped.memberships() == [(LogId(3, 7), Membership.new([1, 2]))]
    assert wrapped.sliced(2).log_id_at(0) == LogId(3, 7)
    heartbeat = decode_request("append", encode_request("append", AppendEntriesRequest(Vote(3, 1, True), None)))
    assert heartbeat.entries == () and heartbeat.prev_log_id is None


def test_vote_and_transfer_round_trip() -> None:
    v = VoteRequest(Vote(4, 2), LogId(3, 9), True)
    assert decode_request("vote", encode_request("vote", v)) == v
    t = TransferLeaderRequest(Vote(4, 2, True), 3, LogId(4, 10))
    assert decode_request("transfer", encode_request("transfer", t)) == t


def test_entries_that_do_not_follow_prev_are_refused() -> None:
    req = AppendEntriesRequest(Vote(3, 1, True), LogId(2, 2), BatchEntries(_batch()), None)  # batch starts at 5
    with pytest.raises(ProtocolError):
        decode_request("append", encode_request("append", req))


def test_a_flipped_bit_in_the_entries_is_caught() -> None:
    req = AppendEntriesRequest(Vote(3, 1, True), LogId(2, 4), BatchEntries(_batch()), None)
    raw = bytearray(encode_request("append", req))
    raw[-3] ^= 0x10
    with pytest.raises(ProtocolError):
        decode_request("append", bytes(raw))


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["append", "vote", "transfer", "other"]), data=st.binary(max_size=300))
def test_random_payloads_raise_protocol_error_only(method: str, data: bytes) -> None:
    try:
        decode_request(method, data)
    except ProtocolError:
        pass


def test_damaged_valid_payloads_raise_protocol_error_only() -> None:
    rng = random.Random(7)
    req = AppendEntriesRequest(Vote(3, 1, True), LogId(2, 4), BatchEntries(_batch()), LogId(2, 5))
    good = encode_request("append", req)
    for _ in range(500):
        raw = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        cut = rng.choice([len(raw), rng.randrange(len(raw) + 1)])
        try:
            decode_request("append", bytes(raw[:cut]))
        except ProtocolError:
            pass
