"""`SimFS`: an in-memory file system that loses power like a real disk.

A `raftx.storage.FileIO` (the seam every file operation of `SegmentedLogStore`
goes through), so the store runs its real code over it::

    fs = SimFS(seed=7)
    store = await SegmentedLogStore.open("/n1/log", io=fs, sync_in_thread=False)
    await store.append(entries, callback)      # written, maybe not yet durable
    fs.power_loss()                            # the machine loses power, reboots
    store = await SegmentedLogStore.open("/n1/log", io=fs, sync_in_thread=False)

The model (correctness-notes §5.6):

* **Two views of every file.** What a running process reads (the page cache) and
  what is on the platter (durable). ``pwrite`` / ``ftruncate`` change only the
  first; ``fsync`` / ``fdatasync`` of the file make its whole content durable.
* **Directory entries** (a create, ``rename``, ``unlink``) are durable only after
  `fsync_dir` of the directory holding them; a file whose name was never made
  durable is gone after a power loss, an unlinked one whose removal was not is
  back. Directories themselves (`makedirs`) are durable at once.
* **Power loss** (`power_loss`): for each file, the operations since its last
  sync reached the platter in order up to some point: ``kept`` of them (random
  per file when None); the next one, if a write, is *torn* at 512-byte sector
  granularity -- ``"sector"``: one sector of it (chosen at random) reads as the old
  content (zeros past the old end) while the file size includes the whole write;
  ``"tail"``: the same from a random sector boundary to the end of the write;
  ``"random"``: one of the two; None: not torn, dropped -- and everything after it
  is lost. Then every descriptor is closed and the file system is usable again,
  as after a reboot.
* **A process crash** (`crash`, or `kill` + `revive`): descriptors are closed and
  locks released, but nothing is lost: the page cache survives the process.
* **fsync failure** (``fail_next("fdatasync")``, fsyncgate): the call raises
  ``OSError(EIO)`` and the unsynced writes of that file are dropped from the
  durable path (the page cache still shows them), so a retried fsync "succeeds"
  without making them durable -- which is why the store must fail-stop (R10).
* **Crash points and tears** as `raftx.storage.FaultInjector`: ``crash_after(n)``,
  ``tear_next_write(k)``, ``ops``/``trace`` (the shared `raftx.storage.faults.FaultGate`).
* **Locks**: `lock` is an exclusive non-blocking ``flock`` per open file.

Deterministic: every random choice comes from ``random.Random(seed)`` and files are
visited in sorted order; no threads are started, and an internal lock makes it
safe to call from the store's I/O thread (the store still runs its blocking jobs
there; with ``sync_in_thread=False`` its fdatasync runs on the caller's thread).
Paths are normalised strings (a ``pathlib.Path`` works); nothing touches the real
disk. Inspection for tests: `files` (what a process reads), `durable_files` (what
a power loss that kept nothing unsynced would leave), `write_file` /
`remove_file` (an operator's hand), ``power_losses`` (a counter).

The whole interface, in short: ``SimFS(seed)``; pass it as ``io=`` to
`SegmentedLogStore.open`; ``power_loss(kept=None, torn="random")``; ``crash()``;
``fail_next(op)``, ``crash_after(n)``, ``tear_next_write(k)``, ``disarm()``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from raftx.storage.fileio import FileIO
from raftx.testing.faultio import FaultGate, SimulatedCrash

__all__ = ["SECTOR_SIZE", "SimFS"]

SECTOR_SIZE = 512
_TEARS = ("sector", "tail")


@dataclass(eq=False)
class _Inode:
    """One file: its page-cache content, its durable content, unsynced operations."""

    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    #: ``("w", offset, bytes)`` / ``("t", size)`` since the last sync, in order.
    pending: list[tuple] = field(default_factory=list)  # type: ignore[type-arg]


@dataclass(eq=False)
class _Open:
    path: str
    inode: _Inode
    writable: bool


def _norm(path: str | os.PathLike[str]) -> str:
    return posixpath.normpath(posixpath.join("/", os.fspath(path)))


def _write_into(buf: bytearray, offset: int, data: bytes) -> None:
    if len(buf) < offset:
        buf.extend(bytes(offset - len(buf)))
    buf[offset : offset + len(data)] = data


def _resize(buf: bytearray, size: int) -> None:
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(bytes(size - len(buf)))


def _apply(content: bytes, ops: list[tuple]) -> bytearray:  # type: ignore[type-arg]
    """``content`` with the unsynced operations ``ops`` carried out in order."""
    data = bytearray(content)
    for op in ops:
        if op[0] == "w":
            _write_into(data, op[1], op[2])
        else:
            _resize(data, op[1])
    return data


class SimFS(FaultGate, FileIO):
    """An in-memory, power-loss-simulating `FileIO` (see the module doc).

    ``seed`` seeds the `random.Random` behind every choice a power loss makes.
    """

    def __init__(self, seed: int = 0) -> None:
        self._init_gate()
        self.rng = random.Random(seed)
        self._dirs: set[str] = {"/"}
        self._names: dict[str, _Inode] = {}  # what a process sees
        self._durable_names: dict[str, _Inode] = {}  # what survives a power loss
        self._fds: dict[int, _Open] = {}
        self._next_fd = 1000
        self._locks: dict[int, int] = {}  # id(inode) -> fd holding its flock
        self.power_losses = 0

    # -- process and machine failures ---------------------------------------------------

    def _close_all(self) -> None:
        self._fds.clear()
        self._locks.clear()

    def crash(self) -> None:
        """The process dies and restarts: descriptors closed, locks released, nothing lost."""
        self.revive()

    def power_loss(self, *, kept: int | None = None, torn: str | None = "random") -> dict[str, bytes]:
        """The machine loses power and reboots; returns the surviving files' bytes.

        Per file, ``kept`` unsynced operations survive (random when None, capped at
        how many there are), the next one is torn as ``torn`` says (``"sector"``,
        ``"tail"``, ``"random"`` or None = dropped) and the rest are lost; directory
        entries revert to their last `fsync_dir`. Afterwards the file system works
        again (nothing armed, every old descriptor closed).
        """
        if torn is not None and torn not in (*_TEARS, "random"):
            raise ValueError(f"torn must be 'sector', 'tail', 'random' or None, not {torn!r}")
        with self._gate_lock:
            self.kill()
            self.power_losses += 1
            self._names = dict(self._durable_names)
            seen: set[int] = set()
            for path in sorted(self._names):
                inode = self._names[path]
                if id(inode) in seen:
                    continue
                seen.add(id(inode))
                self._settle(inode, kept, torn)
            self.dead = False
            self.disarm()
            return self.files()

    def _settle(self, inode: _Inode, kept: int | None, torn: str | None) -> None:
        """Decide what of ``inode``'s unsynced operations reached the platter."""
        ops = inode.pending
        n = len(ops) if not ops else min(len(ops), self.rng.randint(0, len(ops)) if kept is None else kept)
        data = _apply(inode.durable, ops[:n])
        if n < len(ops) and torn is not None and ops[n][0] == "w":
            _, offset, payload = ops[n]
            old = bytes(data)
            _write_into(data, offset, payload)  # the size includes the whole write ...
            end = offset + len(payload)
            sectors = list(range(offset - offset % SECTOR_SIZE, end, SECTOR_SIZE))
            kind = self.rng.choice(_TEARS) if torn == "random" else torn
            s = self.rng.choice(sectors)
            lo, hi = max(s, offset), (min(s + SECTOR_SIZE, end) if kind == "sector" else end)
            # ... but part of it never reached the disk: the old bytes (zeros past the old end)
            data[lo:hi] = old[lo:hi].ljust(hi - lo, b"\0")
        inode.data = data
        inode.durable = bytes(data)
        inode.pending = []

    # -- inspection (tests) ---------------------------------------------------------------

    def files(self) -> dict[str, bytes]:
        """Every file's current content, by path."""
        with self._gate_lock:
            return {p: bytes(i.data) for p, i in sorted(self._names.items())}

    def durable_files(self) -> dict[str, bytes]:
        """What would survive a power loss that kept no unsynced operation."""
        with self._gate_lock:
            return {p: i.durable for p, i in sorted(self._durable_names.items())}

    def write_file(self, path: str | os.PathLike[str], data: bytes) -> None:
        """Put a durable file (fixtures; an operator's hand edit)."""
        with self._gate_lock:
            p = _norm(path)
            self._need_dir(posixpath.dirname(p))
            inode = _Inode(bytearray(data), bytes(data))
            self._names[p] = self._durable_names[p] = inode

    def remove_file(self, path: str | os.PathLike[str]) -> None:
        """Delete a file durably (fixtures; an operator's mistake)."""
        with self._gate_lock:
            p = _norm(path)
            if p not in self._names and p not in self._durable_names:
                raise FileNotFoundError(errno.ENOENT, "no such file", p)
            self._names.pop(p, None)
            self._durable_names.pop(p, None)

    # -- helpers ----------------------------------------------------------------------

    def _need_dir(self, d: str) -> None:
        if d not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", d)

    def _file(self, fd: int) -> _Open:
        f = self._fds.get(fd)
        if f is None:
            self._alive("fd")
            raise SimulatedCrash(f"descriptor {fd} belongs to a process that died")
        return f

    # -- FileIO -----------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        """Open ``path``; ``O_CREAT`` / ``O_EXCL`` / ``O_TRUNC`` as ``os.open``."""
        writable = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        p = _norm(path)
        with self._gate_lock:
            if writable:
                self._gate("open", p)
            else:
                self._alive("open")
            if p in self._dirs:
                raise IsADirectoryError(errno.EISDIR, "is a directory", p)
            inode = self._names.get(p)
            if inode is None:
                if not flags & os.O_CREAT:
                    raise FileNotFoundError(errno.ENOENT, "no such file", p)
                self._need_dir(posixpath.dirname(p))
                inode = self._names[p] = _Inode()
            elif flags & os.O_CREAT and flags & os.O_EXCL:
                raise FileExistsError(errno.EEXIST, "file exists", p)
            if flags & os.O_TRUNC and inode.data:
                _resize(inode.data, 0)
                inode.pending.append(("t", 0))
            fd = self._next_fd
            self._next_fd += 1
            self._fds[fd] = _Open(p, inode, writable)
            return fd

    def close(self, fd: int) -> None:
        """Close ``fd`` (a descriptor of a dead process is ignored); releases its lock."""
        with self._gate_lock:
            f = self._fds.pop(fd, None)
            if f is not None and self._locks.get(id(f.inode)) == fd:
                del self._locks[id(f.inode)]

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        """Write into the page cache (durable after a sync); an armed tear writes a prefix, then crashes."""
        with self._gate_lock:
            self._gate("pwrite", f"{len(data)}@{offset}")
            f = self._file(fd)
            if not f.writable:
                raise OSError(errno.EBADF, "not open for writing")
            payload = bytes(data)
            k = self._take_tear()
            if k is not None:
                payload = payload[:k]
            _write_into(f.inode.data, offset, payload)
            f.inode.pending.append(("w", offset, payload))
            if k is not None:
                self.kill()
                raise SimulatedCrash(f"torn write: {k} of {len(data)} bytes at {offset}")

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read from the page cache (short only at the end of the file)."""
        with self._gate_lock:
            self._alive("pread")
            return bytes(self._file(fd).inode.data[offset : offset + size])

    def _sync(self, name: str, fd: int) -> None:
        with self._gate_lock:
            f = self._file(fd) if not self.dead else None
            try:
                self._gate(name)
            except OSError:
                if f is not None:  # fsyncgate: the dirty pages are marked clean, not written
                    f.inode.pending = []
                raise
            inode = self._file(fd).inode
            inode.durable = bytes(_apply(inode.durable, inode.pending))  # only what is dirty
            inode.pending = []

    def fdatasync(self, fd: int) -> None:
        """Make the file's content durable (its size included)."""
        self._sync("fdatasync", fd)

    def fsync(self, fd: int) -> None:
        """Make the file's content durable (as `fdatasync`: names need `fsync_dir`)."""
        self._sync("fsync", fd)

    def ftruncate(self, fd: int, size: int) -> None:
        """Cut or extend the file in the page cache (durable after a sync)."""
        with self._gate_lock:
            self._gate("ftruncate", str(size))
            f = self._file(fd)
            _resize(f.inode.data, size)
            f.inode.pending.append(("t", size))

    def rename(self, src: str, dst: str) -> None:
        """Replace ``dst`` by ``src`` (durable after `fsync_dir` of the directory)."""
        s, d = _norm(src), _norm(dst)
        with self._gate_lock:
            self._gate("rename", f"{s} -> {d}")
            if s not in self._names:
                raise FileNotFoundError(errno.ENOENT, "no such file", s)
            self._need_dir(posixpath.dirname(d))
            self._names[d] = self._names.pop(s)

    def unlink(self, path: str) -> None:
        """Remove a name (durable after `fsync_dir` of the directory)."""
        p = _norm(path)
        with self._gate_lock:
            self._gate("unlink", p)
            if self._names.pop(p, None) is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", p)

    def fsync_dir(self, path: str) -> None:
        """Make every create / rename / unlink in directory ``path`` durable."""
        d = _norm(path)
        with self._gate_lock:
            self._gate("fsync_dir", d)
            self._need_dir(d)
            for p in [p for p in self._durable_names if posixpath.dirname(p) == d]:
                del self._durable_names[p]
            for p, inode in self._names.items():
                if posixpath.dirname(p) == d:
                    self._durable_names[p] = inode

    def size(self, fd: int) -> int:
        """The file's size as the process sees it."""
        with self._gate_lock:
            return len(self._file(fd).inode.data)

    @contextlib.contextmanager
    def mapped(self, fd: int, size: int) -> Iterator[memoryview]:
        """A copy of the first ``size`` bytes."""
        with self._gate_lock:
            data = bytes(self._file(fd).inode.data[:size])
        yield memoryview(data)

    def listdir(self, path: str) -> list[str]:
        """Files and subdirectories of ``path`` as the process sees them."""
        d = _norm(path)
        with self._gate_lock:
            self._alive("listdir")
            self._need_dir(d)
            names = {posixpath.basename(p) for p in self._names if posixpath.dirname(p) == d}
            names |= {posixpath.basename(p) for p in self._dirs if p != "/" and posixpath.dirname(p) == d}
            return sorted(names)

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents (durable at once)."""
        d = _norm(path)
        with self._gate_lock:
            self._alive("makedirs")
            while d not in self._dirs:
                if d in self._names:
                    raise FileExistsError(errno.EEXIST, "a file is in the way", d)
                self._dirs.add(d)
                d = posixpath.dirname(d)

    def lock(self, fd: int) -> None:
        """Exclusive ``flock`` of the file; `BlockingIOError` if another descriptor holds it."""
        with self._gate_lock:
            f = self._file(fd)
            holder = self._locks.get(id(f.inode))
            if holder is not None and holder != fd:
                raise BlockingIOError(errno.EWOULDBLOCK, "file is locked", f.path)
            self._locks[id(f.inode)] = fd
