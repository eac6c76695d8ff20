"""Run the hot-path benchmarks and print compiled-vs-pure ratios measured in one run.

    python benchmarks/report.py                   # every benchmarks/bench_*.py
    python benchmarks/report.py bench_codec.py    # one file
    python benchmarks/report.py --json out.json   # keep pytest-benchmark's raw figures

A benchmark that sets ``benchmark.extra_info["units"] = N`` (items per call) is also
reported in items per second. Pairs are matched by name with ``[c]`` / ``[py]`` ids.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(files: list[str], json_path: Path) -> None:
    paths = [str(HERE / f) for f in files] if files else [str(HERE)]
    cmd = [sys.executable, "-m", "pytest", "-q", "--benchmark-only", f"--benchmark-json={json_path}",
           "-p", "no:cacheprovider", *paths]
    subprocess.run(cmd, check=True, cwd=HERE.parent)


def table(data: dict) -> str:
    rows: dict[str, dict[str, tuple[float, float | None]]] = {}
    for b in data["benchmarks"]:
        m = re.search(r"\b(c|py)\b", b.get("param") or "")
        impl = m.group(1) if m else "-"
        key = re.sub(r"(?<=[\[-])(c|py)(?=[\]-])", "*", b["name"])
        ops = b["stats"]["ops"]
        units = b.get("extra_info", {}).get("units")
        rows.setdefault(key, {})[impl] = (ops, ops * units if units else None)
    lines = [f"{'benchmark':<58}{'c items/s':>16}{'py items/s':>16}{'c / py':>9}"]
    for key in sorted(rows):
        r = rows[key]
        c, py = r.get("c"), r.get("py")

        def fmt(x: tuple[float, float | None] | None) -> str:
            return "-" if x is None else f"{(x[1] if x[1] is not None else x[0]):,.0f}"

        ratio = f"{c[0] / py[0]:.1f}x" if c and py else "-"
        lines.append(f"{key:<58}{fmt(c):>16}{fmt(py):>16}{ratio:>9}")
    lines.append("(items/s = calls/s x extra_info['units'] where a benchmark sets it, else calls/s)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="benchmark files under benchmarks/ (default: all)")
    parser.add_argument("--json", type=Path, help="also write pytest-benchmark's JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.json or Path(tmp) / "bench.json"
        run(args.files, out)
        data = json.loads(out.read_text())
    impl = os.environ.get("RAFTX_NO_EXTENSIONS") == "1" and "py only" or "c and py"
    print(f"\nraftx hot paths ({impl}); machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
          f"python {data['machine_info'].get('python_version')}")
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
