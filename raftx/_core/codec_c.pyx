# cython: language_level=3
"""raftx's one byte format: log entry records and network frames (compiled twin).

Same names, signatures, validation and byte-for-byte output as ``codec_py``, which is
the specification and documents the format byte by byte; read it there.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.array cimport array as carray, clone
cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import logging
import operator
from array import array

from raftx.errors import CodecError, CorruptRecord, ProtocolError

cdef extern from "crc32c.h":
    void raftx_crc32c_init() nogil
    uint32_t raftx_crc32c_update(uint32_t crc, const unsigned char *p, size_t n) nogil
    uint32_t raftx_crc32c_table(uint32_t crc, const unsigned char *p, size_t n) nogil
    const char *raftx_crc32c_impl_name

cdef extern from "codec_le.h":
    uint32_t raftx_load_le32(const unsigned char *p) nogil
    uint64_t raftx_load_le64(const unsigned char *p) nogil
    void raftx_store_le32(unsigned char *p, uint32_t v) nogil
    void raftx_store_le64(unsigned char *p, uint64_t v) nogil

raftx_crc32c_init()

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

logger = logging.getLogger(__name__)

cdef enum:
    _HDR = 32
    _KIND_AT = 24  # offset of the kind byte in a record header
    _FHDR = 5
    _MAX_PAYLOAD = 64 * 1024 * 1024
    _KIND_MAX = 2

FORMAT_VERSION = 1
RECORD_HEADER_SIZE = _HDR
FRAME_HEADER_SIZE = _FHDR
MAX_RECORD_PAYLOAD = _MAX_PAYLOAD
MAX_FRAME_SIZE_LIMIT = 0xFFFFFFFF
KIND_BLANK = 0
KIND_NORMAL = 1
KIND_MEMBERSHIP = 2
KIND_MAX = _KIND_MAX

#: Which CRC-32C implementation this CPU uses: "sse4.2", "armv8-crc" or "table".
_CRC32C_IMPL = raftx_crc32c_impl_name.decode("ascii")

cdef carray _Q_TEMPLATE = array("Q")
cdef carray _I_TEMPLATE = array("I")


# -- helpers ------------------------------------------------------------------------


cdef inline int _get_buffer(object obj, Py_buffer *view) except -1:
    """Acquire a contiguous byte buffer; TypeError for non-buffers and strided views."""
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except BufferError as exc:
        raise TypeError(f"buffer must be C-contiguous: {exc}") from None
    return 0


cdef uint64_t _u64(str name, object value) except? 0xFFFFFFFFFFFFFFFF:
    """``value`` (anything with ``__index__``) as a u64; CodecError when out of range."""
    if type(value) is not int:
        value = operator.index(value)
    try:
        return <uint64_t>value
    except OverflowError:
        raise CodecError(f"{name} {value} is outside u64") from None


cdef inline uint32_t _record_crc(const unsigned char *rec, size_t payload_len) noexcept nogil:
    """CRC-32C of a record: header bytes 0..3, then bytes 8.. through the payload end."""
    cdef uint32_t c = raftx_crc32c_update(0xFFFFFFFFu, rec, 4)
    c = raftx_crc32c_update(c, rec + 8, _HDR - 8 + payload_len)
    return c ^ 0xFFFFFFFFu


# -- CRC-32C ------------------------------------------------------------------------


cdef object _crc32c(object data, object value, bint portable):
    """Shared body of `crc32c` and `_crc32c_table`."""
    cdef uint64_t v = _u64("crc32c value", value)
    if v > 0xFFFFFFFFu:
        raise CodecError(f"crc32c value must be a u32, not {value!r}")
    cdef Py_buffer view
    cdef uint32_t c = (<uint32_t>v) ^ 0xFFFFFFFFu
    _get_buffer(data, &view)
    try:
        if portable:
            c = raftx_crc32c_table(c, <const unsigned char *>view.buf, <size_t>view.len)
        elif view.len >= 65536:
            with nogil:
                c = raftx_crc32c_update(c, <const unsigned char *>view.buf, <size_t>view.len)
        else:
            c = raftx_crc32c_update(c, <const unsigned char *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return c ^ 0xFFFFFFFFu


def crc32c(data, value=0):
    """CRC-32C of ``data`` continuing from ``value``; see ``codec_py.crc32c``.

    Uses the SSE4.2 ``crc32`` instruction where available (``_CRC32C_IMPL``) and
    releases the GIL for inputs of 64 KiB and more.
    """
    return _crc32c(data, value, False)


def _crc32c_table(data, value=0):
    """The portable slicing-by-8 CRC-32C, bypassing CPU dispatch (for tests)."""
    return _crc32c(data, value, True)


# -- encoding -----------------------------------------------------------------------


cdef struct _Pending:
    uint64_t term
    uint64_t index
    uint8_t kind
    const unsigned char *data
    Py_ssize_t size
    bint has_view
    Py_buffer view


def encode_entries(entries):
    """Serialize ``(term, index, kind, payload)`` tuples into one batch; see ``codec_py``.

    One pass validates and pins every payload buffer, the second writes the records
    straight into a single ``bytes`` allocation.
    """
    cdef list items = list(entries)
    cdef Py_ssize_t count = len(items), i, total = 0, n
    cdef _Pending *pend
    cdef _Pending *e
    cdef uint64_t prev_index = 0, prev_term = 0, kind
    cdef object entry, payload
    cdef bytes out
    cdef unsigned char *w
    if count == 0:
        return b""
    pend = <_Pending *>PyMem_Malloc(count * sizeof(_Pending))
    if pend == NULL:
        raise MemoryError()
    for i in range(count):
        pend[i].has_view = False
    try:
        for i in range(count):
            entry = items[i]
            e = &pend[i]
            if len(entry) != 4:
                raise CodecError(f"entry {i} must be (term, index, kind, payload), got {len(entry)} fields")
            term_o, index_o, kind_o, payload = entry
            e.term = _u64("term", term_o)
            e.index = _u64("index", index_o)
            if type(kind_o) is not int:
                kind_o = operator.index(kind_o)
            if not 0 <= kind_o <= _KIND_MAX:
                raise CodecError(f"unknown entry kind {kind_o}")
            e.kind = <uint8_t>(<long>kind_o)
            if type(payload) is bytes:
                e.data = <const unsigned char *>PyBytes_AS_STRING(payload)
                e.size = len(<bytes>payload)
            else:
                _get_buffer(payload, &e.view)
                e.has_view = True
                e.data = <const unsigned char *>e.view.buf
                e.size = e.view.len
            if e.size > _MAX_PAYLOAD:
                raise CodecError(
                    f"payload of {e.size} bytes exceeds MAX_RECORD_PAYLOAD={_MAX_PAYLOAD}")
            if i:
                if prev_index == 0xFFFFFFFFFFFFFFFFu or e.index != prev_index + 1:
                    raise CodecError(f"entry {i}: index {e.index} does not follow {prev_index} (§5.3)")
                if e.term < prev_term:
                    raise CodecError(
                        f"entry {i}: term {e.term} is below the previous term {prev_term} (§5.3)")
            prev_index = e.index
            prev_term = e.term
            total += _HDR + e.size

        # The GIL stays held: a ``bytes`` payload is kept alive only by its entry, which
        # another thread could replace if the entry is a mutable sequence.
        out = PyBytes_FromStringAndSize(NULL, total)
        w = <unsigned char *>PyBytes_AS_STRING(out)
        for i in range(count):
            e = &pend[i]
            n = e.size
            raftx_store_le32(w, <uint32_t>n)
            raftx_store_le64(w + 8, e.term)
            raftx_store_le64(w + 16, e.index)
            w[24] = e.kind
            memset(w + 25, 0, 7)
            if n:
                memcpy(w + _HDR, e.data, <size_t>n)
            raftx_store_le32(w + 4, _record_crc(w, <size_t>n))
            w += _HDR + n
        return out
    finally:
        for i in range(count):
            if pend[i].has_view:
                PyBuffer_Release(&pend[i].view)
        PyMem_Free(pend)


# -- validation ---------------------------------------------------------------------


cdef enum _Err:
    _OK = 0
    _TRUNC_HEADER
    _BAD_LENGTH
    _BAD_KIND
    _BAD_RESERVED
    _TRUNC_PAYLOAD
    _BAD_CRC
    _BAD_INDEX
    _BAD_TERM


cdef struct _Walk:
    Py_ssize_t end        # offset after the last valid record (= offset of the bad one)
    Py_ssize_t count
    uint64_t first_index
    uint64_t last_index
    uint64_t last_term
    uint32_t last_crc     # stored CRC of the last valid record
    _Err err
    uint64_t a            # details of the error, for its message
    uint64_t b


cdef void _walk(const unsigned char *p, Py_ssize_t n, Py_ssize_t start,
                bint has_expect, uint64_t expect, _Walk *st) noexcept nogil:
    """Validate records from ``start`` (rules 1-7 of the ``codec_py`` docstring)."""
    cdef Py_ssize_t o = start
    cdef uint64_t length, term, index, reserved
    cdef uint32_t stored, actual
    cdef uint8_t kind
    cdef bint has_prev = False
    st.count = 0
    st.err = _OK
    while o < n:
        st.end = o
        if n - o < _HDR:
            st.err = _TRUNC_HEADER
            st.a = <uint64_t>(n - o)
            return
        length = raftx_load_le32(p + o)
        if length > _MAX_PAYLOAD:
            st.err = _BAD_LENGTH
            st.a = length
            return
        kind = p[o + 24]
        if kind > _KIND_MAX:
            st.err = _BAD_KIND
            st.a = kind
            return
        reserved = raftx_load_le64(p + o + 24) >> 8
        if reserved:
            st.err = _BAD_RESERVED
            return
        if <uint64_t>(n - o - _HDR) < length:
            st.err = _TRUNC_PAYLOAD
            st.a = <uint64_t>(n - o - _HDR)
            st.b = length
            return
        stored = raftx_load_le32(p + o + 4)
        actual = _record_crc(p + o, <size_t>length)
        if stored != actual:
            st.err = _BAD_CRC
            st.a = stored
            st.b = actual
            return
        term = raftx_load_le64(p + o + 8)
        index = raftx_load_le64(p + o + 16)
        if has_prev:
            if st.last_index == 0xFFFFFFFFFFFFFFFFu or index != st.last_index + 1:
                st.err = _BAD_INDEX
                st.a = index
                return
            if term < st.last_term:
                st.err = _BAD_TERM
                st.a = term
                return
        else:
            if has_expect and index != expect:
                st.err = _BAD_INDEX
                st.a = index
                return
            st.first_index = index
        has_prev = True
        st.last_index = index
        st.last_term = term
        st.last_crc = stored
        st.count += 1
        o += _HDR + <Py_ssize_t>length
    st.end = o


cdef inline void _walk_maybe_nogil(const unsigned char *p, Py_ssize_t n, Py_ssize_t start,
                                   bint has_expect, uint64_t expect, _Walk *st):
    """`_walk`, releasing the GIL for buffers of 64 KiB and more (segment recovery)."""
    if n - start >= 65536:
        with nogil:
            _walk(p, n, start, has_expect, expect, st)
    else:
        _walk(p, n, start, has_expect, expect, st)


cdef inline Py_ssize_t _revisit(const unsigned char *p, Py_ssize_t n, Py_ssize_t o) except -1:
    """Length of the already validated record at ``o``, re-checked against ``n``: a
    ``bytearray`` rewritten by another thread while the GIL was released must not make
    the second pass read out of bounds."""
    cdef Py_ssize_t length
    if n - o < _HDR:
        raise CorruptRecord("buffer changed while being decoded", o)
    length = raftx_load_le32(p + o)
    if n - o - _HDR < length:
        raise CorruptRecord("buffer changed while being decoded", o)
    return length


cdef object _error(_Walk *st, bint has_expect, uint64_t expect):
    """``(CorruptRecord, error_kind)`` for a failed walk; messages match ``codec_py``."""
    cdef Py_ssize_t o = st.end
    if st.err == _TRUNC_HEADER:
        return CorruptRecord(f"record header truncated: {st.a} of {_HDR} bytes", o), "truncated"
    if st.err == _BAD_LENGTH:
        msg = f"declared payload length {st.a} exceeds MAX_RECORD_PAYLOAD={_MAX_PAYLOAD}"
        return CorruptRecord(msg, o), "corrupt"
    if st.err == _BAD_KIND:
        return CorruptRecord(f"unknown entry kind {st.a}", o), "corrupt"
    if st.err == _BAD_RESERVED:
        return CorruptRecord("reserved header bytes are not zero", o), "corrupt"
    if st.err == _TRUNC_PAYLOAD:
        return CorruptRecord(f"record payload truncated: {st.a} of {st.b} bytes", o), "truncated"
    if st.err == _BAD_CRC:
        msg = f"CRC32C mismatch: stored {st.a:#010x}, computed {st.b:#010x}"
        return CorruptRecord(msg, o), "corrupt"
    if st.err == _BAD_INDEX:
        if st.count:
            expected = <object>st.last_index + 1
        else:
            expected = expect
        msg = f"index discontinuity: expected {expected}, found {st.a} (§5.3)"
        return CorruptRecord(msg, o), "corrupt"
    if st.err == _BAD_TERM:
        return CorruptRecord(f"term {st.a} decreases from {st.last_term} (§5.3)", o), "corrupt"
    return None, None


def decode_entries(buf, expected_first_index=None):
    """Parse a whole batch into ``(term, index, kind, payload)`` tuples; see ``codec_py``."""
    cdef bint has_expect = expected_first_index is not None
    cdef uint64_t expect = _u64("expected_first_index", expected_first_index) if has_expect else 0
    cdef Py_buffer view
    cdef _Walk st
    cdef const unsigned char *p
    cdef Py_ssize_t o, i, length
    cdef uint64_t term, prev_term = 0
    cdef object term_o = None
    cdef list out
    _get_buffer(buf, &view)
    try:
        p = <const unsigned char *>view.buf
        _walk_maybe_nogil(p, view.len, 0, has_expect, expect, &st)
        if st.err != _OK:
            raise _error(&st, has_expect, expect)[0]
        out = [None] * st.count
        o = 0
        for i in range(st.count):
            length = _revisit(p, view.len, o)
            term = raftx_load_le64(p + o + 8)
            if term_o is None or term != prev_term:
                term_o = term
                prev_term = term
            out[i] = (term_o, raftx_load_le64(p + o + 16), <int>p[o + 24],
                      PyBytes_FromStringAndSize(<const char *>p + o + _HDR, length))
            o += _HDR + length
        return out
    finally:
        PyBuffer_Release(&view)


cdef class ScanResult:
    """What ``scan_records`` found; attributes as documented on ``codec_py.ScanResult``."""

    cdef readonly Py_ssize_t count
    cdef readonly object first_index
    cdef readonly object last_index
    cdef readonly Py_ssize_t end
    cdef readonly object terms
    cdef readonly object offsets
    cdef readonly object lengths
    cdef readonly object error
    cdef readonly object error_kind
    cdef readonly object last_crc

    def __init__(self, count, first_index, last_index, end, terms, offsets, lengths, error, error_kind,
                 last_crc=None):
        self.count = count
        self.first_index = first_index
        self.last_index = last_index
        self.end = end
        self.terms = terms
        self.offsets = offsets
        self.lengths = lengths
        self.error = error
        self.error_kind = error_kind
        self.last_crc = last_crc

    def __repr__(self):
        return (
            f"ScanResult(count={self.count}, first_index={self.first_index}, "
            f"last_index={self.last_index}, end={self.end}, error_kind={self.error_kind!r}, "
            f"error={self.error!r})"
        )


def scan_records(buf, start=0, expected_first_index=None):
    """Walk the valid prefix of ``buf`` without copying payloads; see ``codec_py``."""
    cdef bint has_expect = expected_first_index is not None
    cdef uint64_t expect = _u64("expected_first_index", expected_first_index) if has_expect else 0
    cdef Py_buffer view
    cdef _Walk st
    cdef const unsigned char *p
    cdef Py_ssize_t o, i, length, begin
    cdef carray terms, offsets, lengths
    _get_buffer(buf, &view)
    try:
        if type(start) is not int:
            start = operator.index(start)
        if not 0 <= start <= view.len:
            raise CodecError(f"start {start} is outside the buffer (0..{view.len})")
        begin = start
        p = <const unsigned char *>view.buf
        _walk_maybe_nogil(p, view.len, begin, has_expect, expect, &st)
        terms = clone(_Q_TEMPLATE, st.count, False)
        offsets = clone(_Q_TEMPLATE, st.count, False)
        lengths = clone(_I_TEMPLATE, st.count, False)
        o = begin
        for i in range(st.count):
            length = _revisit(p, view.len, o)
            terms.data.as_ulonglongs[i] = raftx_load_le64(p + o + 8)
            offsets.data.as_ulonglongs[i] = <unsigned long long>o
            lengths.data.as_uints[i] = <unsigned int>(_HDR + length)
            o += _HDR + length
        error, error_kind = _error(&st, has_expect, expect)
        if error is not None:
            logger.debug("scan_records stopped at offset %d (%s): %s", st.end, error_kind, error)
        if st.count:
            first, last, last_crc = st.first_index, st.last_index, st.last_crc
        else:
            first = last = last_crc = None
        return ScanResult(st.count, first, last, st.end, terms, offsets, lengths, error, error_kind, last_crc)
    finally:
        PyBuffer_Release(&view)


def encode_normal(term, first_index, payloads):
    """NORMAL records of one term from a sequence of ``bytes``, with their offsets and
    lengths; see ``codec_py``."""
    cdef list items = list(payloads)
    cdef Py_ssize_t count = len(items), i, total = 0, n, o = 0
    cdef uint64_t t = _u64("term", term), first = _u64("first_index", first_index)
    cdef object payload
    cdef bytes out
    cdef unsigned char *w
    cdef carray offsets, lengths
    if count and first + <uint64_t>(count - 1) < first:
        raise CodecError(f"indexes from {first} overflow u64")
    for i in range(count):
        payload = items[i]
        if type(payload) is not bytes:
            raise TypeError(f"a payload must be bytes, not {type(payload).__name__}")
        n = len(<bytes>payload)
        if n > _MAX_PAYLOAD:
            raise CodecError(f"payload of {n} bytes exceeds MAX_RECORD_PAYLOAD={_MAX_PAYLOAD}")
        total += _HDR + n
    offsets = clone(_Q_TEMPLATE, count, False)
    lengths = clone(_I_TEMPLATE, count, False)
    out = PyBytes_FromStringAndSize(NULL, total)
    w = <unsigned char *>PyBytes_AS_STRING(out)
    for i in range(count):
        payload = items[i]  # the list is ours: its bytes stay alive and unchanged
        n = len(<bytes>payload)
        raftx_store_le32(w, <uint32_t>n)
        raftx_store_le64(w + 8, t)
        raftx_store_le64(w + 16, first + <uint64_t>i)
        w[24] = 1  # KIND_NORMAL
        memset(w + 25, 0, 7)
        if n:
            memcpy(w + _HDR, PyBytes_AS_STRING(payload), <size_t>n)
        raftx_store_le32(w + 4, _record_crc(w, <size_t>n))
        offsets.data.as_ulonglongs[i] = <unsigned long long>o
        lengths.data.as_uints[i] = <unsigned int>(_HDR + n)
        o += _HDR + n
        w += _HDR + n
    return out, offsets, lengths


# The rest of the module, one concern per file (textually included: still one module).
include "codec_fields.pxi"
include "codec_frames.pxi"
