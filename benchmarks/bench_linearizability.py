"""Benchmarks of the linearizability checker (pure Python; there is no compiled twin).

    python -m pytest benchmarks/bench_linearizability.py --benchmark-only -q

* the whole Jepsen etcd register set (102 histories with verdicts), and the kv
  histories (50 clients, partitioned by key), operations per second of history;
* the same register set with the model's ``read_only`` hint removed, side by side in
  the same run, which is what the "linearize reads eagerly" pruning is worth;
* parsing alone, for scale.

Each case asserts the verdicts so that a fast wrong checker cannot look good.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from raftx.testing.linearizability import (
    CAS_REGISTER,
    KV,
    Model,
    Operation,
    Verdict,
    check_operations,
    parse_jepsen_register_log,
    parse_kv_edn,
)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "linearizability"

pytestmark = pytest.mark.benchmark(group="linearizability")


def _load(name: str, parse: Any) -> list[tuple[list[Operation], Verdict]]:
    with open(DATA / name / "EXPECTED.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(parse(DATA / name / r["file"]), Verdict.OK if r["linearizable"] == "true" else Verdict.ILLEGAL)
            for r in rows]


JEPSEN = _load("jepsen-etcd", parse_jepsen_register_log)
KV_SET = _load("kv", parse_kv_edn)
NO_HINT = dataclasses.replace(CAS_REGISTER, read_only=None)


def _check_all(model: Model, histories: list[tuple[list[Operation], Verdict]]) -> int:
    steps = 0
    for ops, expected in histories:
        result = check_operations(model, ops)
        assert result.verdict is expected
        steps += result.steps
    return steps


def _units(benchmark: Any, histories: list[tuple[list[Operation], Verdict]]) -> None:
    """Operations per call, for benchmarks/report.py."""
    benchmark.extra_info["units"] = sum(len(ops) for ops, _ in histories)


@pytest.mark.parametrize("model", [CAS_REGISTER, NO_HINT], ids=["read_only-hint", "no-hint"])
def test_check_jepsen_register_set(benchmark: Any, model: Model) -> None:
    _units(benchmark, JEPSEN)
    steps = benchmark.pedantic(_check_all, args=(model, JEPSEN), rounds=3, iterations=1)
    benchmark.extra_info["model_steps"] = steps


def test_check_kv_set(benchmark: Any) -> None:
    _units(benchmark, KV_SET)
    steps = benchmark.pedantic(_check_all, args=(KV, KV_SET), rounds=3, iterations=1)
    benchmark.extra_info["model_steps"] = steps


def test_parse_jepsen_register_set(benchmark: Any) -> None:
    files = sorted((DATA / "jepsen-etcd").glob("*.log"))
    texts = [f.read_text() for f in files]
    _units(benchmark, JEPSEN)
    parsed = benchmark(lambda: [parse_jepsen_register_log(t) for t in texts])
    assert sum(map(len, parsed)) == sum(len(ops) for ops, _ in JEPSEN)
