"""Tests of ``_core.codec`` (both twins): byte format, CRC-32C, validation, frames.

The format is pinned three ways: golden files (``tests/core/data/codec``), a naive
oracle encoder written here from the documented layout (struct + bitwise CRC), and
property tests comparing the twins with each other.
"""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from array import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftx import _core
from raftx.errors import CodecError, CorruptRecord, ProtocolError
from raftx.types import EntryKind

DATA = Path(__file__).parent / "data" / "codec"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
U64_MAX = 2**64 - 1
HDR = 32  # the documented header size, written out so the constant is checked, not trusted

# -- naive oracle, written from the codec_py docstring ------------------------------------


def oracle_crc32c(data: bytes, value: int = 0) -> int:
    """Bit-at-a-time CRC-32C (reflected 0x1EDC6F41), no tables."""
    crc = value ^ 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def oracle_encode(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    out = b""
    for term, index, kind, payload in entries:
        rest = struct.pack("<QQB7x", term, index, kind) + payload
        length = struct.pack("<I", len(payload))
        crc = oracle_crc32c(length + rest)
        out += length + struct.pack("<I", crc) + rest
    return out


def batches(min_size: int = 0, max_size: int = 8, max_payload: int = 64) -> st.SearchStrategy:
    """Valid batches: consecutive indexes, non-decreasing terms, any kind, any payload."""

    @st.composite
    def build(draw: Any) -> list[tuple[int, int, int, bytes]]:
        n = draw(st.integers(min_size, max_size))
        first = draw(st.one_of(st.integers(0, 1000), st.integers(0, U64_MAX - n + 1) if n else st.just(0)))
        term = draw(st.one_of(st.integers(0, 10), st.integers(0, U64_MAX)))
        out = []
        for i in range(n):
            term = min(U64_MAX, term + draw(st.sampled_from([0, 0, 0, 1, 7])))
            kind = draw(st.integers(0, 2))
            payload = draw(st.binary(max_size=max_payload))
            out.append((term, first + i, kind, payload))
        return out

    return build()


def sample_batch() -> list[tuple[int, int, int, bytes]]:
    """A multi-record batch with every kind and an empty payload."""
    return [
        (2, 7, 0, b""),
        (2, 8, 1, b"alpha"),
        (3, 9, 2, b'{"voters":[1,2,3]}'),
        (3, 10, 1, bytes(range(40))),
    ]


def boundaries(batch: list[tuple[int, int, int, bytes]]) -> list[int]:
    """Start offset of every record, plus the end of the buffer."""
    out = [0]
    for _, _, _, payload in batch:
        out.append(out[-1] + HDR + len(payload))
    return out


# -- constants and layout -----------------------------------------------------------------


def test_kinds_equal_entry_kind(core: SimpleNamespace) -> None:
    assert core.codec.KIND_BLANK == EntryKind.BLANK
    assert core.codec.KIND_NORMAL == EntryKind.NORMAL
    assert core.codec.KIND_MEMBERSHIP == EntryKind.MEMBERSHIP
    assert core.codec.KIND_MAX == max(EntryKind)


def test_header_sizes_match_encoded_bytes(core: SimpleNamespace) -> None:
    c = core.codec
    assert len(c.encode_entries([(1, 1, 1, b"")])) == c.RECORD_HEADER_SIZE == HDR
    assert len(c.encode_frame(1, b"")) == c.FRAME_HEADER_SIZE == 5
    assert c.FORMAT_VERSION == MANIFEST["format_version"]


def test_record_layout_is_as_documented(core: SimpleNamespace) -> None:
    payload = b"payload!"
    buf = core.codec.encode_entries([(0x0102030405060708, 0x1112131415161718, 2, payload)])
    length, crc, term, index, kind = struct.unpack_from("<IIQQB", buf)
    assert (length, term, index, kind) == (len(payload), 0x0102030405060708, 0x1112131415161718, 2)
    assert buf[25:32] == bytes(7)
    assert buf[32:] == payload
    assert crc == oracle_crc32c(buf[0:4] + buf[8:])


@given(batch=batches())
@settings(max_examples=60, deadline=None)
def test_encode_matches_oracle(core: SimpleNamespace, batch: list[tuple[int, int, int, bytes]]) -> None:
    assert core.codec.encode_entries(batch) == oracle_encode(batch)


@given(term=st.integers(0, 2**64 - 1), first=st.integers(0, 2**64 - 1),
       payloads=st.lists(st.binary(max_size=300), max_size=40))
@settings(max_examples=60, deadline=None)
def test_encode_normal_is_encode_entries_with_offsets(core: SimpleNamespace, term: int, first: int,
                                                      payloads: list[bytes]) -> None:
    if payloads and first + len(payloads) - 1 >= 2**64:
        with pytest.raises(CodecError):
            core.codec.encode_normal(term, first, payloads)
        return
    data, offsets, lengths = core.codec.encode_normal(term, first, payloads)
    batch = [(term, first + i, 1, p) for i, p in enumerate(payloads)]
    assert data == oracle_encode(batch)
    assert list(offsets) == boundaries(batch)[:-1] and list(lengths) == [HDR + len(p) for p in payloads]
    assert (offsets.typecode, lengths.typecode) == ("Q", "I")


def test_encode_normal_rejects_what_it_cannot_encode(core: SimpleNamespace) -> None:
    for bad in ([b"a", bytearray(b"b")], [None], ["str"]):
        with pytest.raises(TypeError):
            core.codec.encode_normal(1, 1, bad)
    with pytest.raises(CodecError):
        core.codec.encode_normal(-1, 1, [b"a"])
    with pytest.raises(CodecError):
        core.codec.encode_normal(1, 2**64, [])
    with pytest.raises(CodecError):
        core.codec.encode_normal(1, 2**64 - 1, [b"a", b"b"])
    assert core.codec.encode_normal(1, 2**64 - 1, [b"a"])[0] == oracle_encode([(1, 2**64 - 1, 1, b"a")])


# -- CRC-32C ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0xE3069283),  # the CRC catalogue check value
        (b"", 0),
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_answers(core: SimpleNamespace, data: bytes, expected: int) -> None:
    assert core.codec.crc32c(data) == expected


@given(data=st.binary(max_size=300), split=st.integers(0, 300), value=st.integers(0, 0xFFFFFFFF))
@settings(max_examples=80, deadline=None)
def test_crc32c_matches_oracle_and_chains(core: SimpleNamespace, data: bytes, split: int, value: int) -> None:
    c = core.codec
    assert c.crc32c(data, value) == oracle_crc32c(data, value)
    assert c.crc32c(data[split:], c.crc32c(data[:split])) == c.crc32c(data)


def test_crc32c_accepts_buffers(core: SimpleNamespace) -> None:
    data = os.urandom(1000)
    want = oracle_crc32c(data)
    c = core.codec
    assert c.crc32c(bytearray(data)) == want
    assert c.crc32c(memoryview(data)) == want
    assert c.crc32c(memoryview(data).cast("I", (250,))) == want
    assert c.crc32c(memoryview(b"xx" + data)[2:]) == want


def test_crc32c_rejects_bad_arguments(core: SimpleNamespace) -> None:
    c = core.codec
    with pytest.raises(TypeError):
        c.crc32c("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.crc32c(memoryview(bytes(10))[::2])
    with pytest.raises(CodecError):
        c.crc32c(b"x", 2**32)
    with pytest.raises(CodecError):
        c.crc32c(b"x", -1)


def test_crc32c_hardware_and_table_paths_agree() -> None:
    """The compiled twin's portable fallback must agree with the dispatched path at
    every alignment and length (on this machine the dispatched one is usually SSE4.2)."""
    if os.environ.get("RAFTX_NO_EXTENSIONS") == "1":
        pytest.skip("compiled twins not built")
    c = _core.load("c")["codec"]
    data = os.urandom(4096 + 16)
    mv = memoryview(data)
    for start in range(9):
        for length in (0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096):
            chunk = mv[start : start + length]
            assert c._crc32c_table(chunk, 0x12345678) == c.crc32c(chunk, 0x12345678)
    assert c._crc32c_table(mv[3:]) == oracle_crc32c(data[3:])
    big = os.urandom(1 << 17)  # takes the GIL-released path
    assert c.crc32c(big) == c._crc32c_table(big)


# -- golden vectors -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MANIFEST["batches"]))
def test_golden_batches(core: SimpleNamespace, name: str) -> None:
    golden = (DATA / f"{name}.bin").read_bytes()
    entries = [(t, i, k, bytes.fromhex(p)) for t, i, k, p in MANIFEST["batches"][name]]
    assert core.codec.encode_entries(entries) == golden
    assert core.codec.decode_entries(golden) == entries
    assert oracle_encode(entries) == golden


@pytest.mark.parametrize("name", sorted(MANIFEST["frames"]))
def test_golden_frames(core: SimpleNamespace, name: str) -> None:
    golden = (DATA / f"{name}.bin").read_bytes()
    frames = [(t, bytes.fromhex(p)) for t, p in MANIFEST["frames"][name]]
    assert b"".join(core.codec.encode_frame(t, p) for t, p in frames) == golden
    assert core.codec.FrameDecoder(1 << 20).feed(golden) == frames


# -- round trip and argument validation ---------------------------------------------------


@given(batch=batches(), first_known=st.booleans())
@settings(max_examples=80, deadline=None)
def test_round_trip(core: SimpleNamespace, batch: list[tuple[int, int, int, bytes]], first_known: bool) -> None:
    c = core.codec
    buf = c.encode_entries(batch)
    expected_first = batch[0][1] if (batch and first_known) else None
    assert c.decode_entries(buf, expected_first) == batch
    assert c.decode_entries(bytearray(buf)) == batch
    assert c.decode_entries(memoryview(buf)) == batch
    scan = c.scan_records(buf, 0, expected_first)
    assert scan.error is None and scan.error_kind is None
    assert scan.count == len(batch) and scan.end == len(buf)
    assert list(scan.terms) == [e[0] for e in batch]
    assert list(scan.offsets) == boundaries(batch)[:-1]
    assert list(scan.lengths) == [HDR + len(e[3]) for e in batch]
    assert (scan.first_index, scan.last_index) == ((batch[0][1], batch[-1][1]) if batch else (None, None))


def test_payload_may_be_any_buffer(core: SimpleNamespace) -> None:
    entries = [
        (1, 1, 1, bytearray(b"abc")),
        (1, 2, 1, memoryview(b"--defg--")[2:6]),
        (1, 3, 1, memoryview(bytes(8)).cast("Q")),
    ]
    decoded = core.codec.decode_entries(core.codec.encode_entries(entries))
    assert decoded == [(1, 1, 1, b"abc"), (1, 2, 1, b"defg"), (1, 3, 1, bytes(8))]
    assert all(type(e[3]) is bytes for e in decoded)
    assert core.codec.encode_entries(iter([])) == b""


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([(-1, 1, 1, b"")], CodecError),
        ([(2**64, 1, 1, b"")], CodecError),
        ([(1, -1, 1, b"")], CodecError),
        ([(1, 2**64, 1, b"")], CodecError),
        ([(1, 1, 3, b"")], CodecError),
        ([(1, 1, -1, b"")], CodecError),
        ([(1, 1, 1)], CodecError),
        ([(1, 1, 1, b"", b"")], CodecError),
        ([(1, 1, 1, b""), (1, 3, 1, b"")], CodecError),  # gap
        ([(1, 1, 1, b""), (1, 1, 1, b"")], CodecError),  # repeat
        ([(2, 1, 1, b""), (1, 2, 1, b"")], CodecError),  # term decreases
        ([(1, U64_MAX, 1, b""), (1, 0, 1, b"")], CodecError),  # index would wrap
        ([(1, 1, 1, "text")], TypeError),
        ([(1.0, 1, 1, b"")], TypeError),
        ([(1, 1, 1, memoryview(bytes(8))[::2])], TypeError),
    ],
)
def test_encode_rejects_bad_entries(core: SimpleNamespace, entries: list[Any], error: type) -> None:
    with pytest.raises(error):
        core.codec.encode_entries(entries)


