"""Regenerate the codec golden vectors in ``tests/core/data/codec/`` from the pure twin.

The vectors pin raftx's byte format (``raftx._core.codec_py``, format version 1): both
twins must reproduce every ``*.bin`` file exactly and decode it back to the entries in
``manifest.json``. Run this only when the format deliberately changes (and bump
``FORMAT_VERSION``); then review the diff of the ``.bin`` files::

    python tools/gen_codec_golden.py [--check]

``--check`` compares instead of writing and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing raftx

from raftx import _core  # noqa: E402

OUT_DIR = ROOT / "tests" / "core" / "data" / "codec"
U64_MAX = 2**64 - 1

# name -> list of (term, index, kind, payload)
BATCHES: dict[str, list[tuple[int, int, int, bytes]]] = {
    "empty_batch": [],
    "single_normal": [(1, 1, 1, b"hello raftx")],
    "blank_then_normal": [(3, 10, 0, b""), (3, 11, 1, b"\x00\x01\x02\xff"), (4, 12, 1, b"")],
    "membership": [(7, 100, 2, b'{"voters":[[1,2,3]],"learners":[4]}')],
    "all_byte_values": [(5, 4096, 1, bytes(range(256)))],
    "max_term_and_index": [(U64_MAX, U64_MAX - 1, 1, b"x"), (U64_MAX, U64_MAX, 2, b"")],
    "index_zero": [(0, 0, 0, b""), (0, 1, 1, b"\x80" * 33)],
}

# name -> list of (frame_type, payload); each file is the frames laid end to end
FRAMES: dict[str, list[tuple[int, bytes]]] = {
    "frames_basic": [(0, b""), (1, b"ping"), (255, bytes(range(10)))],
}


def build() -> tuple[dict[str, bytes], dict[str, Any]]:
    """The golden files (name -> bytes) and the manifest describing them."""
    codec = _core.load("py")["codec"]
    files: dict[str, bytes] = {}
    manifest: dict[str, Any] = {"format_version": codec.FORMAT_VERSION, "batches": {}, "frames": {}}
    for name, entries in BATCHES.items():
        files[f"{name}.bin"] = codec.encode_entries(entries)
        manifest["batches"][name] = [[t, i, k, p.hex()] for t, i, k, p in entries]
    for name, frames in FRAMES.items():
        files[f"{name}.bin"] = b"".join(codec.encode_frame(t, p) for t, p in frames)
        manifest["frames"][name] = [[t, p.hex()] for t, p in frames]
    files["manifest.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    files, _ = build()
    if args.check:
        stale = [n for n, data in files.items() if not (OUT_DIR / n).is_file() or (OUT_DIR / n).read_bytes() != data]
        for n in stale:
            sys.stderr.write(f"golden vector differs: {OUT_DIR / n}\n")
        return 1 if stale else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for n, data in files.items():
        (OUT_DIR / n).write_bytes(data)
    sys.stdout.write(f"wrote {len(files)} files to {OUT_DIR}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
