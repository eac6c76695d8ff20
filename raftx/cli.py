"""The ``raftx`` command line.

``raftx`` (or ``raftx info``) prints the version, the hot-path implementation in use and
a quick self-benchmark of the compiled twins against the pure ones. ``raftx inspect``
examines a data directory. Later subcommands (demo, bench, serve, status) plug into
`build_parser` the same way.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

import raftx
from raftx import _core

__all__ = ["main", "build_parser"]


def _rate(fn: Callable[[], Any], units: int, min_seconds: float = 0.2) -> float:
    """Units per second of ``fn`` (which processes ``units`` units), best of a few runs."""
    fn()  # warm up
    best = float("inf")
    deadline = time.perf_counter() + min_seconds
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return units / best if best > 0 else float("inf")


def self_benchmark(impls: list[str]) -> dict[str, dict[str, float]]:
    """Operations per second of the hot paths, per implementation, measured in one run."""
    entries = [(3, 1000 + i, 1, bytes(100)) for i in range(256)]
    matched = [10, 30, 20, 50, 40]
    results: dict[str, dict[str, float]] = {}
    for impl in impls:
        m = _core.load(impl)
        codec, quorum, logindex = m["codec"], m["quorum"], m["logindex"]
        buf = codec.encode_entries(entries)
        index = logindex.LogIndex()
        n = 100_000
        index.extend(0, [1 + i // 1000 for i in range(n)], 0, [i * 128 for i in range(n)], [128] * n)
        probes = [(i * 7919) % n for i in range(1000)]
        results[impl] = {
            "encode_entries/s": _rate(lambda: codec.encode_entries(entries), len(entries)),
            "decode_entries/s": _rate(lambda: codec.decode_entries(buf), len(entries)),
            # map() keeps the interpreter's loop overhead out of the per-call figure.
            "committed_index/s": _rate(lambda: list(map(quorum.committed_index, repeat(matched, 1000))), 1000),
            "term_at/s": _rate(lambda: list(map(index.term_at, probes)), len(probes)),
            "locate/s": _rate(lambda: list(map(index.locate, probes)), len(probes)),
        }
    return results


def cmd_info(args: argparse.Namespace) -> int:
    impls = ["c", "py"] if _core.IMPLEMENTATION == "c" else ["py"]
    info: dict[str, Any] = {
        "version": raftx.__version__,
        "implementation": _core.IMPLEMENTATION,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if not args.no_bench:
        info["benchmark"] = self_benchmark(impls)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write(f"raftx {info['version']}  implementation={info['implementation']}  "
              f"python={info['python']}  {info['platform']}\n")
    if _core.IMPLEMENTATION != "c":
        out.write("compiled hot paths not in use (RAFTX_NO_EXTENSIONS=1 or not built)\n")
    bench = info.get("benchmark")
    if bench:
        out.write(f"\n{'hot path':<20}" + "".join(f"{impl:>16}" for impl in impls)
                  + ("       c / py" if len(impls) == 2 else "") + "\n")
        for key in bench[impls[0]]:
            row = f"{key:<20}" + "".join(f"{bench[impl][key]:>16,.0f}" for impl in impls)
            if len(impls) == 2:
                row += f"{bench['c'][key] / bench['py'][key]:>12.1f}x"
            out.write(row + "\n")
    return 0


def _inspect_main(argv: list[str]) -> int:
    from raftx.storage import inspect

    return inspect.main(argv)


# Subcommands with their own argument parsers: everything after the name is theirs.
DELEGATED: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "inspect": (_inspect_main, "examine a data directory (segments, vote, snapshots); --verify, --dump"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftx",
        description="raftx: Raft consensus for Python. Run without a command for version and a self-benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"raftx {raftx.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="version, implementation in use and a quick self-benchmark")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--no-bench", action="store_true", help="skip the self-benchmark")
    info.set_defaults(func=cmd_info)

    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][0](argv[1:])
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["info", *argv]  # bare `raftx [--json]` means `raftx info`
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