def test_encode_rejects_oversized_payload(core: SimpleNamespace) -> None:
    big = bytearray(core.codec.MAX_RECORD_PAYLOAD + 1)
    with pytest.raises(CodecError):
        core.codec.encode_entries([(1, 1, 1, big)])


# -- corruption: truncation and single-byte damage -----------------------------------------


def test_every_truncation_is_rejected_or_a_valid_prefix(core: SimpleNamespace) -> None:
    c = core.codec
    batch = sample_batch()
    buf = c.encode_entries(batch)
    bounds = boundaries(batch)
    for cut in range(len(buf) + 1):
        whole = sum(1 for b in bounds[1:] if b <= cut)
        scan = c.scan_records(buf[:cut])
        assert scan.count == whole and scan.end == bounds[whole]
        assert list(scan.offsets) == bounds[:whole]
        if cut in bounds:
            assert c.decode_entries(buf[:cut]) == batch[:whole]
            assert scan.error is None and scan.error_kind is None
        else:
            with pytest.raises(CorruptRecord) as info:
                c.decode_entries(buf[:cut])
            assert info.value.offset == bounds[whole]
            assert scan.error_kind == "truncated"
            assert isinstance(scan.error, CorruptRecord) and scan.error.offset == bounds[whole]


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_single_byte_corruption_is_rejected(core: SimpleNamespace, mask: int) -> None:
    c = core.codec
    batch = sample_batch()
    buf = c.encode_entries(batch)
    bounds = boundaries(batch)
    for pos in range(len(buf)):
        bad = bytearray(buf)
        bad[pos] ^= mask
        record = max(i for i, b in enumerate(bounds[:-1]) if b <= pos)
        with pytest.raises(CorruptRecord) as info:
            c.decode_entries(bad)
        assert info.value.offset == bounds[record], pos
        scan = c.scan_records(bad)
        assert (scan.count, scan.end) == (record, bounds[record]), pos
        assert scan.error is not None and scan.error.offset == bounds[record]
        in_length_field = pos - bounds[record] < 4
        # A damaged length may point past the end of the buffer; anything else is corruption.
        assert scan.error_kind == "corrupt" or (in_length_field and scan.error_kind == "truncated"), pos


