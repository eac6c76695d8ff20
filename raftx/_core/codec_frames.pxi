# Included by codec_c.pyx (one extension module): network frames (encode_frame,
# FrameDecoder). Same contract as ``codec_py``.

# -- network frames -----------------------------------------------------------------


def encode_frame(frame_type, payload):
    """One network frame (u32 length, u8 type, payload); see ``codec_py.encode_frame``."""
    if type(frame_type) is not int:
        frame_type = operator.index(frame_type)
    if not 0 <= frame_type <= 0xFF:
        raise CodecError(f"frame_type {frame_type} is outside u8")
    cdef Py_buffer view
    cdef bytes out
    cdef unsigned char *w
    _get_buffer(payload, &view)
    try:
        if <unsigned long long>view.len > 0xFFFFFFFFu:
            raise CodecError(f"frame payload of {view.len} bytes does not fit a u32 length")
        out = PyBytes_FromStringAndSize(NULL, _FHDR + view.len)
        w = <unsigned char *>PyBytes_AS_STRING(out)
        raftx_store_le32(w, <uint32_t>view.len)
        w[4] = <unsigned char>(<int>frame_type)
        if view.len:
            memcpy(w + _FHDR, view.buf, <size_t>view.len)
        return out
    finally:
        PyBuffer_Release(&view)


cdef class FrameDecoder:
    """Incremental frame decoder; see ``codec_py.FrameDecoder`` for the contract."""

    cdef readonly unsigned long long max_frame_size
    cdef bytearray _buf
    cdef object _error

    def __init__(self, max_frame_size):
        if type(max_frame_size) is not int:
            max_frame_size = operator.index(max_frame_size)
        if not 0 <= max_frame_size <= 0xFFFFFFFF:
            raise CodecError(f"max_frame_size {max_frame_size} is outside 0..{0xFFFFFFFF}")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._error = None

    @property
    def buffered(self):
        """Bytes of an incomplete frame held for the next ``feed``."""
        return len(self._buf)

    @property
    def failed(self):
        """True once the decoder has rejected the stream."""
        return self._error is not None

    cdef object _fail(self, uint64_t length):
        self._error = f"frame length {length} exceeds max_frame_size {self.max_frame_size}"
        self._buf = bytearray()
        logger.debug("FrameDecoder: %s", self._error)
        return ProtocolError(self._error)

    def feed(self, data):
        """Consume ``data``; return the frames it completed, in order."""
        if self._error is not None:
            raise ProtocolError(f"frame decoder already failed: {self._error}")
        cdef Py_buffer view
        cdef const unsigned char *p
        cdef Py_ssize_t n, o = 0, have, take, end
        cdef uint64_t length
        cdef list frames = []
        cdef bytearray buf = self._buf
        cdef const unsigned char *h
        _get_buffer(data, &view)
        try:
            p = <const unsigned char *>view.buf
            n = view.len
            have = len(buf)
            if have:
                # Complete the pending frame from the front of ``data``.
                if have < _FHDR:
                    take = min(_FHDR - have, n)
                    buf.extend(p[:take])
                    o = take
                    if len(buf) < _FHDR:
                        return frames
                    length = raftx_load_le32(<const unsigned char *>(<char *>buf))
                    if length > self.max_frame_size:
                        raise self._fail(length)
                h = <const unsigned char *>(<char *>buf)
                length = raftx_load_le32(h)
                take = min(<Py_ssize_t>(_FHDR + length) - len(buf), n - o)
                if take:
                    buf.extend(p[o:o + take])
                    o += take
                if <uint64_t>len(buf) < _FHDR + length:
                    return frames
                h = <const unsigned char *>(<char *>buf)
                frames.append((<int>h[4], PyBytes_FromStringAndSize(<const char *>h + _FHDR, <Py_ssize_t>length)))
                del buf[:]
            # Whole frames straight from ``data``, then buffer the remainder.
            while n - o >= _FHDR:
                length = raftx_load_le32(p + o)
                if length > self.max_frame_size:
                    raise self._fail(length)
                if <uint64_t>(n - o - _FHDR) < length:
                    break
                end = o + _FHDR + <Py_ssize_t>length
                frames.append((<int>p[o + 4], PyBytes_FromStringAndSize(<const char *>p + o + _FHDR, <Py_ssize_t>length)))
                o = end
            if o < n:
                buf.extend(p[o:n])
            return frames
        finally:
            PyBuffer_Release(&view)
