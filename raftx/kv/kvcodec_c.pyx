# cython: language_level=3
"""The key-value service's PUT command bytes, both ways (compiled twin).

The spec, with the byte layout and the full docstrings, is ``raftx.kv.kvcodec_py``;
this module has the same public names, signatures and behaviour. It writes and
parses the msgpack bytes itself (no msgpack call): the encoder writes msgpack's
minimal encodings, the parser accepts every valid encoding of a PUT that
``raftx.kv.commands.decode`` accepts. Neither raises for bad input: they answer None.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLong, PyLong_CheckExact
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

#: Longest key, in bytes. See ``kvcodec_py.MAX_KEY_BYTES``.
MAX_KEY_BYTES = 64 * 1024
#: Longest value, in bytes. See ``kvcodec_py.MAX_VALUE_BYTES``.
MAX_VALUE_BYTES = 32 * 1024 * 1024

cdef Py_ssize_t _MAX_KEY = MAX_KEY_BYTES
cdef Py_ssize_t _MAX_VALUE = MAX_VALUE_BYTES
cdef object _U64_MAX = 2**64 - 1

ctypedef unsigned char uchar


# -- encoding -------------------------------------------------------------------------------


cdef int _as_u64(object v, uint64_t* out) except -1:
    """1 and ``*out = v`` if ``v`` is exactly an int (not bool) in 0..2**64-1, else 0."""
    cdef int overflow = 0
    cdef long long s
    if not PyLong_CheckExact(v):
        return 0
    s = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow == 0:
        if s < 0:
            return 0
        out[0] = <uint64_t>s
        return 1
    if overflow < 0 or v > _U64_MAX:
        return 0
    out[0] = PyLong_AsUnsignedLongLong(v)  # 2**63 .. 2**64-1: cannot fail
    return 1


cdef inline Py_ssize_t _uint_size(uint64_t v) noexcept:
    if v < 0x80:
        return 1
    if v <= 0xff:
        return 2
    if v <= 0xffff:
        return 3
    if v <= <uint64_t>0xffffffffu:  # a C compare (a bare literal this wide is a Python int)
        return 5
    return 9


cdef inline uchar* _put_be(uchar* p, uint64_t v, int width) noexcept:
    """``v`` as ``width`` big-endian bytes at ``p``; the end of them."""
    cdef int i
    for i in range(width - 1, -1, -1):
        p[i] = <uchar>(v & 0xff)
        v >>= 8
    return p + width


cdef inline uchar* _put_uint(uchar* p, uint64_t v) noexcept:
    """msgpack's minimal encoding of a non-negative int (fixint, uint8..uint64)."""
    if v < 0x80:
        p[0] = <uchar>v
        return p + 1
    if v <= 0xff:
        p[0] = 0xcc
        return _put_be(p + 1, v, 1)
    if v <= 0xffff:
        p[0] = 0xcd
        return _put_be(p + 1, v, 2)
    if v <= <uint64_t>0xffffffffu:  # a C compare (a bare literal this wide is a Python int)
        p[0] = 0xce
        return _put_be(p + 1, v, 4)
    p[0] = 0xcf
    return _put_be(p + 1, v, 8)


cdef inline Py_ssize_t _bin_header_size(Py_ssize_t n) noexcept:
    if n <= 0xff:
        return 2
    if n <= 0xffff:
        return 3
    return 5


cdef inline uchar* _put_bin(uchar* p, object data, Py_ssize_t n) noexcept:
    """msgpack's minimal bin encoding (bin8/16/32) of the bytes ``data`` of length ``n``."""
    if n <= 0xff:
        p[0] = 0xc4
        p = _put_be(p + 1, <uint64_t>n, 1)
    elif n <= 0xffff:
        p[0] = 0xc5
        p = _put_be(p + 1, <uint64_t>n, 2)
    else:
        p[0] = 0xc6
        p = _put_be(p + 1, <uint64_t>n, 4)
    memcpy(p, PyBytes_AS_STRING(data), <size_t>n)
    return p + n


