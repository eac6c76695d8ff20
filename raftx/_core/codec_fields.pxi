# Included by codec_c.pyx (one extension module): fields of records already validated
# (record_kinds, record_payloads, record_crc). Same contract as ``codec_py``.

# -- fields of validated records -------------------------------------------------------


cdef inline bint _is_frozen_view(object data):
    """A flat read-only ``memoryview`` of a ``bytes`` object (see ``codec_py``): trusted
    like the ``bytes`` itself, no copy."""
    return (type(data) is memoryview and data.readonly and type(data.obj) is bytes
            and data.c_contiguous and data.format == "B" and data.ndim == 1)


cdef inline object _trusted(object data):
    """``data`` itself when it is ``bytes`` or a frozen view of one; a ``bytes`` copy of
    any other contiguous buffer (as ``codec_py``), so the records read cannot change
    underneath. The caller takes a buffer of the result for as long as it reads."""
    if type(data) is bytes or _is_frozen_view(data):
        return data
    cdef Py_buffer view
    _get_buffer(data, &view)
    try:
        return PyBytes_FromStringAndSize(<const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef const unsigned long long[::1] _q_column(object obj, str name):
    """``obj`` as a view of u64s (``array('Q')``); TypeError for anything else."""
    if obj is None:
        raise TypeError(f"{name} must be an array('Q'), not None")
    try:
        return obj
    except ValueError as exc:  # a buffer of another item type
        raise TypeError(f"{name} must be an array('Q'): {exc}") from None


cdef const unsigned int[::1] _i_column(object obj, str name):
    """``obj`` as a view of u32s (``array('I')``); TypeError for anything else."""
    if obj is None:
        raise TypeError(f"{name} must be an array('I'), not None")
    try:
        return obj
    except ValueError as exc:
        raise TypeError(f"{name} must be an array('I'): {exc}") from None


# boundscheck/wraparound off: every loop indexes k in [0, n), n = the views' length.
@cython.boundscheck(False)
@cython.wraparound(False)
def record_kinds(data, offsets):
    """The kind byte of each record at ``offsets`` (no CRC check); see ``codec_py``.

    ``offsets`` must export an unsigned 64-bit buffer (``array('Q')``, as
    ``scan_records`` returns; TypeError otherwise); ``data`` is any
    contiguous bytes-like object (a non-``bytes`` one is copied once).
    """
    cdef object buf = _trusted(data)
    cdef const unsigned long long[::1] ov = _q_column(offsets, "offsets")
    cdef Py_ssize_t n = ov.shape[0], k
    cdef unsigned long long size, o
    cdef const unsigned char *p
    cdef bytes out
    cdef unsigned char *w
    cdef Py_buffer view
    _get_buffer(buf, &view)
    try:
        size = <unsigned long long>view.len
        p = <const unsigned char *>view.buf
        out = PyBytes_FromStringAndSize(NULL, n)
        w = <unsigned char *>PyBytes_AS_STRING(out)
        for k in range(n):
            o = ov[k]
            if size < _HDR or o > size - _HDR:
                raise CodecError(f"record header at offset {o} is outside the buffer of {size} bytes")
            w[k] = p[o + _KIND_AT]
        return out
    finally:
        PyBuffer_Release(&view)


@cython.boundscheck(False)
@cython.wraparound(False)
def record_payloads(data, offsets, lengths):
    """The payload of each record at ``offsets``/``lengths`` (no CRC check); see ``codec_py``.

    ``offsets`` must export an unsigned 64-bit buffer (``array('Q')``) and ``lengths``
    an unsigned 32-bit one (``array('I')``), as ``scan_records`` returns
    (TypeError otherwise); ``data`` is any contiguous bytes-like object
    (a non-``bytes`` one is copied once).
    """
    cdef object buf = _trusted(data)
    cdef const unsigned long long[::1] ov = _q_column(offsets, "offsets")
    cdef const unsigned int[::1] lv = _i_column(lengths, "lengths")
    cdef Py_ssize_t n = ov.shape[0], k
    cdef unsigned long long size, o, ln
    cdef const char *p
    cdef list out
    cdef Py_buffer view
    if lv.shape[0] != n:
        raise CodecError(f"{n} offsets but {lv.shape[0]} lengths")
    _get_buffer(buf, &view)
    try:
        size = <unsigned long long>view.len
        p = <const char *>view.buf
        # validate every record before allocating anything
        for k in range(n):
            o = ov[k]
            ln = lv[k]
            if ln < _HDR:
                raise CodecError(f"record length {ln} is below the header size {_HDR}")
            if o > size or ln > size - o:
                raise CodecError(f"record {k} at offset {o} of {ln} bytes is outside the buffer of {size} bytes")
        out = [None] * n
        for k in range(n):
            out[k] = PyBytes_FromStringAndSize(p + ov[k] + _HDR, <Py_ssize_t>(lv[k] - _HDR))
        return out
    finally:
        PyBuffer_Release(&view)


def record_crc(data, offset=0):
    """The CRC-32C stored in the header of the record at ``offset`` (not checked);
    see ``codec_py.record_crc``."""
    if type(offset) is not int:
        offset = operator.index(offset)
    cdef Py_buffer view
    _get_buffer(data, &view)
    try:
        if offset < 0 or view.len < _HDR or offset > view.len - _HDR:
            raise CodecError(f"record header at offset {offset} is outside the buffer of {view.len} bytes")
        return raftx_load_le32(<const unsigned char *>view.buf + <Py_ssize_t>offset + 4)
    finally:
        PyBuffer_Release(&view)
