"""Tests of ``raftx.kv.kvcodec`` (both twins): the PUT command bytes of the key-value service.

Pinned three ways: golden vectors (hand-written bytes, and byte-exact equality with
msgpack's own packing at every encoding boundary), property tests against msgpack,
and a decoder oracle, `raftx.kv.commands.decode` (the full msgpack decode plus
validation): `decode_put` must answer exactly for the PUTs that ``decode`` accepts,
with the same fields, over arbitrary msgpack objects in any valid encoding and over
truncated, corrupted and extended bytes.
"""

from __future__ import annotations

import enum
import struct
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftx.errors import BadCommand
from raftx.kv import commands

U64_MAX = 2**64 - 1
MAX_KEY = 64 * 1024  # written out so the twins' constants are checked, not trusted
MAX_VALUE = 32 * 1024 * 1024

BOUNDARY_INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, U64_MAX]
BOUNDARY_LENGTHS = [0, 1, 31, 32, 255, 256, 65535, 65536]

_pack = msgpack.Packer(use_bin_type=True).pack


def reference(key: bytes, value: bytes, client_id: int, serial: int, acked: int) -> bytes:
    return _pack([1, client_id, serial, acked, key, value])


def oracle_decode(payload: bytes) -> tuple[int, int, int, bytes, bytes] | None:
    """What `decode_put` must answer: the fields if ``commands.decode`` accepts a PUT."""
    try:
        cmd = commands.decode(payload)
    except BadCommand:
        return None
    if cmd.op != commands.PUT:
        return None
    return cmd.client_id, cmd.serial, cmd.acked, cmd.key, cmd.args[0]


# -- constants ---------------------------------------------------------------------------------


def test_limits(core: SimpleNamespace) -> None:
    assert core.kvcodec.MAX_KEY_BYTES == MAX_KEY
    assert core.kvcodec.MAX_VALUE_BYTES == MAX_VALUE
    assert commands.MAX_KEY_BYTES == MAX_KEY and commands.MAX_VALUE_BYTES == MAX_VALUE


# -- golden vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "hexbytes"),
    [
        ((b"k", b"v", 0, 0, 0), "96 01 00 00 00 c4016b c40176"),
        ((b"", b"", 127, 128, 255), "96 01 7f cc80 ccff c400 c400"),
        ((b"", b"", 256, 65535, 65536), "96 01 cd0100 cdffff ce00010000 c400 c400"),
        ((b"", b"", 2**32 - 1, 2**32, U64_MAX), "96 01 ceffffffff cf0000000100000000 cfffffffffffffffff c400 c400"),
        ((b"a" * 256, b"", 0, 0, 0), "96 01 00 00 00 c50100" + "61" * 256 + "c400"),
        ((b"", b"b" * 65536, 0, 0, 0), "96 01 00 00 00 c400 c600010000" + "62" * 65536),
    ],
)
def test_hand_written_vectors(core: SimpleNamespace, args: tuple[Any, ...], hexbytes: str) -> None:
    """Bytes written from the msgpack spec (kvcodec_py's docstring), not from msgpack."""
    expected = bytes.fromhex(hexbytes)
    assert core.kvcodec.encode_put(*args) == expected
    key, value, client_id, serial, acked = args
    assert core.kvcodec.decode_put(expected) == (client_id, serial, acked, key, value)


@pytest.mark.parametrize("n", BOUNDARY_INTS)
@pytest.mark.parametrize("slot", [0, 1, 2])
def test_boundary_ints_match_msgpack(core: SimpleNamespace, n: int, slot: int) -> None:
    ints = [5, 300, 70000]
    ints[slot] = n
    got = core.kvcodec.encode_put(b"key", b"value", *ints)
    assert got == reference(b"key", b"value", *ints)
    assert core.kvcodec.decode_put(got) == (*ints, b"key", b"value")


@pytest.mark.parametrize("n", BOUNDARY_LENGTHS)
@pytest.mark.parametrize("which", ["key", "value"])
def test_boundary_lengths_match_msgpack(core: SimpleNamespace, n: int, which: str) -> None:
    data = bytes(i & 0xFF for i in range(n))
    key, value = (data, b"v") if which == "key" else (b"k", data)
    got = core.kvcodec.encode_put(key, value, 1, 2, 3)
    assert got == reference(key, value, 1, 2, 3)
    assert core.kvcodec.decode_put(got) == (1, 2, 3, key, value)


def test_largest_key_and_value(core: SimpleNamespace) -> None:
    key, value = b"k" * MAX_KEY, b"v" * MAX_VALUE
    got = core.kvcodec.encode_put(key, value, U64_MAX, 0, 1)
    assert got == reference(key, value, U64_MAX, 0, 1)
    assert core.kvcodec.decode_put(got) == (U64_MAX, 0, 1, key, value)


