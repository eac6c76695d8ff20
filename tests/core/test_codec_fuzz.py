"""Fuzzing ``_core.codec``: arbitrary and damaged bytes, and the twins against each other.

Every input here must give either a result or a typed error (`CorruptRecord`,
`ProtocolError`), never another exception; and the compiled and pure twins must
give the *same* result, byte for byte and offset for offset.
"""

from __future__ import annotations

import os
import struct
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftx import _core
from raftx.errors import CorruptRecord, ProtocolError

from test_codec import batches, oracle_crc32c  # tests/core is on sys.path (rootdir conftest, no __init__)

needs_both = pytest.mark.skipif(
    os.environ.get("RAFTX_NO_EXTENSIONS") == "1", reason="compiled twins not built"
)


@pytest.fixture(scope="module")
def twins() -> tuple[ModuleType, ModuleType]:
    """(compiled, pure) codec modules."""
    return _core.load("c")["codec"], _core.load("py")["codec"]


def decode_outcome(codec: ModuleType, buf: Any, first: int | None = None) -> Any:
    """What `decode_entries` did, in a comparable form; fails on an untyped exception."""
    try:
        return ("ok", codec.decode_entries(buf, first))
    except CorruptRecord as exc:
        return ("corrupt", exc.offset, str(exc))


def scan_outcome(codec: ModuleType, buf: Any, start: int = 0, first: int | None = None) -> Any:
    r = codec.scan_records(buf, start, first)
    err = None if r.error is None else (type(r.error), r.error.offset, str(r.error))
    return (r.count, r.first_index, r.last_index, r.end, list(r.terms), list(r.offsets), list(r.lengths),
            err, r.error_kind)


@st.composite
def damaged(draw: Any) -> bytes:
    """A valid batch with a few random edits: overwrite, insert, delete, or a rewritten
    header field (optionally with a recomputed, *valid* CRC)."""
    batch = draw(batches(min_size=1, max_size=5, max_payload=20))
    buf = bytearray(_core.load("py")["codec"].encode_entries(batch))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "insert", "delete", "field"]))
        pos = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "set" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and buf:
            del buf[pos : pos + draw(st.integers(1, 8))]
        elif op == "field" and len(buf) >= 32:
            offset, fmt = draw(st.sampled_from([(0, "<I"), (8, "<Q"), (16, "<Q"), (24, "<B"), (25, "<B")]))
            bits = struct.calcsize(fmt) * 8
            struct.pack_into(fmt, buf, offset, draw(st.integers(0, 2**bits - 1)))
            if draw(st.booleans()):
                struct.pack_into("<I", buf, 4, oracle_crc32c(bytes(buf[0:4] + buf[8:])))
    return bytes(buf)


@needs_both
@given(batch=batches(max_size=10, max_payload=100))
@settings(max_examples=100, deadline=None)
def test_twins_encode_identically(twins: tuple[ModuleType, ModuleType], batch: list[Any]) -> None:
    c, py = twins
    out = c.encode_entries(batch)
    assert out == py.encode_entries(batch)
    assert c.decode_entries(out) == py.decode_entries(out) == batch


@needs_both
@given(buf=st.binary(max_size=200), first=st.one_of(st.none(), st.integers(0, 5)))
@settings(max_examples=200, deadline=None)
def test_random_bytes(twins: tuple[ModuleType, ModuleType], buf: bytes, first: int | None) -> None:
    c, py = twins
    assert decode_outcome(c, buf, first) == decode_outcome(py, buf, first)
    assert scan_outcome(c, buf, 0, first) == scan_outcome(py, buf, 0, first)


@needs_both
@given(buf=damaged(), data=st.data())
@settings(max_examples=300, deadline=None)
def test_damaged_batches(twins: tuple[ModuleType, ModuleType], buf: bytes, data: Any) -> None:
    c, py = twins
    outcome = decode_outcome(c, buf)
    assert outcome == decode_outcome(py, buf)
    start = data.draw(st.integers(0, len(buf)))
    assert scan_outcome(c, buf, start) == scan_outcome(py, buf, start)
    # decode and scan agree on where the valid data ends.
    scan = c.scan_records(buf)
    if outcome[0] == "ok":
        assert scan.error is None and scan.count == len(outcome[1])
    else:
        assert scan.error is not None and scan.end == outcome[1]


def test_valid_crc_never_hides_bad_fields(core: SimpleNamespace) -> None:
    """Sweep every value of the kind byte and of each reserved byte with a recomputed CRC."""
    c = core.codec
    base = c.encode_entries([(4, 9, 1, b"payload")])
    for offset in range(24, 32):
        for value in range(256):
            rec = bytearray(base)
            rec[offset] = value
            struct.pack_into("<I", rec, 4, c.crc32c(rec[8:], c.crc32c(rec[0:4])))
            valid = value <= c.KIND_MAX if offset == 24 else value == 0
            outcome = decode_outcome(c, bytes(rec))
            assert (outcome[0] == "ok") == valid, (offset, value)


@needs_both
@given(
    stream=st.binary(max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=5),
    limit=st.integers(0, 40),
)
@settings(max_examples=200, deadline=None)
def test_frame_decoder_on_random_streams(
    twins: tuple[ModuleType, ModuleType], stream: bytes, cuts: list[int], limit: int
) -> None:
    cuts = sorted(min(x, len(stream)) for x in cuts)
    results = []
    for codec in twins:
        d = codec.FrameDecoder(limit)
        got: list[Any] = []
        for a, b in zip([0, *cuts], [*cuts, len(stream)]):
            try:
                got.append(d.feed(stream[a:b]))
            except ProtocolError:
                got.append("failed")
                break
        results.append((got, d.buffered, d.failed))
    assert results[0] == results[1]
