"""The comparisons and the human report of ``raftx bench``.

Each system compared (``pysyncobj``, ``etcd``) gets the raftx / other ratio of
writes/s at every in-flight level both ran, and each raftx run's best level against
the other's best. Against etcd also one write at a time: raftx's p50 / p99 at
in-flight 1 over etcd's, next to the physical floor measured in the same run (one
fdatasync plus one loopback round trip). And one write at a time against the Python
skeleton of a commit measured in the same run (`raftx.bench.skeleton`): what raftx
adds over the least a Python implementation pays on this machine.
"""

from __future__ import annotations

from typing import Any, TextIO

from raftx.bench.stats import print_table

__all__ = ["BATCH_PREFIX", "batch_key", "compare", "latency_vs", "print_report", "run_keys", "run_title",
           "skeleton_vs"]

TITLES = {"raftx_in_process": "raftx, load inside the leader (client_write)",
          "raftx_kvclient": "raftx, load through KVClient from another process"}
BATCH_PREFIX = "raftx_in_process_batch"
NAMES = {"pysyncobj": "PySyncObj", "etcd": "etcd"}


def batch_key(batch: int) -> str:
    """The JSON key of the in-process run with ``client_write_many`` batches of ``batch``."""
    return "raftx_in_process" if batch == 1 else f"{BATCH_PREFIX}{batch}"


def run_title(key: str) -> str:
    """The table title of the run stored under ``key``."""
    if key.startswith(BATCH_PREFIX):
        return f"raftx, load inside the leader, client_write_many batches of {key.removeprefix(BATCH_PREFIX)}"
    return TITLES[key]


def run_keys(out: dict[str, Any]) -> list[str]:
    """The raftx runs present in ``out``, in report order (unbatched, batches by size, KVClient)."""
    batched = sorted((k for k in out if k.startswith(BATCH_PREFIX)), key=lambda k: int(k.removeprefix(BATCH_PREFIX)))
    return [k for k in ("raftx_in_process", *batched, "raftx_kvclient") if k in out]


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, field: str = "writes_per_s") -> float | None:
    if not a or not b or not b[field]:
        return None
    return a[field] / b[field]  # type: ignore[no-any-return]


def _level_at(levels: list[dict[str, Any]], inflight: int) -> dict[str, Any] | None:
    """The level with ``inflight`` writes outstanding, if any (batched runs may have none)."""
    return next((lv for lv in levels if lv["inflight"] == inflight), None)


def _best_level(levels: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(levels, key=lambda lv: lv["writes_per_s"], default=None)


def compare(out: dict[str, Any], other: str) -> dict[str, Any]:
    """``ratios``: per raftx run, raftx / ``other`` writes/s at each of ``other``'s levels
    (None where raftx has no such level); ``best``: each run's best level against
    ``other``'s best (``ratio_to_<other>_best``)."""
    levels = out[other]["levels"]
    ratios = {key: [_ratio(_level_at(out[key]["levels"], b["inflight"]), b) for b in levels]
              for key in run_keys(out)}
    ob = _best_level(levels)
    best: dict[str, Any] = {other: None if ob is None else {"inflight": ob["inflight"],
                                                             "writes_per_s": ob["writes_per_s"]}}
    for key in run_keys(out):
        lv = _best_level(out[key]["levels"])
        best[key] = None if lv is None else {"inflight": lv["inflight"], "batch": out[key]["batch"],
                                             "writes_per_s": lv["writes_per_s"],
                                             f"ratio_to_{other}_best": _ratio(lv, ob)}
    return {"ratios": ratios, "best": best}


def latency_vs(out: dict[str, Any], other: str) -> dict[str, Any]:
    """One write at a time (in-flight 1): p50 / p99 of ``other`` and of each raftx run
    with such a level, their ratios to ``other``'s, and the floor (one fdatasync + one
    loopback round trip, ms)."""
    floor = 1e3 / out["fdatasync_per_s"] + out["loopback_rtt_us"] / 1e3
    base = _level_at(out[other]["levels"], 1)
    doc: dict[str, Any] = {"floor_ms": floor, other: None if base is None else
                           {"p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"]}}
    for key in run_keys(out):
        lv = _level_at(out[key]["levels"], 1)
        if lv is not None and lv.get("batch", 1) == 1:
            doc[key] = {"p50_ms": lv["p50_ms"], "p99_ms": lv["p99_ms"],
                        "p50_ratio": _ratio(lv, base, "p50_ms"), "p99_ratio": _ratio(lv, base, "p99_ms"),
                        "p50_over_floor": lv["p50_ms"] / floor}
    return doc


def skeleton_vs(out: dict[str, Any]) -> dict[str, Any]:
    """Each raftx run's in-flight-1 p50 / p99 over the skeleton's (`raftx.bench.skeleton`):
    the in-process run against the skeleton's leader, KVClient against its client."""
    sk = out["skeleton"]
    doc: dict[str, Any] = {}
    for key in run_keys(out):
        lv = _level_at(out[key]["levels"], 1)
        if lv is not None and lv.get("batch", 1) == 1:
            base = sk["client" if key == "raftx_kvclient" else "leader"]
            doc[key] = {"p50_ms": lv["p50_ms"], "p99_ms": lv["p99_ms"], "skeleton_p50_ms": base["p50_ms"],
                        "skeleton_p99_ms": base["p99_ms"], "p50_ratio": _ratio(lv, base, "p50_ms"),
                        "p99_ratio": _ratio(lv, base, "p99_ms")}
    return doc


