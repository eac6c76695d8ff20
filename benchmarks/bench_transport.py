"""TCP transport on loopback: the stdlib asyncio loop and uvloop side by side in one run.

    python benchmarks/bench_transport.py             # table: p50 latency, calls/s, MB/s per loop
    python -m pytest benchmarks/bench_transport.py --benchmark-only   # pytest-benchmark figures

What is measured (client and server in one process and one loop, so both ends share
a core, as a co-located pair of nodes would on a 2-core machine):

* ``round_trip``: one small call (16-byte payload) waited for before the next: latency;
* ``pipelined``: 2,000 small calls in flight on one connection (window 256): calls/s;
* ``bulk_64k``: 64 KiB payloads, 64 in flight, echoed back: MB/s counted one way
  (request payload bytes per second; the same bytes also travel back).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run from a checkout without installing raftx
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from raftx.network import RpcClient, RpcServer  # noqa: E402

try:
    import uvloop
except ImportError:
    uvloop = None

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
if uvloop is not None:
    LOOPS["uvloop"] = uvloop.new_event_loop

SMALL = b"x" * 16
BULK = b"y" * 65536
PIPELINE = 2000
BULK_CALLS = 64


async def _echo(sender_id: int, method: str, payload: memoryview) -> bytes:
    return payload.tobytes() if method == "echo" else b"ok"


class Pair:
    """A server and a connected client on a private loop."""

    def __init__(self, loop_name: str) -> None:
        self.loop = LOOPS[loop_name]()
        self.server = RpcServer(_echo, cluster_name="bench", node_id=2)
        self.loop.run_until_complete(self.server.start())
        self.client = RpcClient("127.0.0.1", self.server.port, cluster_name="bench", node_id=1, target_id=2,
                                max_in_flight=256)
        self.run(self.client.call("ping"))

    def run(self, aw: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(aw)

    async def pipelined(self, n: int = PIPELINE, payload: bytes = SMALL, method: str = "ping") -> None:
        await asyncio.gather(*(self.client.call(method, payload) for _ in range(n)))

    def close(self) -> None:
        self.run(self.client.close())
        self.run(self.server.close())
        self.loop.close()


@pytest.fixture(params=list(LOOPS), scope="module")
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    p = Pair(request.param)
    yield p
    p.close()


def test_round_trip(benchmark: Any, pair: Pair) -> None:
    benchmark.pedantic(lambda: pair.run(pair.client.call("ping", SMALL)), rounds=2000, iterations=1)


def test_pipelined(benchmark: Any, pair: Pair) -> None:
    benchmark.extra_info["units"] = PIPELINE
    benchmark.pedantic(lambda: pair.run(pair.pipelined()), rounds=20, iterations=1)


def test_bulk_64k(benchmark: Any, pair: Pair) -> None:
    benchmark.extra_info["units"] = BULK_CALLS * len(BULK)  # bytes per round
    pair.client.window.max_count = BULK_CALLS
    benchmark.pedantic(lambda: pair.run(pair.pipelined(BULK_CALLS, BULK, "echo")), rounds=20, iterations=1)


# -- stand-alone table ------------------------------------------------------------------


async def _latencies(client: RpcClient, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.call("ping", SMALL)
        out.append(time.perf_counter() - t0)
    return out


def measure(loop_name: str, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` runs of each figure on one loop."""
    p = Pair(loop_name)
    try:
        lat = min(statistics.median(p.run(_latencies(p.client, 2000))) for _ in range(repeat))
        rates, mbs = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            p.run(p.pipelined(10 * PIPELINE))
            rates.append(10 * PIPELINE / (time.perf_counter() - t0))
            p.client.window.max_count = BULK_CALLS
            t0 = time.perf_counter()
            p.run(p.pipelined(8 * BULK_CALLS, BULK, "echo"))
            mbs.append(8 * BULK_CALLS * len(BULK) / (time.perf_counter() - t0) / 1e6)
            p.client.window.max_count = 256
        return {"p50_us": lat * 1e6, "calls_s": max(rates), "mb_s": max(mbs)}
    finally:
        p.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    args = parser.parse_args()
    results = {name: measure(name, args.repeat) for name in LOOPS}
    print(f"{'loop':<10}{'p50 round trip':>18}{'pipelined calls/s':>20}{'64 KiB MB/s':>14}")
    for name, r in results.items():
        print(f"{name:<10}{r['p50_us']:>15.1f} us{r['calls_s']:>20,.0f}{r['mb_s']:>14,.0f}")
    if len(results) == 2:
        a, u = results["asyncio"], results["uvloop"]
        print(f"{'uvloop/asyncio':<10}{a['p50_us'] / u['p50_us']:>15.2f}x {u['calls_s'] / a['calls_s']:>18.2f}x"
              f"{u['mb_s'] / a['mb_s']:>13.2f}x   (>1 = uvloop better)")


if __name__ == "__main__":
    main()
