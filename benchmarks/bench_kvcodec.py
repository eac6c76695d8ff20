"""Benchmarks of ``raftx.kv.kvcodec``, both twins on the same inputs in one run.

    python -m pytest benchmarks/bench_kvcodec.py --benchmark-only -q
    python benchmarks/report.py bench_kvcodec.py    # commands/s and compiled/pure ratios

A PUT of a 100-byte value is the command of almost every kv entry: `encode_put` runs
once per client write, `decode_put` once per entry on every node's apply loop. Each
call encodes or decodes a batch of 256 PUTs (units: commands), so pytest-benchmark's
per-call overhead does not dominate. Two session shapes: ``small`` (session-less,
every int a positive fixint, as `raftx bench` writes) and ``session`` (a `KVClient`'s
random client id in ``2**62 .. 2**63-1``, serial and acked past 2**32: uint64 fields).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest

N_COMMANDS = 256
VALUE = 100

KEYS = [b"key%05d" % i for i in range(N_COMMANDS)]
VALUES = [os.urandom(VALUE) for _ in range(N_COMMANDS)]
# (client_id, serial, acked) columns, one row per command
SESSIONS = {
    "small": ([0] * N_COMMANDS, [0] * N_COMMANDS, [0] * N_COMMANDS),
    "session": ([(1 << 62) + 12345] * N_COMMANDS,
                [(1 << 40) + i for i in range(N_COMMANDS)],
                [(1 << 40) + i - 1 for i in range(N_COMMANDS)]),
}
_pack = msgpack.Packer(use_bin_type=True).pack


def expected_bytes(shape: str) -> list[bytes]:
    """The commands as msgpack itself packs them (the oracle, not the twins)."""
    cids, serials, ackeds = SESSIONS[shape]
    return [_pack([1, c, s, a, k, v]) for c, s, a, k, v in zip(cids, serials, ackeds, KEYS, VALUES, strict=True)]


def expected_fields(shape: str) -> list[tuple[int, int, int, bytes, bytes]]:
    return list(zip(*SESSIONS[shape], KEYS, VALUES, strict=True))


pytestmark = [
    pytest.mark.benchmark(group="kvcodec"),
    pytest.mark.parametrize("shape", list(SESSIONS)),
]


def test_encode_put(benchmark: Any, core: SimpleNamespace, shape: str) -> None:
    encode_put = core.kvcodec.encode_put
    cids, serials, ackeds = SESSIONS[shape]

    def batch() -> list[bytes | None]:
        return list(map(encode_put, KEYS, VALUES, cids, serials, ackeds))

    benchmark.extra_info["units"] = N_COMMANDS
    assert benchmark(batch) == expected_bytes(shape)


def test_decode_put(benchmark: Any, core: SimpleNamespace, shape: str) -> None:
    decode_put = core.kvcodec.decode_put
    payloads = expected_bytes(shape)

    def batch() -> list[tuple[int, int, int, bytes, bytes] | None]:
        return list(map(decode_put, payloads))

    benchmark.extra_info["units"] = N_COMMANDS
    assert benchmark(batch) == expected_fields(shape)