def encode_put(key, value, client_id, serial, acked):
    """See ``kvcodec_py.encode_put`` (the bytes of ``[1, client_id, serial, acked, key, value]``, or None)."""
    cdef uint64_t c, s, a
    cdef Py_ssize_t kn, vn, size
    cdef uchar* p
    if not (PyBytes_CheckExact(key) and PyBytes_CheckExact(value)):
        return None
    kn = PyBytes_GET_SIZE(key)
    vn = PyBytes_GET_SIZE(value)
    if kn > _MAX_KEY or vn > _MAX_VALUE:
        return None
    if not (_as_u64(client_id, &c) and _as_u64(serial, &s) and _as_u64(acked, &a)):
        return None
    # array header + op, three uints, two bins: the exact size, so one allocation
    size = (2 + _uint_size(c) + _uint_size(s) + _uint_size(a)
            + _bin_header_size(kn) + kn + _bin_header_size(vn) + vn)
    out = PyBytes_FromStringAndSize(NULL, size)
    p = <uchar*>PyBytes_AS_STRING(out)
    p[0] = 0x96  # fixarray of 6
    p[1] = 0x01  # op = PUT
    p = _put_uint(p + 2, c)
    p = _put_uint(p, s)
    p = _put_uint(p, a)
    p = _put_bin(p, key, kn)
    p = _put_bin(p, value, vn)
    assert p == <uchar*>PyBytes_AS_STRING(out) + size, "encode_put: size and written bytes differ"
    return out


# -- decoding: every read is bounds-checked against ``end``; NULL = not a valid PUT -----------


cdef inline uint64_t _get_be(const uchar* p, int width) noexcept:
    cdef uint64_t v = 0
    cdef int i
    for i in range(width):
        v = (v << 8) | p[i]
    return v


cdef inline const uchar* _get_uint(const uchar* p, const uchar* end, uint64_t* out) noexcept:
    """Read one msgpack int whose value is >= 0 (fixint, uint8..64, int8..64 with the
    sign bit clear); NULL if truncated, negative, or not an int."""
    cdef uchar b
    cdef int width
    if p >= end:
        return NULL
    b = p[0]
    if b < 0x80:
        out[0] = b
        return p + 1
    if b < 0xcc or b > 0xd3:
        return NULL  # negative fixint, nil, bool, float, str, bin, array, map, ext
    width = 1 << (b & 3)  # 0xcc/0xd0: 1, 0xcd/0xd1: 2, 0xce/0xd2: 4, 0xcf/0xd3: 8
    if end - p - 1 < width:
        return NULL
    if b >= 0xd0 and p[1] & 0x80:
        return NULL  # a signed int with the sign bit set is negative
    out[0] = _get_be(p + 1, width)
    return p + 1 + width


cdef inline const uchar* _get_bin(const uchar* p, const uchar* end, Py_ssize_t limit,
                                  const uchar** data, Py_ssize_t* n) noexcept:
    """Read one msgpack bin (bin8/16/32) of at most ``limit`` bytes; NULL if truncated,
    over the limit, or not a bin (a str is not: the command format wants bytes)."""
    cdef int width
    cdef uint64_t length
    if p >= end:
        return NULL
    if p[0] == 0xc4:
        width = 1
    elif p[0] == 0xc5:
        width = 2
    elif p[0] == 0xc6:
        width = 4
    else:
        return NULL
    if end - p - 1 < width:
        return NULL
    length = _get_be(p + 1, width)
    p += 1 + width
    if length > <uint64_t>limit or <Py_ssize_t>length > end - p:
        return NULL
    data[0] = p
    n[0] = <Py_ssize_t>length
    return p + length


def decode_put(payload):
    """See ``kvcodec_py.decode_put`` (``(client_id, serial, acked, key, value)`` or None)."""
    cdef const uchar* p
    cdef const uchar* end
    cdef const uchar* kp = NULL
    cdef const uchar* vp = NULL
    cdef Py_ssize_t kn = 0, vn = 0
    cdef uint64_t op = 0, c = 0, s = 0, a = 0
    if not PyBytes_CheckExact(payload):
        return None
    p = <const uchar*>PyBytes_AS_STRING(payload)
    end = p + PyBytes_GET_SIZE(payload)
    if p >= end:
        return None
    if p[0] == 0x96:  # fixarray of 6 (what encode_put writes)
        p += 1
    elif p[0] == 0xdc:  # array16 / array32 of 6: valid msgpack, decode accepts them
        if end - p < 3 or _get_be(p + 1, 2) != 6:
            return None
        p += 3
    elif p[0] == 0xdd:
        if end - p < 5 or _get_be(p + 1, 4) != 6:
            return None
        p += 5
    else:
        return None
    p = _get_uint(p, end, &op)
    if p == NULL or op != 1:
        return None
    p = _get_uint(p, end, &c)
    if p == NULL:
        return None
    p = _get_uint(p, end, &s)
    if p == NULL:
        return None
    p = _get_uint(p, end, &a)
    if p == NULL:
        return None
    p = _get_bin(p, end, _MAX_KEY, &kp, &kn)
    if p == NULL:
        return None
    p = _get_bin(p, end, _MAX_VALUE, &vp, &vn)
    if p == NULL or p != end:  # trailing bytes: msgpack.unpackb refuses them (ExtraData)
        return None
    return c, s, a, PyBytes_FromStringAndSize(<char*>kp, kn), PyBytes_FromStringAndSize(<char*>vp, vn)