# -- encode_put: what the fast path refuses (None; the caller's checked path decides) ----------


class Flag(enum.IntEnum):
    ONE = 1


class Blob(bytes):
    pass


@pytest.mark.parametrize(
    "args",
    [
        (b"k", b"v", True, 0, 0), (b"k", b"v", 0, False, 0), (b"k", b"v", 0, 0, True),
        (b"k", b"v", -1, 0, 0), (b"k", b"v", 0, -1, 0), (b"k", b"v", 0, 0, -(2**70)),
        (b"k", b"v", 2**64, 0, 0), (b"k", b"v", 0, 2**64, 0), (b"k", b"v", 0, 0, 2**100),
        (b"k", b"v", 1.0, 0, 0), (b"k", b"v", None, 0, 0), (b"k", b"v", "1", 0, 0), (b"k", b"v", Flag.ONE, 0, 0),
        ("k", b"v", 0, 0, 0), (b"k", "v", 0, 0, 0), (bytearray(b"k"), b"v", 0, 0, 0), (b"k", bytearray(b"v"), 0, 0, 0),
        (memoryview(b"k"), b"v", 0, 0, 0), (b"k", memoryview(b"v"), 0, 0, 0), (Blob(b"k"), b"v", 0, 0, 0),
        (None, b"v", 0, 0, 0), (b"k", None, 0, 0, 0), (1, b"v", 0, 0, 0),
        (b"k" * (MAX_KEY + 1), b"v", 0, 0, 0),
    ],
    ids=repr,
)
def test_encode_refuses_outside_the_fast_path(core: SimpleNamespace, args: tuple[Any, ...]) -> None:
    assert core.kvcodec.encode_put(*args) is None


def test_encode_refuses_an_oversize_value(core: SimpleNamespace) -> None:
    assert core.kvcodec.encode_put(b"k", b"v" * (MAX_VALUE + 1), 0, 0, 0) is None


def test_commands_encode_put_keeps_its_checked_path() -> None:
    """The caller's slow path: str is encoded as UTF-8, bad arguments raise BadCommand."""
    assert commands.encode_put("k", "vé", 1, 2, 3) == reference(b"k", "vé".encode(), 1, 2, 3)
    assert commands.encode_put(bytearray(b"k"), b"v") == reference(b"k", b"v", 0, 0, 0)
    for bad in [(b"k", b"v", True), (b"k", b"v", -1), (b"k", b"v", 2**64), (b"k", 1.5), (b"k" * (MAX_KEY + 1), b"")]:
        with pytest.raises(BadCommand):
            commands.encode_put(*bad)


# -- decode_put: refusals ----------------------------------------------------------------------

GOOD = reference(b"key", b"value", 300, 70000, 2**40)


def _with(slot: int, obj: Any) -> bytes:
    fields: list[Any] = [1, 300, 70000, 2**40, b"key", b"value"]
    fields[slot] = obj
    return _pack(fields)


BAD_PAYLOADS = [
    b"", b"\xc1", b"\x96", GOOD + b"\x00", GOOD + GOOD, GOOD[:-1],
    _pack([1, 0, 0, 0, b"k"]), _pack([1, 0, 0, 0, b"k", b"v", b"w"]), _pack([]), _pack({"a": 1}),
    _pack([2, 0, 0, 0, b"k", b"v"]), _pack([0, 0, 0, 0, b"k", b"v"]), _pack([3, 0, 0, 0, b"k", b"v"]),
    _pack([257, 0, 0, 0, b"k", b"v"]),
    _pack([1, 0, 0, 0, b"k" * (MAX_KEY + 1), b"v"]),
    # negative ints in every encoding: negative fixint, int8/16/32/64 (0xd0-0xd3)
    b"\x96\x01\xff\x00\x00\xc4\x01k\xc4\x01v", b"\x96\x01\x00\xd0\x80\x00\xc4\x01k\xc4\x01v",
    b"\x96\x01\x00\x00\xd1\xff\xff\xc4\x01k\xc4\x01v", b"\x96\x01\xd2\x80\x00\x00\x00\x00\x00\xc4\x01k\xc4\x01v",
    b"\x96\x01\x00\x00\xd3\xff\xff\xff\xff\xff\xff\xff\xff\xc4\x01k\xc4\x01v",
    # truncated headers
    b"\xdc\x00", b"\xdd\x00\x00\x00", b"\x96\x01\x00\x00\x00\xc5\x00", b"\x96\x01\x00\x00\xcf\x00\x00",
    # bin length past the end
    b"\x96\x01\x00\x00\x00\xc4\x02k", b"\x96\x01\x00\x00\x00\xc4\x01k\xc6\xff\xff\xff\xffv",
    # an array header of the wrong length before a six-field body
    b"\x95\x01\x00\x00\x00\xc4\x01k\xc4\x01v", b"\x97\x01\x00\x00\x00\xc4\x01k\xc4\x01v",
    b"\xdc\x00\x05\x01\x00\x00\x00\xc4\x01k\xc4\x01v", b"\xdc\x00\x07\x01\x00\x00\x00\xc4\x01k\xc4\x01v",
    b"\xdc\x01\x06\x01\x00\x00\x00\xc4\x01k\xc4\x01v", b"\xdd\x00\x00\x00\x05\x01\x00\x00\x00\xc4\x01k\xc4\x01v",
    b"\xdd\x00\x01\x00\x06\x01\x00\x00\x00\xc4\x01k\xc4\x01v",
    b"\xdc\x00\x07\x01\x00\x00\x00\xc4\x01k\xc4\x01v\xc0", b"\xdd\x00\x00\x00\x05\x01\x00\x00\x00\xc4\x01k",
] + [
    _with(slot, obj)
    for slot in range(6)
    for obj in [True, False, None, 1.0, -1, "s", [], {}, msgpack.ExtType(1, b"x")]
]


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=lambda b: b[:24].hex())
def test_decode_refuses_what_decode_refuses(core: SimpleNamespace, payload: bytes) -> None:
    assert oracle_decode(payload) is None  # the vector really is bad (or not a PUT)
    assert core.kvcodec.decode_put(payload) is None