def test_corruption_after_a_valid_prefix_keeps_the_prefix(core: SimpleNamespace) -> None:
    c = core.codec
    batch = sample_batch()
    buf = c.encode_entries(batch)
    bounds = boundaries(batch)
    torn = buf[: bounds[3]] + bytes(HDR + 5)  # a zero-filled (preallocated) tail
    scan = c.scan_records(torn, expected_first_index=7)
    assert (scan.count, scan.first_index, scan.last_index, scan.end) == (3, 7, 9, bounds[3])
    assert scan.error_kind == "corrupt"  # zero header + empty payload: CRC cannot match


@pytest.mark.parametrize("length", ["max", "max+1", "u32max"])
def test_forged_length_does_not_allocate(core: SimpleNamespace, length: str) -> None:
    c = core.codec
    declared = {"max": c.MAX_RECORD_PAYLOAD, "max+1": c.MAX_RECORD_PAYLOAD + 1, "u32max": 2**32 - 1}[length]
    forged = bytearray(c.encode_entries([(1, 1, 1, b"tiny")]))
    struct.pack_into("<I", forged, 0, declared)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecord) as info:
            c.decode_entries(forged)
        scan = c.scan_records(forged)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.offset == 0
    assert peak < 1 << 20, f"decoding a forged {declared}-byte length allocated {peak} bytes"
    assert scan.count == 0
    assert scan.error_kind == ("truncated" if declared <= c.MAX_RECORD_PAYLOAD else "corrupt")


