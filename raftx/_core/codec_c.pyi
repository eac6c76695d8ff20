"""Type stub of the compiled twin ``codec_c``; the spec and docstrings are in ``codec_py``."""

from array import array
from collections.abc import Iterable, Sequence
from typing import Any, Union

from typing_extensions import disjoint_base

from raftx.errors import CorruptRecord

_Buffer = Union[bytes, bytearray, memoryview]

__all__ = [
    "FORMAT_VERSION",
    "RECORD_HEADER_SIZE",
    "FRAME_HEADER_SIZE",
    "MAX_RECORD_PAYLOAD",
    "MAX_FRAME_SIZE_LIMIT",
    "KIND_BLANK",
    "KIND_NORMAL",
    "KIND_MEMBERSHIP",
    "KIND_MAX",
    "crc32c",
    "encode_entries",
    "encode_normal",
    "decode_entries",
    "scan_records",
    "ScanResult",
    "record_kinds",
    "record_payloads",
    "record_crc",
    "encode_frame",
    "FrameDecoder",
]

FORMAT_VERSION: int
RECORD_HEADER_SIZE: int
FRAME_HEADER_SIZE: int
MAX_RECORD_PAYLOAD: int
MAX_FRAME_SIZE_LIMIT: int
KIND_BLANK: int
KIND_NORMAL: int
KIND_MEMBERSHIP: int
KIND_MAX: int
_CRC32C_IMPL: str

def crc32c(data: _Buffer, value: int = 0) -> int: ...
def _crc32c_table(data: _Buffer, value: int = 0) -> int: ...
def encode_entries(entries: Iterable[tuple[int, int, int, Any]]) -> bytes: ...
def encode_normal(term: int, first_index: int, payloads: Sequence[bytes]) -> tuple[bytes, array[int], array[int]]: ...
def decode_entries(buf: _Buffer, expected_first_index: int | None = None) -> list[tuple[int, int, int, bytes]]: ...
def scan_records(buf: _Buffer, start: int = 0, expected_first_index: int | None = None) -> ScanResult: ...
def record_kinds(data: _Buffer, offsets: array[int]) -> bytes: ...
def record_payloads(data: _Buffer, offsets: array[int], lengths: array[int]) -> list[bytes]: ...
def record_crc(data: _Buffer, offset: int = 0) -> int: ...
def encode_frame(frame_type: int, payload: _Buffer) -> bytes: ...

@disjoint_base
class ScanResult:
    @property
    def count(self) -> int: ...
    @property
    def first_index(self) -> int | None: ...
    @property
    def last_index(self) -> int | None: ...
    @property
    def end(self) -> int: ...
    @property
    def terms(self) -> array[int]: ...
    @property
    def offsets(self) -> array[int]: ...
    @property
    def lengths(self) -> array[int]: ...
    @property
    def error(self) -> CorruptRecord | None: ...
    @property
    def error_kind(self) -> str | None: ...
    @property
    def last_crc(self) -> int | None: ...
    def __init__(
        self,
        count: int,
        first_index: int | None,
        last_index: int | None,
        end: int,
        terms: array[int],
        offsets: array[int],
        lengths: array[int],
        error: CorruptRecord | None,
        error_kind: str | None,
        last_crc: int | None = None,
    ) -> None: ...

@disjoint_base
class FrameDecoder:
    @property
    def max_frame_size(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def failed(self) -> bool: ...
    def __init__(self, max_frame_size: int) -> None: ...
    def feed(self, data: _Buffer) -> list[tuple[int, bytes]]: ...