def test_decode_refuses_an_oversize_value(core: SimpleNamespace) -> None:
    payload = b"\x96\x01\x00\x00\x00\xc4\x01k\xc6" + struct.pack(">I", MAX_VALUE + 1) + b"v" * (MAX_VALUE + 1)
    assert oracle_decode(payload) is None
    assert core.kvcodec.decode_put(payload) is None


def test_decode_every_truncation_and_extension(core: SimpleNamespace) -> None:
    for payload in (GOOD, reference(b"", b"", U64_MAX, 0, 128)):
        for n in range(len(payload)):
            assert core.kvcodec.decode_put(payload[:n]) is None, n
        for extra in (b"\x00", b"\xc0", payload):
            assert core.kvcodec.decode_put(payload + extra) is None


@pytest.mark.parametrize("payload", [bytearray(GOOD), memoryview(GOOD), Blob(GOOD), None, 0, "x", [GOOD]], ids=repr)
def test_decode_takes_only_bytes(core: SimpleNamespace, payload: Any) -> None:
    """Other types are documented to give None (the caller's full decode handles buffers)."""
    assert core.kvcodec.decode_put(payload) is None


def test_commands_decode_fields_handles_other_buffers() -> None:
    for payload in (bytearray(GOOD), memoryview(GOOD)):
        assert commands.decode_fields(payload) == (1, 300, 70000, 2**40, b"key", (b"value",))


# -- decode_put: every valid encoding ----------------------------------------------------------


def pack_any(draw: Any, obj: Any) -> bytes:
    """``obj`` as msgpack, choosing at random among ALL of its valid encodings (msgpack's
    packer only writes the minimal one): wider and signed ints, str8 for a short str,
    array16/array32 for a short array, bin32 for a short bin..."""
    if obj is None:
        return b"\xc0"
    if obj is True or obj is False:
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        forms = []
        if 0 <= obj < 0x80:
            forms.append(struct.pack("B", obj))
        if -32 <= obj < 0:
            forms.append(struct.pack("b", obj))
        for code, fmt, lo, hi in [(0xCC, "B", 0, 2**8), (0xCD, ">H", 0, 2**16), (0xCE, ">I", 0, 2**32),
                                  (0xCF, ">Q", 0, 2**64), (0xD0, "b", -(2**7), 2**7), (0xD1, ">h", -(2**15), 2**15),
                                  (0xD2, ">i", -(2**31), 2**31), (0xD3, ">q", -(2**63), 2**63)]:
            if lo <= obj < hi:
                forms.append(bytes([code]) + struct.pack(fmt, obj))
        return draw(st.sampled_from(forms))
    if isinstance(obj, float):
        forms = [b"\xcb" + struct.pack(">d", obj)]
        if abs(obj) <= 3.4e38 and struct.unpack(">f", struct.pack(">f", obj))[0] == obj:
            forms.append(b"\xca" + struct.pack(">f", obj))  # float32 where it is exact
        return draw(st.sampled_from(forms))
    if isinstance(obj, (bytes, str)):
        data = obj if isinstance(obj, bytes) else obj.encode()
        n = len(data)
        if isinstance(obj, bytes):
            forms = [bytes([0xC4, n])] if n < 2**8 else []
            forms += [b"\xc5" + struct.pack(">H", n)] if n < 2**16 else []
            forms += [b"\xc6" + struct.pack(">I", n)]
        else:
            forms = [bytes([0xA0 | n])] if n < 32 else []
            forms += [bytes([0xD9, n])] if n < 2**8 else []
            forms += [b"\xda" + struct.pack(">H", n)] if n < 2**16 else []
            forms += [b"\xdb" + struct.pack(">I", n)]
        return draw(st.sampled_from(forms)) + data
    if isinstance(obj, list):
        n = len(obj)
        forms = [bytes([0x90 | n])] if n < 16 else []
        forms += [b"\xdc" + struct.pack(">H", n), b"\xdd" + struct.pack(">I", n)]
        return draw(st.sampled_from(forms)) + b"".join(pack_any(draw, x) for x in obj)
    raise AssertionError(f"pack_any: {obj!r}")