def test_reserved_bytes_and_kind_are_checked_even_with_a_valid_crc(core: SimpleNamespace) -> None:
    """Fields the CRC cannot vouch for: a writer that set them wrongly, with a correct CRC."""
    c = core.codec
    for offset, value in ((24, 3), (24, 0xFF), (25, 1), (31, 0x80)):
        rec = bytearray(c.encode_entries([(1, 1, 1, b"abc")]))
        rec[offset] = value
        struct.pack_into("<I", rec, 4, oracle_crc32c(bytes(rec[0:4] + rec[8:])))
        with pytest.raises(CorruptRecord) as info:
            c.decode_entries(rec)
        assert info.value.offset == 0
        assert c.scan_records(rec).error_kind == "corrupt"


# -- index continuity and term order (§5.3) ------------------------------------------------


def _concat(c: Any, *parts: list[tuple[int, int, int, bytes]]) -> bytes:
    return b"".join(c.encode_entries(p) for p in parts)


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ([(1, 5, 1, b"e")], "gap"),
        ([(1, 3, 1, b"e")], "repeat"),
        ([(1, 1, 1, b"e")], "backwards"),
        ([(0, 4, 1, b"e")], "term decreases"),
    ],
)
def test_discontinuity_is_caught(core: SimpleNamespace, second: list[Any], why: str) -> None:
    c = core.codec
    first = [(1, 1, 1, b"a"), (1, 2, 1, b"bb"), (1, 3, 1, b"ccc")]
    buf = _concat(c, first, second)
    bad_at = boundaries(first)[-1]
    with pytest.raises(CorruptRecord) as info:
        c.decode_entries(buf)
    assert info.value.offset == bad_at, why
    scan = c.scan_records(buf)
    assert (scan.count, scan.end, scan.last_index, scan.error_kind) == (3, bad_at, 3, "corrupt")


