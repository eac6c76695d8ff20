"""Benchmarks of ``_core.codec``, both twins on the same inputs in one run.

    python -m pytest benchmarks/bench_codec.py --benchmark-only -q
    python benchmarks/report.py bench_codec.py      # items/s and compiled/pure ratios

Targets (DESIGN §5, the codec issue): compiled encode and decode of 256 x 100-byte
entries >= 10x the pure twin and >= 1M entries/s; compiled crc32c >= 1 GB/s. Items
per call are recorded in ``extra_info["units"]`` (entries, or bytes for crc32c).
``encode_normal`` is the leader's group commit of the same entries (bytes payloads
only, with their offsets and lengths), the path `raftx.runtime.entries` takes.
``record_kinds`` / ``record_payloads`` read the same entries back by the offsets and
lengths ``scan_records`` found, without a second CRC pass: a follower's apply path
(`raftx.runtime.log_cache`).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest

N_ENTRIES = 256
PAYLOAD = 100
CRC_BYTES = 1 << 20
FRAMES = 64
FRAME_PAYLOAD = 1024

ENTRIES = [(5, 1000 + i, 1, os.urandom(PAYLOAD)) for i in range(N_ENTRIES)]
PAYLOADS = [payload for *_, payload in ENTRIES]
CRC_DATA = os.urandom(CRC_BYTES)

pytestmark = pytest.mark.benchmark(group="codec")


def _units(benchmark: Any, units: int) -> None:
    """Items per call, for benchmarks/report.py."""
    benchmark.extra_info["units"] = units


def test_encode_entries(benchmark: Any, core: SimpleNamespace) -> None:
    _units(benchmark, N_ENTRIES)
    out = benchmark(core.codec.encode_entries, ENTRIES)
    assert len(out) == N_ENTRIES * (core.codec.RECORD_HEADER_SIZE + PAYLOAD)


def test_encode_normal(benchmark: Any, core: SimpleNamespace) -> None:
    record = core.codec.RECORD_HEADER_SIZE + PAYLOAD
    _units(benchmark, N_ENTRIES)
    data, offsets, lengths = benchmark(core.codec.encode_normal, 5, 1000, PAYLOADS)
    assert data == core.codec.encode_entries(ENTRIES)
    assert list(offsets) == [i * record for i in range(N_ENTRIES)] and list(lengths) == [record] * N_ENTRIES


def test_decode_entries(benchmark: Any, core: SimpleNamespace) -> None:
    buf = core.codec.encode_entries(ENTRIES)
    _units(benchmark, N_ENTRIES)
    out = benchmark(core.codec.decode_entries, buf, 1000)
    assert out == ENTRIES


def test_scan_records(benchmark: Any, core: SimpleNamespace) -> None:
    buf = core.codec.encode_entries(ENTRIES)
    _units(benchmark, N_ENTRIES)
    scan = benchmark(core.codec.scan_records, buf)
    assert scan.count == N_ENTRIES and scan.error is None


def test_record_kinds(benchmark: Any, core: SimpleNamespace) -> None:
    buf = core.codec.encode_entries(ENTRIES)
    scan = core.codec.scan_records(buf)
    _units(benchmark, N_ENTRIES)
    kinds = benchmark(core.codec.record_kinds, buf, scan.offsets)
    assert kinds == bytes([1]) * N_ENTRIES


def test_record_payloads(benchmark: Any, core: SimpleNamespace) -> None:
    buf = core.codec.encode_entries(ENTRIES)
    scan = core.codec.scan_records(buf)
    _units(benchmark, N_ENTRIES)
    payloads = benchmark(core.codec.record_payloads, buf, scan.offsets, scan.lengths)
    assert payloads == PAYLOADS


def test_crc32c_1mib(benchmark: Any, core: SimpleNamespace) -> None:
    _units(benchmark, CRC_BYTES)
    value = benchmark(core.codec.crc32c, CRC_DATA)
    assert value == core.codec.crc32c(CRC_DATA[:1000] + CRC_DATA[1000:])


def test_frame_decoder_feed(benchmark: Any, core: SimpleNamespace) -> None:
    c = core.codec
    stream = b"".join(c.encode_frame(1, bytes(FRAME_PAYLOAD)) for _ in range(FRAMES))

    def feed() -> list[tuple[int, bytes]]:
        return c.FrameDecoder(1 << 20).feed(stream)

    _units(benchmark, FRAMES)
    assert len(benchmark(feed)) == FRAMES
