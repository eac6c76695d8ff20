"""PNG charts of a ``raftx bench --sweep`` result (``--plot DIR``; matplotlib, ``bench`` extra).

`plot_sweep` writes, for the parts the sweep ran:

* ``value-size.png``: writes/s and MB/s per value size, with the disk's bandwidth
  measured in the same run (and a third of it: each of 3 nodes writes its own log);
* ``cluster-size.png``: writes/s at the sweep's in-flight level and one-write latency
  per cluster size;
* ``state-and-log.png``: the state's snapshot build / transfer / install and restart
  times, and the long log's open time, with memory per key and index bytes per entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raftx.errors import RaftError

__all__ = ["MatplotlibMissing", "plot_sweep", "require_matplotlib"]


class MatplotlibMissing(RaftError):
    """``--plot`` without matplotlib installed."""


def require_matplotlib() -> None:
    """`MatplotlibMissing` (with how to install it) unless matplotlib imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MatplotlibMissing("--plot needs matplotlib: pip install 'raftx[bench]' (or: pip install matplotlib)") \
            from None


def _machine(out: dict[str, Any]) -> str:
    m = out["machine"]
    return (f"{m['cpu_model']}, {m['cpu_count']} cores; fdatasync {out['fdatasync_per_s']:,.0f}/s, "
            f"disk {out['disk_mb_per_s']:,.0f} MB/s, RTT {out['loopback_rtt_us']:.0f} µs")


def _size(n: int) -> str:
    return f"{n >> 10} KiB" if n >= 1024 else f"{n} B"


def _label_bars(ax: Any, values: list[float], fmt: str, levels: list[dict[str, Any]] | None = None) -> None:
    """Each bar's value above it; with ``levels``, also how many writes of that level failed
    (a level whose leader lost its leadership commits nothing more: say so, not just 0)."""
    for i, v in enumerate(values):
        text = fmt.format(v) if v == v else "-"  # NaN: no write completed
        failed = levels[i].get("failed", 0) if levels else 0
        if failed:
            kinds = ", ".join(sorted(levels[i].get("errors", {}))) if levels else ""
            text += f"\n{failed:,} failed ({kinds})"
        ax.annotate(text, (i, 0 if v != v else v), ha="center", va="bottom", fontsize=8)


def _save(plt: Any, fig: Any, path: Path, title: str, out: dict[str, Any]) -> Path:
    fig.suptitle(f"{title}\n{_machine(out)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sweep(out: dict[str, Any], directory: str | Path) -> list[Path]:
    """Write the charts of sweep result ``out`` into ``directory``; the files written."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    fsync = "fsync on" if out["fsync"] else "NO fsync"
    vs = out.get("value_sizes") or []
    if vs:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        labels = [_size(v["value_bytes"]) for v in vs]
        a.bar(labels, [v["writes_per_s"] for v in vs], color="tab:blue")
        _label_bars(a, [v["writes_per_s"] for v in vs], "{:,.0f}", vs)
        a.set_yscale("symlog", linthresh=100)  # a level with no write committed still has a bar (0)
        a.set_ylabel("writes/s")
        a.set_title("writes/s by value size")
        b.bar(labels, [v["mb_per_s"] for v in vs], color="tab:green", label="values committed")
        _label_bars(b, [v["mb_per_s"] for v in vs], "{:,.1f}", vs)
        b.axhline(out["disk_mb_per_s"], color="tab:red", linestyle="--", label="disk bandwidth")
        b.axhline(out["disk_mb_per_s"] / 3, color="tab:orange", linestyle=":", label="disk / 3 (one log per node)")
        b.set_ylabel("MB/s")
        b.set_title("MB/s by value size")
        b.legend(fontsize=8)
        written.append(_save(plt, fig, d / "value-size.png", f"3 nodes, client_write in the leader, {fsync}", out))
    cs = out.get("cluster_sizes") or []
    if cs:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        labels = [f"{c['nodes']} nodes" for c in cs]
        top = [max(c["levels"], key=lambda lv: lv["inflight"]) for c in cs]
        one = [min(c["levels"], key=lambda lv: lv["inflight"]) for c in cs]
        a.bar(labels, [lv["writes_per_s"] for lv in top], color="tab:blue")
        _label_bars(a, [lv["writes_per_s"] for lv in top], "{:,.0f}", top)
        a.set_ylabel("writes/s")
        a.set_title(f"writes/s at in-flight {top[0]['inflight']}")
        b.bar(labels, [lv["p50_ms"] for lv in one], color="tab:purple", label="p50")
        _label_bars(b, [lv["p50_ms"] for lv in one], "{:.2f}", one)
        b.scatter(labels, [lv["p99_ms"] for lv in one], color="black", zorder=3, label="p99")
        b.set_ylabel("ms")
        b.set_title(f"latency at in-flight {one[0]['inflight']}")
        b.legend(fontsize=8)
        written.append(_save(plt, fig, d / "cluster-size.png", f"100-byte values, client_write in the leader, {fsync}",
                             out))
    st, lg = out.get("state"), out.get("log")
    if st or lg:
        bars: list[tuple[str, float]] = []
        notes = []
        if st:
            k = f"{st['keys']:,} keys"
            bars += [(f"snapshot build\n({k})", st["snapshot_build_s"]),
                     ("snapshot transfer", st["snapshot_transfer_s"]), ("snapshot install", st["snapshot_install_s"]),
                     ("restart\n(kill -9)", st["restart_s"])]
            notes.append(f"{k}: snapshot {st['snapshot_bytes'] / 1e6:,.0f} MB, {st['state_bytes_per_key']:,.0f} B "
                         f"of memory per key")
        if lg:
            bars.append((f"open a log of\n{lg['entries']:,} entries", lg["open_s"]))
            notes.append(f"log index {lg['index_bytes_per_entry']:.1f} B per entry")
        fig, a = plt.subplots(figsize=(10, 4))
        a.bar([b[0] for b in bars], [b[1] for b in bars], color="tab:cyan")
        _label_bars(a, [b[1] for b in bars], "{:.2f} s")
        a.set_ylabel("seconds")
        a.set_title("; ".join(notes), fontsize=9)
        written.append(_save(plt, fig, d / "state-and-log.png", "state and log at scale, fsync on", out))
    return written