def test_expected_first_index(core: SimpleNamespace) -> None:
    c = core.codec
    buf = c.encode_entries([(1, 10, 1, b"a"), (1, 11, 1, b"b")])
    assert len(c.decode_entries(buf, expected_first_index=10)) == 2
    with pytest.raises(CorruptRecord) as info:
        c.decode_entries(buf, expected_first_index=11)
    assert info.value.offset == 0
    scan = c.scan_records(buf, expected_first_index=9)
    assert (scan.count, scan.end, scan.error_kind) == (0, 0, "corrupt")
    assert c.decode_entries(b"", expected_first_index=5) == []
    with pytest.raises(CodecError):
        c.decode_entries(buf, expected_first_index=-1)


def test_nothing_follows_the_largest_index(core: SimpleNamespace) -> None:
    c = core.codec
    buf = _concat(c, [(1, U64_MAX, 1, b"")], [(1, 0, 1, b"")])
    with pytest.raises(CorruptRecord) as info:
        c.decode_entries(buf)
    assert info.value.offset == HDR


# -- scan_records ---------------------------------------------------------------------------


def test_scan_from_an_offset_reports_absolute_offsets(core: SimpleNamespace) -> None:
    c = core.codec
    batch = sample_batch()
    prefix = b"SEGMENT-HEADER--"
    buf = prefix + c.encode_entries(batch)
    scan = c.scan_records(buf, start=len(prefix), expected_first_index=7)
    assert scan.count == 4 and scan.end == len(buf) and scan.error is None
    assert list(scan.offsets) == [len(prefix) + b for b in boundaries(batch)[:-1]]
    assert (scan.terms.typecode, scan.offsets.typecode, scan.lengths.typecode) == ("Q", "Q", "I")
    # The located bytes are the records: decode one by its offset and length.
    o, n = scan.offsets[2], scan.lengths[2]
    assert c.decode_entries(memoryview(buf)[o : o + n]) == [batch[2]]


def test_scan_start_bounds(core: SimpleNamespace) -> None:
    c = core.codec
    buf = c.encode_entries(sample_batch())
    empty = c.scan_records(buf, start=len(buf))
    assert (empty.count, empty.end, empty.first_index, empty.last_index, empty.error) == (0, len(buf), None, None, None)
    for bad in (-1, len(buf) + 1):
        with pytest.raises(CodecError):
            c.scan_records(buf, start=bad)
    with pytest.raises(TypeError):
        c.scan_records("not bytes")  # type: ignore[arg-type]


# -- record_kinds / record_payloads: fields of validated records ---------------------------


@given(batch=batches(max_size=12), prefix=st.binary(max_size=40),
       as_type=st.sampled_from([bytes, bytearray, memoryview]))
@settings(max_examples=80, deadline=None)
def test_record_fields_agree_with_decode(core: SimpleNamespace, batch: list[tuple[int, int, int, bytes]],
                                         prefix: bytes, as_type: Any) -> None:
    c = core.codec
    buf = prefix + c.encode_entries(batch)
    scan = c.scan_records(buf, start=len(prefix))
    assert scan.error is None
    decoded = c.decode_entries(buf[len(prefix):])
    data = as_type(buf)
    kinds = c.record_kinds(data, scan.offsets)
    payloads = c.record_payloads(data, scan.offsets, scan.lengths)
    assert type(kinds) is bytes and kinds == bytes(k for _, _, k, _ in decoded)
    assert payloads == [p for *_, p in decoded]
    assert all(type(p) is bytes for p in payloads)
    # any subset, in any order: each record is read at its own offset
    order = list(range(scan.count))[::-1]
    offsets, lengths = array("Q", [scan.offsets[i] for i in order]), array("I", [scan.lengths[i] for i in order])
    assert c.record_kinds(data, offsets) == bytes(decoded[i][2] for i in order)
    assert c.record_payloads(data, offsets, lengths) == [decoded[i][3] for i in order]