def _print_skeleton(out: dict[str, Any], stream: TextIO) -> None:
    sk = out["skeleton"]
    stream.write(f"\none write at a time against the Python skeleton of a commit (raftx.bench.skeleton: 3 processes, "
                 f"two fdatasyncs in parallel, one round trip, no raftx): in the leader p50 "
                 f"{sk['leader']['p50_ms']:.2f} ms, p99 {sk['leader']['p99_ms']:.2f} ms; from a client process "
                 f"p50 {sk['client']['p50_ms']:.2f} ms, p99 {sk['client']['p99_ms']:.2f} ms\n")
    for key, r in out["skeleton_compare"].items():
        stream.write(f"  {run_title(key)}: p50 {r['p50_ms']:.2f} ms = {_x(r['p50_ratio'])} the skeleton's, "
                     f"p99 {r['p99_ms']:.2f} ms = {_x(r['p99_ratio'])}\n")


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _print_comparison(out: dict[str, Any], other: str, keys: list[str], stream: TextIO) -> None:
    if not keys:  # --client none: nothing of raftx's to compare
        return
    name = NAMES[other]
    cmp = out[f"{other}_compare"] if other != "pysyncobj" else {"ratios": out["ratios"], "best": out["best"]}
    stream.write(f"\nratio of writes/s, raftx / {name} (same in-flight level)\n")
    names = [k.removeprefix("raftx_").replace("in_process_batch", "batch") for k in keys]
    stream.write(f"{'in-flight':>10}" + "".join(f" {n:>12}" for n in names) + "\n")
    for i, lvl in enumerate(out[other]["levels"]):
        stream.write(f"{lvl['inflight']:>10}" + "".join(f" {_x(cmp['ratios'][k][i]):>12}" for k in keys) + "\n")
    best = cmp["best"]
    if best[other] is not None:
        stream.write(f"\nbest level of each run vs {name}'s best ({best[other]['writes_per_s']:,.0f} "
                     f"writes/s at in-flight {best[other]['inflight']})\n")
        for key in keys:
            b = best[key]
            if b is not None:
                stream.write(f"  {run_title(key)}: {b['writes_per_s']:,.0f} writes/s at in-flight "
                             f"{b['inflight']}: {_x(b[f'ratio_to_{other}_best'])}\n")


def _print_latency(lat: dict[str, Any], other: str, keys: list[str], stream: TextIO) -> None:
    base = lat[other]
    if base is None:
        return
    stream.write(f"\none write at a time (in-flight 1): {NAMES[other]} p50 {base['p50_ms']:.2f} ms, "
                 f"p99 {base['p99_ms']:.2f} ms; floor (fdatasync + loopback RTT) {lat['floor_ms']:.2f} ms\n")
    for key in keys:
        r = lat.get(key)
        if r is not None:
            stream.write(f"  {run_title(key)}: p50 {r['p50_ms']:.2f} ms ({_x(r['p50_ratio'])} of {NAMES[other]}'s, "
                         f"{r['p50_over_floor']:.1f}x the floor), p99 {r['p99_ms']:.2f} ms "
                         f"({_x(r['p99_ratio'])})\n")


def print_report(out: dict[str, Any], stream: TextIO) -> None:
    """The human report: machine limits, one table per run, ratios."""
    m = out.get("machine", {})
    stream.write(f"\nmachine: {m.get('cpu_model', '?')}, {m.get('cpu_count', '?')} cores; fdatasync "
                 f"{out['fdatasync_per_s']:,.0f}/s ({out['value_bytes']}-byte appends), "
                 f"loopback RTT {out['loopback_rtt_us']:.0f} us; python {out['python']}, "
                 f"_core={out['implementation']}, loop={out['loop']}, {out['nodes']} nodes"
                 + (f", gc gen0 {out['gc_gen0']:,}" if out.get("gc_gen0") else "")
                 + (f"; raftx {m['raftx_commit'][:12]}" if m.get("raftx_commit") else "") + "\n")
    durable = "fsync on" if out["fsync"] else "NO fsync"
    keys = run_keys(out)
    for key in keys:
        print_table(f"{run_title(key)}, {durable}", out[key]["levels"], stream)
    if out.get("skeleton_compare"):
        _print_skeleton(out, stream)
    if "pysyncobj" in out:
        ps = out["pysyncobj"]
        print_table(f"{ps['library']}, load inside the leader, no fsync"
                    + (" (mmap journal)" if ps["journal"] else " (in-memory log)"), ps["levels"], stream)
        _print_comparison(out, "pysyncobj", keys, stream)
    if "etcd" in out and "levels" in out["etcd"]:
        et = out["etcd"]
        print_table(f"etcd {et['version']} ({et['nodes']} members, WAL fsync on), load through {et['client']} "
                    f"from another process", et["levels"], stream)
        _print_comparison(out, "etcd", keys, stream)
        _print_latency(out["etcd_latency"], "etcd", keys, stream)
    elif "etcd" in out:
        stream.write(f"\netcd: not run: {out['etcd']['skipped']}\n")