u64s = st.one_of(st.sampled_from(BOUNDARY_INTS), st.integers(0, U64_MAX))
fields = st.one_of(u64s, st.integers(-(2**63), -1), st.booleans(), st.none(), st.floats(allow_nan=False),
                   st.text(max_size=3))
# 70000 bytes: a value in a bin32, and a key over the limit
blobs = st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"x" * 300, b"y" * 70000]))
keys = st.one_of(st.binary(max_size=40), st.sampled_from([b"x" * 300, b"k" * MAX_KEY]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), U64_MAX), st.floats(allow_nan=False),
                    st.text(max_size=8), st.binary(max_size=8))
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=8), max_leaves=12)


@st.composite
def put_like(draw: Any) -> list[Any]:
    """Mostly well-formed PUTs, with any slot swapped for something else at times."""
    obj: list[Any] = [1, draw(u64s), draw(u64s), draw(u64s), draw(blobs), draw(blobs)]
    if draw(st.booleans()):
        slot = draw(st.integers(0, 5))
        obj[slot] = draw(st.one_of(fields, blobs, st.sampled_from([0, 2, 3, 4, 257]), st.lists(scalars, max_size=2)))
    if draw(st.integers(0, 7)) == 0:
        obj = obj[:-1] if draw(st.booleans()) else obj + [draw(scalars)]
    return obj


@st.composite
def payloads(draw: Any) -> bytes:
    """msgpack bytes of a PUT-like list or any object, minimal or in another valid encoding."""
    obj = draw(st.one_of(put_like(), put_like(), anything))
    if draw(st.booleans()):
        return _pack(obj)
    return pack_any(draw, obj)


@settings(max_examples=300, deadline=None)
@given(key=keys, value=blobs, client_id=u64s, serial=u64s, acked=u64s)
def test_encode_matches_msgpack_and_decode_inverts_it(
        core: SimpleNamespace, key: bytes, value: bytes, client_id: int, serial: int, acked: int) -> None:
    got = core.kvcodec.encode_put(key, value, client_id, serial, acked)
    assert got == reference(key, value, client_id, serial, acked)
    assert core.kvcodec.decode_put(got) == (client_id, serial, acked, key, value)


@settings(max_examples=500, deadline=None)
@given(payload=payloads())
def test_decode_answers_exactly_for_the_puts_decode_accepts(core: SimpleNamespace, payload: bytes) -> None:
    assert core.kvcodec.decode_put(payload) == oracle_decode(payload)


@st.composite
def mutated(draw: Any) -> bytes:
    """A payload truncated, with one byte changed, inserted or deleted, or with bytes appended."""
    payload = draw(payloads())
    how = draw(st.sampled_from(["truncate", "replace", "insert", "delete", "append"]))
    i = draw(st.integers(0, max(0, len(payload) - 1)))
    if how == "truncate":
        return payload[:i]
    if how == "append":
        return payload + draw(st.binary(min_size=1, max_size=4))
    b = draw(st.integers(0, 255))
    if how == "replace":
        return payload[:i] + bytes([b]) + payload[i + 1:]
    if how == "insert":
        return payload[:i] + bytes([b]) + payload[i:]
    return payload[:i] + payload[i + 1:]


@settings(max_examples=500, deadline=None)
@given(payload=st.one_of(mutated(), st.binary(max_size=32)))
def test_decode_of_damaged_bytes_agrees_with_decode(core: SimpleNamespace, payload: bytes) -> None:
    assert core.kvcodec.decode_put(payload) == oracle_decode(payload)


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(payloads(), mutated()))
def test_commands_decode_fields_agrees_with_decode(payload: bytes) -> None:
    """The caller, with whichever twin is selected, over the same inputs."""
    try:
        expected = tuple(commands.decode(payload))
    except BadCommand:
        with pytest.raises(BadCommand):
            commands.decode_fields(payload)
    else:
        assert commands.decode_fields(payload) == expected