def test_record_fields_of_equal_sized_records(core: SimpleNamespace) -> None:
    """Equally spaced records (a client batch), from a non-zero offset and alone."""
    c = core.codec
    batch = [(1, 5 + i, (0, 1, 2)[i % 3], bytes([i]) * 10) for i in range(9)]
    buf = b"pre" + c.encode_entries(batch)
    scan = c.scan_records(buf, start=3)
    assert len(set(scan.lengths)) == 1
    assert c.record_kinds(buf, scan.offsets) == bytes(e[2] for e in batch)
    assert c.record_payloads(buf, scan.offsets, scan.lengths) == [e[3] for e in batch]
    for i in (0, 4, 8):
        one_o, one_l = scan.offsets[i : i + 1], scan.lengths[i : i + 1]
        assert c.record_kinds(buf, one_o) == bytes([batch[i][2]])
        assert c.record_payloads(buf, one_o, one_l) == [batch[i][3]]
    assert c.record_kinds(buf, scan.offsets[::2]) == bytes(e[2] for e in batch[::2])
    assert c.record_kinds(b"", array("Q")) == b"" and c.record_payloads(b"", array("Q"), array("I")) == []


def test_record_fields_trust_the_crc(core: SimpleNamespace) -> None:
    """No CRC check: a byte changed after the scan is returned as it now is."""
    c = core.codec
    buf = bytearray(c.encode_entries([(1, 1, 1, b"abc"), (1, 2, 1, b"def")]))
    scan = c.scan_records(buf)
    buf[HDR + 3 + HDR] = ord("X")
    assert c.record_payloads(buf, scan.offsets, scan.lengths) == [b"abc", b"Xef"]
    buf[24] = 2
    assert c.record_kinds(buf, scan.offsets) == b"\x02\x01"


def _two_records(c: Any) -> tuple[bytes, Any]:
    buf = c.encode_entries([(1, 1, 1, b"abc"), (1, 2, 0, b"")])
    return buf, c.scan_records(buf)


@pytest.mark.parametrize(
    ("offsets", "why"),
    [
        ([71], "past the end"),
        ([HDR + 3 + 1], "header runs past the end"),
        ([0, 2**64 - 1], "huge offset"),
        ([2**64 - 24], "offset + 24 wraps"),
    ],
)
def test_record_kinds_rejects_records_outside_the_buffer(core: SimpleNamespace, offsets: list[int], why: str) -> None:
    c = core.codec
    buf, _ = _two_records(c)
    assert len(buf) == 2 * HDR + 3
    with pytest.raises(CodecError):
        c.record_kinds(buf, array("Q", offsets))
    with pytest.raises(CodecError):
        c.record_kinds(buf[:HDR - 1], array("Q", [0]))  # shorter than one header


@pytest.mark.parametrize(
    ("offsets", "lengths", "why"),
    [
        ([0], [HDR - 1], "length shorter than the header"),
        ([0, HDR + 3], [HDR + 3, 0], "zero length"),
        ([HDR + 3], [HDR + 1], "length runs past the end"),
        ([0], [2 * HDR + 4], "length runs past the end from 0"),
        ([2 * HDR + 3], [HDR], "offset at the end"),
        ([2**64 - 1], [HDR], "offset far past the end"),
        ([2**64 - HDR], [HDR], "offset + length wraps"),
        ([0, HDR + 3], [HDR + 3], "fewer lengths than offsets"),
        ([0], [HDR + 3, HDR], "more lengths than offsets"),
    ],
)
def test_record_payloads_rejects_inconsistent_input(core: SimpleNamespace, offsets: list[int], lengths: list[int],
                                                    why: str) -> None:
    c = core.codec
    buf, scan = _two_records(c)
    assert c.record_payloads(buf, scan.offsets, scan.lengths) == [b"abc", b""]
    with pytest.raises(CodecError):
        c.record_payloads(buf, array("Q", offsets), array("I", lengths))


