# cython: language_level=3
"""Compiled twin of ``iosync_py`` (the spec and docstrings are there): the doorbell
wait and the ``fdatasync`` run with the GIL released, so the sync starts as soon as
the I/O thread is woken, not when the event loop thread next lets go of the GIL."""

from libc.errno cimport errno, EINTR, EBADF, EIO
from posix.unistd cimport read

cdef extern from *:
    """
    #include <unistd.h>
    #include <time.h>
    static inline void raftx_store_i64(long long *p, long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline long long raftx_load_i64(long long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline double raftx_now(void) {
        struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    """
    void raftx_store_i64(long long *p, long long v) nogil
    long long raftx_load_i64(long long *p) nogil
    double raftx_now() nogil
    int fdatasync(int fd) nogil

__all__ = ["SyncAhead"]


cdef class SyncAhead:
    cdef long long _fd
    cdef long long _seq
    cdef long long _done

    def __cinit__(self):
        self._fd = -1
        self._seq = 0
        self._done = 0

    @property
    def fd(self):
        return raftx_load_i64(&self._fd)

    @property
    def seq(self):
        return raftx_load_i64(&self._seq)

    @property
    def done(self):
        return self._done

    def arm(self, long long seq, long long fd):
        raftx_store_i64(&self._fd, fd)
        raftx_store_i64(&self._seq, seq)

    def synced(self, long long seq):
        if seq > self._done:
            self._done = seq

    def wait(self, int bell):
        cdef unsigned char buf[8]
        cdef long long seq, fd
        cdef int err = 0, read_err = 0
        cdef double start = 0.0, took = 0.0
        cdef Py_ssize_t n
        cdef bint synced = False
        with nogil:
            while True:
                n = read(bell, buf, 8)
                if n >= 0 or errno != EINTR:
                    break
            seq = raftx_load_i64(&self._seq)
            fd = raftx_load_i64(&self._fd)
            if n < 0:
                read_err = errno
            elif fd >= 0 and seq > self._done:
                synced = True
                start = raftx_now()
                if fdatasync(<int>fd) != 0:
                    err = errno if errno else EIO
                took = raftx_now() - start
                if err == 0:
                    self._done = seq
        if n < 0:
            raise OSError(read_err, "read of the I/O thread's doorbell failed")
        if not synced or err == EBADF:
            return -1, 0, 0, 0.0
        return fd, seq, err, took
