"""EncodedBatch: encode once, validate bytes from outside, slice for replication."""

from __future__ import annotations

import pytest

from raftx.errors import CorruptRecord
from raftx.storage import EncodedBatch
from raftx.types import Entry, LogId, Membership


def sample() -> list[Entry]:
    return [Entry(LogId(1, 7), None), Entry(LogId(1, 8), b"x" * 100), Entry(LogId(2, 9), Membership.new([1, 2])), Entry(LogId(2, 10), b"")]


def test_round_trip_and_views() -> None:
    b = EncodedBatch.from_entries(sample())
    assert len(b) == 4 and b.first_index == 7 and b.last_index == 10
    assert b.last_log_id == LogId(2, 10)
    assert b.log_ids() == [e.log_id for e in sample()]
    assert b.entries() == sample()
    again = EncodedBatch.from_bytes(b.data, 7)
    assert again == b and list(again.terms) == [1, 1, 2, 2]


def test_slice_and_concat() -> None:
    b = EncodedBatch.from_entries(sample())
    parts = [b.slice(0, 9), b.slice(9, 10), b.slice(10, 100)]
    assert [len(p) for p in parts] == [2, 1, 1]
    assert parts[1].entries() == sample()[2:3]
    assert EncodedBatch.concat(parts) == b
    assert len(b.slice(11, 20)) == 0


@pytest.mark.parametrize("pos", [0, 5, 40, 100, -1])
def test_from_bytes_rejects_any_flipped_bit(pos: int) -> None:
    data = bytearray(EncodedBatch.from_entries(sample()).data)
    data[pos] ^= 0x01
    with pytest.raises(CorruptRecord):
        EncodedBatch.from_bytes(bytes(data))


def test_from_bytes_rejects_wrong_first_index_and_truncation() -> None:
    data = EncodedBatch.from_entries(sample()).data
    with pytest.raises(CorruptRecord):
        EncodedBatch.from_bytes(data, 8)
    with pytest.raises(CorruptRecord):
        EncodedBatch.from_bytes(data[:-1])