def test_record_fields_argument_types(core: SimpleNamespace) -> None:
    c = core.codec
    buf, scan = _two_records(c)
    for bad in ("text", memoryview(buf + buf)[::2]):
        with pytest.raises(TypeError):
            c.record_kinds(bad, scan.offsets)
        with pytest.raises(TypeError):
            c.record_payloads(bad, scan.offsets, scan.lengths)
    with pytest.raises(TypeError):
        c.record_kinds(buf, None)
    with pytest.raises(TypeError):
        c.record_payloads(buf, scan.offsets, None)
    if core.impl == "c":  # the compiled twin reads the arrays scan_records returns, nothing else
        for offsets in (list(scan.offsets), array("q", scan.offsets), array("I", scan.offsets)):
            with pytest.raises(TypeError):
                c.record_kinds(buf, offsets)
            with pytest.raises(TypeError):
                c.record_payloads(buf, offsets, scan.lengths)
        with pytest.raises(TypeError):
            c.record_payloads(buf, scan.offsets, array("Q", scan.lengths))
    else:  # the pure twin takes any int sequences
        assert c.record_kinds(buf, list(scan.offsets)) == b"\x01\x00"
        assert c.record_payloads(buf, list(scan.offsets), list(scan.lengths)) == [b"abc", b""]
        with pytest.raises(CodecError):
            c.record_kinds(buf, [-1])
        with pytest.raises(CodecError):
            c.record_kinds(buf, array("q", [-HDR - 3, 0]))  # equally spaced, starting before the buffer
        with pytest.raises(CodecError):
            c.record_payloads(buf, [-1], [HDR])


# -- frames -------------------------------------------------------------------------------


def test_frame_layout(core: SimpleNamespace) -> None:
    frame = core.codec.encode_frame(0xAB, b"body")
    assert frame == struct.pack("<IB", 4, 0xAB) + b"body"
    with pytest.raises(CodecError):
        core.codec.encode_frame(256, b"")
    with pytest.raises(CodecError):
        core.codec.encode_frame(-1, b"")
    with pytest.raises(TypeError):
        core.codec.encode_frame(1, "text")  # type: ignore[arg-type]


FRAMES = [(1, b"hello"), (0, b""), (255, bytes(range(200))), (7, b"x")]


def test_frame_decoder_split_at_every_boundary(core: SimpleNamespace) -> None:
    c = core.codec
    stream = b"".join(c.encode_frame(t, p) for t, p in FRAMES)
    for cut in range(len(stream) + 1):
        d = c.FrameDecoder(1024)
        assert d.feed(stream[:cut]) + d.feed(bytearray(stream[cut:])) == FRAMES, cut
        assert d.buffered == 0
    d = c.FrameDecoder(1024)
    got = []
    for i in range(len(stream)):
        got += d.feed(memoryview(stream)[i : i + 1])
    assert got == FRAMES


@given(frames=st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=50)), max_size=8), data=st.data())
@settings(max_examples=60, deadline=None)
def test_frame_decoder_random_chunking(core: SimpleNamespace, frames: list[tuple[int, bytes]], data: Any) -> None:
    c = core.codec
    stream = b"".join(c.encode_frame(t, p) for t, p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    d = c.FrameDecoder(50)
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)]):
        got += d.feed(stream[a:b])
    assert got == frames and d.buffered == 0


def test_oversized_frame_rejected_before_its_body(core: SimpleNamespace) -> None:
    c = core.codec
    d = c.FrameDecoder(100)
    assert d.feed(c.encode_frame(1, bytes(100))) == [(1, bytes(100))]  # exactly the limit is fine
    header = struct.pack("<IB", 2**32 - 1, 1)
    assert d.feed(header[:3]) == []  # the length is not complete yet
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            d.feed(header[3:])  # no body byte has arrived
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 16
    assert d.failed and d.buffered == 0
    with pytest.raises(ProtocolError):
        d.feed(b"")  # a failed decoder stays failed
    with pytest.raises(ProtocolError):
        d.feed(c.encode_frame(1, b"ok"))


def test_oversized_frame_after_good_ones_in_one_chunk(core: SimpleNamespace) -> None:
    c = core.codec
    d = c.FrameDecoder(10)
    with pytest.raises(ProtocolError):
        d.feed(c.encode_frame(1, b"ok") + struct.pack("<IB", 11, 1))
    assert d.failed


