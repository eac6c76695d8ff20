"""``raftx inspect DATA_DIR [--verify] [--dump] [--json]``: look inside a data directory.

Reads files only (never opens the store for writing, never repairs anything):

* segments of a `SegmentedLogStore` (sequence, index range, size), found in
  ``DATA_DIR`` or ``DATA_DIR/log``;
* the hard state (vote, committed, purge point);
* snapshot files (``*.snap``) in ``DATA_DIR``, ``DATA_DIR/snap`` or
  ``DATA_DIR/snapshots``.

The log is always checked by `raftx.storage.recovery.scan_log_dir`: the very
validation `SegmentedLogStore.open` runs (headers, identity, sequence, checksum
chain, every record CRC, index continuity, lost files, committed beyond the log),
so whatever ``open`` refuses is reported, with the file and offset; a torn write
that ``open`` would cut is shown, not an error. ``--verify`` also checks every
snapshot's checksum; ``--dump`` prints every entry (``--decode kv``: the key-value
service's commands, op, key and value); ``--json`` prints one JSON document instead
of text; ``--cluster-name`` / ``--node-id`` check the identity the node will open the
log with, as ``open`` does. Exit codes: 0 fine, 1 ``open`` would refuse (or a
snapshot is corrupt), 2 bad usage, an unreadable directory, or one that is not a
raftx data directory (no segments, hard state or snapshots).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from raftx import _core, cli_config
from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.fileio import FileIO
from raftx.storage.recovery import LogScan, SegmentScan, scan_log_dir
from raftx.storage.segment import HARDSTATE_NAME, HEADER_SIZE, parse_segment_name
from raftx.storage.snapshot import StoredSnapshot, log_id_to_list
from raftx.types import Entry

__all__ = ["NotADataDirectory", "main", "inspect_dir"]


def _names(io: FileIO, d: Path) -> list[str]:
    try:
        return io.listdir(str(d))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _size(io: FileIO, path: Path) -> int | None:
    try:
        fd = io.open(str(path), os.O_RDONLY)
    except OSError:
        return None
    try:
        return io.size(fd)
    finally:
        io.close(fd)


def _has_log(names: list[str]) -> bool:
    return HARDSTATE_NAME in names or any(parse_segment_name(n) for n in names)


def _log_dir(io: FileIO, root: Path) -> Path:
    for d in (root, root / "log"):
        if _has_log(_names(io, d)):
            return d
    return root


def _snapshot_paths(root: Path) -> list[Path]:
    out: list[Path] = []
    for d in (root, root / "snap", root / "snapshots"):
        out += sorted(d.glob("snapshot-*.snap"))
    return out


def _describe(e: Entry, decode: Callable[[bytes], Any] | None = None) -> dict[str, Any]:
    p = e.payload
    if p is None:
        payload: Any = None
    elif isinstance(p, bytes):
        if decode is not None:
            payload = decode(p)
        else:
            payload = p.decode("utf-8", "backslashreplace") if len(p) <= 64 else f"<{len(p)} bytes>"
    else:
        payload = {"voters": [sorted(c) for c in p.configs], "nodes": sorted(p.nodes)}
    return {"term": e.log_id.term, "index": e.log_id.index, "kind": e.kind.name, "payload": payload}


class NotADataDirectory(StorageError):
    """The directory holds no raftx log, hard state or snapshot."""


def _segment_info(seg: SegmentScan) -> dict[str, Any]:
    info: dict[str, Any] = {
        "file": seg.path.name, "sequence": seg.seq, "first_index": seg.first_index, "size": seg.size,
        "cluster": seg.header.cluster_name, "node_id": seg.header.node_id, "last_index": seg.last_index,
        "entries": seg.count, "valid_bytes": seg.end, "last_crc": seg.last_crc,
    }
    if seg.torn is not None:
        info["tail_error"] = f"torn write at offset {seg.end} ({seg.torn}), cut on the next open (R8)"
    return info


def inspect_dir(
    root: Path, *, verify: bool = False, dump: bool = False, io: FileIO | None = None,
    cluster_name: str | None = None, node_id: int | None = None,
    decode: Callable[[bytes], Any] | None = None,
) -> dict[str, Any]:
    """Everything `main` prints, as a dict; ``report["error"]`` is the first problem
    found (``{"file", "offset", "what"}``) or None.

    The log is checked by `raftx.storage.recovery.scan_log_dir`, exactly the
    validation `SegmentedLogStore.open` runs, so the error is what ``open`` would
    refuse; ``verify`` adds the snapshots' checksums. ``io`` reads the log (default:
    the real file system); ``decode`` turns a NORMAL entry's payload into what
    ``dump`` shows (default: the bytes as text). Raises `NotADataDirectory`.
    """
    io = io if io is not None else FileIO()
    log_dir = _log_dir(io, root)
    snapshots = _snapshot_paths(root)
    if not snapshots and not _has_log(_names(io, log_dir)):
        raise NotADataDirectory(f"{root} is not a raftx data directory (no log segments, hard state or snapshots)")
    report: dict[str, Any] = {"directory": str(root), "segments": [], "hard_state": None, "snapshots": [], "error": None}
    if dump:
        report["entries"] = []

    def problem(what: str, path: Path | str | None, offset: int | None) -> None:
        if report["error"] is None:
            report["error"] = {"file": None if path is None else str(path), "offset": offset, "what": what}

    scan = LogScan(log_dir, None)
    try:
        scan_log_dir(io, log_dir, cluster_name=cluster_name, node_id=node_id, into=scan)
    except StorageCorrupted as exc:
        problem(str(exc), exc.path, exc.offset)
    except StorageError as exc:  # a lost file
        problem(str(exc), log_dir, None)
    h = scan.hard
    if h is not None:
        v = h.vote
        report["hard_state"] = {
            "cluster": h.cluster_name, "node_id": h.node_id,
            "vote": None if v is None else {"term": v.term, "node_id": v.node_id, "committed": v.committed},
            "committed": log_id_to_list(h.committed), "purged": log_id_to_list(h.purged),
        }
    for seg in scan.segments:
        report["segments"].append(_segment_info(seg))
    listed = {s.path.name for s in scan.segments}
    purged = {Path(p).name for p in scan.purged_files}
    for name in sorted(_names(io, log_dir)):  # purge leftovers, and what a failed scan did not reach
        parsed = parse_segment_name(name)
        if parsed is not None and name not in listed:
            note = "left by an interrupted purge, deleted on the next open" if name in purged else "not validated"
            report["segments"].append({"file": name, "sequence": parsed[0], "first_index": parsed[1],
                                       "size": _size(io, log_dir / name), "tail_error": note})
    report["segments"].sort(key=lambda info: info["sequence"])
    for seg in scan.segments:
        if dump and seg.count:
            data = io.read_file(str(seg.path))[HEADER_SIZE : seg.end]
            report["entries"] += [_describe(Entry.from_record(*r), decode) for r in _core.codec.decode_entries(data, seg.first_index)]

    for path in snapshots:
        try:
            snap = StoredSnapshot.read_header(path)
            if verify:
                snap.verify()
            report["snapshots"].append({
                "file": str(path), "last_log_id": log_id_to_list(snap.meta.last_log_id),
                "membership_log_id": log_id_to_list(snap.meta.last_membership.log_id),
                "snapshot_id": snap.meta.snapshot_id, "data_bytes": snap.data_size,
            })
        except StorageCorrupted as exc:
            report["snapshots"].append({"file": str(path), "error": str(exc)})
            problem(str(exc), exc.path or path, exc.offset)
    return report


def _print_text(report: dict[str, Any], out: TextIO, verify: bool) -> None:
    w = out.write
    w(f"data directory: {report['directory']}\n")
    h = report["hard_state"]
    if h is None:
        w("hard state: none\n")
    else:
        w(f"cluster {h['cluster']!r} node {h['node_id']}\n")
        w(f"vote: {h['vote']}\ncommitted: {h['committed']}\npurged: {h['purged']}\n")
    w(f"segments: {len(report['segments'])}\n")
    for s in report["segments"]:
        tail = f"  [{s['tail_error']}]" if "tail_error" in s else ""
        w(f"  #{s['sequence']:<6} {s['first_index']}..{s.get('last_index', '?')}  {s['size']} bytes  {s['file']}{tail}\n")
    w(f"snapshots: {len(report['snapshots'])}\n")
    for snap in report["snapshots"]:
        if "error" in snap:
            w(f"  {snap['file']}: {snap['error']}\n")
        else:
            w(f"  last_log_id={snap['last_log_id']} {snap['data_bytes']} bytes  {snap['file']}\n")
    for e in report.get("entries", []):
        p = e["payload"]
        if isinstance(p, dict) and "op" in p:  # --decode kv
            p = " ".join(f"{k}={v!r}" if k != "op" else str(v) for k, v in p.items())
        w(f"{e['index']}\tterm {e['term']}\t{e['kind']}\t{p}\n")
    err = report["error"]
    if err is not None:
        w(f"CORRUPT: {err['file']} at offset {err['offset']}: {err['what']}\n")
    elif verify:
        w("verify: the log passes every check SegmentedLogStore.open makes; snapshot checksums OK\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raftx inspect``; returns the exit code (see module doc)."""
    parser = argparse.ArgumentParser(prog="raftx inspect", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--verify", action="store_true", help="check every checksum; exit 1 on the first problem")
    parser.add_argument("--dump", action="store_true", help="print every entry")
    parser.add_argument("--decode", choices=("raw", "kv"), default="raw",
                        help="how --dump shows entry payloads: raw text, or kv: the key-value service's "
                             "commands (op, key, value)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--cluster-name", help="the cluster name the node opens the log with (checked like open does)")
    parser.add_argument("--node-id", type=int, help="the node id the node opens the log with (checked like open does)")
    try:
        args = cli_config.parse_args(parser, argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.data_dir.is_dir():
        sys.stderr.write(f"raftx inspect: {args.data_dir} is not a directory\n")
        return 2
    try:
        decode: Callable[[bytes], Any] | None = None
        if args.decode == "kv":
            from raftx.kv.commands import describe
            decode = describe
        report = inspect_dir(args.data_dir, verify=args.verify, dump=args.dump,
                             cluster_name=args.cluster_name, node_id=args.node_id, decode=decode)
    except (OSError, NotADataDirectory) as exc:
        sys.stderr.write(f"raftx inspect: {exc}\n")
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(report, sys.stdout, args.verify)
    return 1 if report["error"] is not None else 0
