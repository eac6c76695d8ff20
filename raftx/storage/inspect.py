"""``raftx inspect DATA_DIR [--verify] [--dump] [--json]``: look inside a data directory.

Reads files only (never opens the store for writing, never repairs anything):

* segments of a `SegmentedLogStore` (sequence, index range, size), found in
  ``DATA_DIR`` or ``DATA_DIR/log``;
* the hard state (vote, committed, purge point);
* snapshot files (``*.snap``) in ``DATA_DIR``, ``DATA_DIR/snap`` or
  ``DATA_DIR/snapshots``.

``--verify`` checks every header, record CRC, index continuity and snapshot checksum
and exits 1 naming the first problem (file, offset); ``--dump`` prints every entry;
``--json`` prints one JSON document instead of text. Exit codes: 0 fine, 1 corrupt,
2 bad usage or unreadable directory.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from raftx import _core
from raftx.errors import StorageCorrupted, StorageError
from raftx.storage.segment import HARDSTATE_NAME, HEADER_SIZE, HardState, SegmentHeader, parse_segment_name
from raftx.storage.segmented import _is_torn_tail
from raftx.storage.snapshot import StoredSnapshot, log_id_to_list
from raftx.types import Entry

__all__ = ["main", "inspect_dir"]


def _log_dir(root: Path) -> Path:
    for d in (root, root / "log"):
        if any(parse_segment_name(p.name) for p in d.glob("*.seg")) or (d / HARDSTATE_NAME).exists():
            return d
    return root


def _snapshot_paths(root: Path) -> list[Path]:
    out: list[Path] = []
    for d in (root, root / "snap", root / "snapshots"):
        out += sorted(d.glob("snapshot-*.snap"))
    return out


def _describe(e: Entry) -> dict[str, Any]:
    p = e.payload
    if p is None:
        payload: Any = None
    elif isinstance(p, bytes):
        payload = p.decode("utf-8", "backslashreplace") if len(p) <= 64 else f"<{len(p)} bytes>"
    else:
        payload = {"voters": [sorted(c) for c in p.configs], "nodes": sorted(p.nodes)}
    return {"term": e.log_id.leader_id, "index": e.log_id.index, "kind": e.kind.name, "payload": payload}


def inspect_dir(root: Path, *, verify: bool = False, dump: bool = False) -> dict[str, Any]:
    """Everything `main` prints, as a dict; ``report["error"]`` is the first problem
    found by ``verify`` (``{"file", "offset", "what"}``) or None."""
    log_dir = _log_dir(root)
    report: dict[str, Any] = {"directory": str(root), "segments": [], "hard_state": None, "snapshots": [], "error": None}
    if dump:
        report["entries"] = []

    def problem(what: str, path: Path | str | None, offset: int | None) -> None:
        if report["error"] is None:
            report["error"] = {"file": None if path is None else str(path), "offset": offset, "what": what}

    hard_path = log_dir / HARDSTATE_NAME
    if hard_path.exists():
        try:
            h = HardState.decode(hard_path.read_bytes(), str(hard_path))
            v = h.vote
            report["hard_state"] = {
                "cluster": h.cluster_name, "node_id": h.node_id,
                "vote": None if v is None else {"term": v.term, "node_id": v.node_id, "committed": v.committed},
                "committed": log_id_to_list(h.committed), "purged": log_id_to_list(h.purged),
            }
        except StorageCorrupted as exc:
            problem(str(exc), hard_path, exc.offset)

    segs: list[tuple[tuple[int, int], Path]] = []
    for p in log_dir.glob("*.seg"):
        parsed = parse_segment_name(p.name)
        if parsed is not None:
            segs.append((parsed, p))
    segs.sort()
    prev: dict[str, Any] | None = None
    for (seq, first), path in segs:
        info: dict[str, Any] = {"file": path.name, "sequence": seq, "first_index": first, "size": path.stat().st_size}
        report["segments"].append(info)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                hdr = SegmentHeader.decode(f.read(HEADER_SIZE), str(path))
                info.update(cluster=hdr.cluster_name, node_id=hdr.node_id)
                if prev is not None and verify:
                    if seq != prev["sequence"] + 1:
                        problem(f"sequence gap: {prev['sequence']} then {seq}", path, 0)
                    if first != prev["last_index"] + 1:
                        problem(f"index gap: previous segment ends at {prev['last_index']}", path, 0)
                    if hdr.prev_checksum != prev["last_crc"]:
                        problem("checksum chain broken (prev_checksum)", path, 40)
                count, last_crc, end, err, torn = 0, hdr.prev_checksum, HEADER_SIZE, None, False
                if size > HEADER_SIZE:
                    with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as mm:
                        scan = _core.codec.scan_records(memoryview(mm), HEADER_SIZE, first)
                        count, end, err = scan.count, scan.end, scan.error
                        torn = err is not None and path == segs[-1][1] and _is_torn_tail(mm, end, size, scan.error_kind)
                        if count:
                            last_crc = int.from_bytes(mm[scan.offsets[-1] + 4 : scan.offsets[-1] + 8], "little")
                        if dump:
                            data = bytes(mm[HEADER_SIZE:end])
                if dump and count:
                    report["entries"] += [
                        _describe(Entry.from_record(*r)) for r in _core.codec.decode_entries(data, first)
                    ]
                info.update(last_index=first + count - 1, entries=count, valid_bytes=end, last_crc=last_crc)
                if err is not None and torn:
                    info["tail_error"] = f"torn tail at offset {end}, cut on the next open (R8)"
                elif err is not None:
                    info["tail_error"] = f"{err}"
                    if verify:
                        problem(f"bad record: {err}", path, end)
        except StorageCorrupted as exc:
            problem(str(exc), path, exc.offset)
            info.update(last_index=first - 1, last_crc=0)
        prev = info

    for path in _snapshot_paths(root):
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
        w(f"{e['index']}\tterm {e['term']}\t{e['kind']}\t{e['payload']}\n")
    err = report["error"]
    if err is not None:
        w(f"CORRUPT: {err['file']} at offset {err['offset']}: {err['what']}\n")
    elif verify:
        w("verify: all checksums OK\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``raftx inspect``; returns the exit code (see module doc)."""
    parser = argparse.ArgumentParser(prog="raftx inspect", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--verify", action="store_true", help="check every checksum; exit 1 on the first problem")
    parser.add_argument("--dump", action="store_true", help="print every entry")
    parser.add_argument("--json", action="store_true", help="print JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.data_dir.is_dir():
        sys.stderr.write(f"raftx inspect: {args.data_dir} is not a directory\n")
        return 2
    try:
        report = inspect_dir(args.data_dir, verify=args.verify, dump=args.dump)
    except (OSError, StorageError) as exc:
        sys.stderr.write(f"raftx inspect: {exc}\n")
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(report, sys.stdout, args.verify)
    return 1 if report["error"] is not None else 0