def test_frame_decoder_arguments(core: SimpleNamespace) -> None:
    c = core.codec
    for bad in (-1, 2**32):
        with pytest.raises(CodecError):
            c.FrameDecoder(bad)
    assert c.FrameDecoder(0).feed(c.encode_frame(3, b"")) == [(3, b"")]
    with pytest.raises(ProtocolError):
        c.FrameDecoder(0).feed(c.encode_frame(3, b"x"))
    with pytest.raises(TypeError):
        c.FrameDecoder(10).feed("text")  # type: ignore[arg-type]


def test_large_batch_with_late_corruption(core: SimpleNamespace) -> None:
    """A batch above 64 KiB (the compiled twin walks it without the GIL)."""
    c = core.codec
    batch = [(9, 500 + i, 1, os.urandom(1000)) for i in range(100)]
    buf = bytearray(c.encode_entries(batch))
    assert c.decode_entries(buf, 500) == batch
    bounds = boundaries(batch)
    buf[bounds[97] + 40] ^= 0x10
    with pytest.raises(CorruptRecord) as info:
        c.decode_entries(buf)
    assert info.value.offset == bounds[97]
    scan = c.scan_records(buf, start=bounds[1], expected_first_index=501)
    assert (scan.count, scan.end, scan.last_index, scan.error_kind) == (96, bounds[97], 596, "corrupt")


# -- record_crc, ScanResult.last_crc, frozen views (issue 17 item 3) ----------------------------


def test_record_crc_is_the_stored_checksum(core: SimpleNamespace) -> None:
    """`record_crc` reads the CRC where the documented layout puts it (bytes 4..7 of a
    header); a header alone is enough."""
    c = core.codec
    batch = [(1, 1, 1, b"abc"), (2, 2, 0, b""), (2, 3, 2, b"m" * 40)]
    buf = c.encode_entries(batch)
    scan = c.scan_records(buf)
    for o in scan.offsets:
        assert c.record_crc(buf, o) == struct.unpack_from("<I", buf, o + 4)[0]
        assert c.record_crc(buf[o : o + HDR]) == c.record_crc(buf, o)
    assert c.record_crc(buf) == oracle_crc32c(buf[0:4] + buf[8 : scan.lengths[0]])


@pytest.mark.parametrize("offset", [-1, 1, HDR + 3 + 1, 10**6])
def test_record_crc_rejects_a_header_outside_the_buffer(core: SimpleNamespace, offset: int) -> None:
    c = core.codec
    buf = c.encode_entries([(1, 1, 1, b"abc"), (1, 2, 0, b"")])
    with pytest.raises(CodecError):
        c.record_crc(buf, offset if offset != 1 else len(buf) - HDR + 1)
    with pytest.raises(CodecError):
        c.record_crc(b"\0" * (HDR - 1))


def test_scan_reports_the_last_crc_of_its_valid_prefix(core: SimpleNamespace) -> None:
    c = core.codec
    buf = c.encode_entries([(1, 1, 1, b"abc"), (1, 2, 0, b""), (1, 3, 1, b"xyz")])
    scan = c.scan_records(buf)
    assert scan.last_crc == c.record_crc(buf, scan.offsets[-1])
    torn = c.scan_records(buf[:-1])  # the third record is torn: the second one's CRC
    assert torn.count == 2 and torn.last_crc == c.record_crc(buf, scan.offsets[1])
    assert c.scan_records(b"").last_crc is None
    assert c.scan_records(buf[:10]).last_crc is None
    assert c.scan_records(buf, scan.offsets[2]).last_crc == scan.last_crc


def test_record_fields_read_a_frozen_view_in_place(core: SimpleNamespace) -> None:
    """A read-only view of ``bytes`` (a received frame) is read as it is; a view of a
    mutable buffer is copied first, as any other buffer."""
    c = core.codec
    frame = b"header" + c.encode_entries([(1, 1, 1, b"abc"), (1, 2, 0, b""), (1, 3, 2, b"mm")])
    view = memoryview(frame)[6:]
    scan = c.scan_records(view)
    payloads = c.record_payloads(view, scan.offsets, scan.lengths)
    assert payloads == [b"abc", b"", b"mm"] and all(type(p) is bytes for p in payloads)
    assert c.record_kinds(view, scan.offsets) == b"\x01\x00\x02"
    mutable = bytearray(frame[6:])
    mview = memoryview(mutable)
    assert c.record_payloads(mview, scan.offsets, scan.lengths) == payloads
    assert c.record_kinds(mview, scan.offsets) == b"\x01\x00\x02"
