"""The linearizability checker (`raftx.testing.linearizability`).

Three kinds of evidence:

* every history of the Porcupine / Jepsen data set agrees with its known verdict
  (one test per file of each ``EXPECTED.tsv``), and every "ok" verdict comes with a
  linearization that is replayed here independently;
* small hand-written histories for each rule (closed intervals, unknown outcomes,
  failed operations, partitions, the budget);
* property tests: histories cut from a real sequential execution are always "ok",
  and on small random histories the checker agrees with a brute-force oracle that
  tries every order.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import raftx.testing
from raftx.errors import HistoryError
from raftx.testing.linearizability import (
    CAS_REGISTER,
    KV,
    REGISTER,
    UNKNOWN,
    CheckResult,
    History,
    Model,
    Operation,
    Verdict,
    check_operations,
    parse_jepsen_register_log,
    parse_kv_edn,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "linearizability"
SETS = {  # directory -> (parser, model)
    "jepsen-etcd": (parse_jepsen_register_log, CAS_REGISTER),
    "kv": (parse_kv_edn, KV),
}
UNLISTED = {"jepsen-etcd/etcd_095.log"}  # the README says it has no verdict (it is empty)


def expected_rows() -> list[tuple[str, str, bool]]:
    """(set, file, linearizable) for every row of every EXPECTED.tsv."""
    rows = []
    for name in SETS:
        with open(DATA / name / "EXPECTED.tsv", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                assert row["linearizable"] in ("true", "false"), row
                rows.append((name, row["file"], row["linearizable"] == "true"))
    return rows


ROWS = expected_rows()


# -- helpers -------------------------------------------------------------------


def op(inp: Any, call: float, out: Any, ret: float, client: Any = 0) -> Operation:
    return Operation(client, inp, call, out, ret)


def replay(model: Model, ops: list[Operation]) -> list[Any]:
    """Independently check that ``ops`` (in this order) respect real time and the
    model; returns the states after each operation."""
    for i, a in enumerate(ops):
        for b in ops[i + 1:]:
            assert not b.return_time < a.call, f"{b} returned before {a} was called"
    state, states = model.init(), []
    for o in ops:
        legal, state = model.step(state, o.input, o.output)
        assert legal, f"{o} is not legal in the claimed order"
        states.append(state)
    return states


def assert_certified(model: Model, ops: list[Operation], result: CheckResult) -> None:
    """An "ok" verdict must carry a valid linearization of every operation with a
    finite return time (pending ones may be left out: they never happened)."""
    assert result.verdict is Verdict.OK
    seen = [o for part in result.linearization for o in part]
    assert len({id(o) for o in seen}) == len(seen)
    required = {id(o) for o in ops if not math.isinf(o.return_time)}
    assert required <= {id(o) for o in seen}
    for part in result.linearization:
        replay(model, part)


def brute_force(model: Model, ops: list[Operation]) -> bool:
    """The definition: some order of the finite operations plus some subset of the
    pending ones respects real time and the model."""
    finite = [o for o in ops if not math.isinf(o.return_time)]
    pending = [o for o in ops if math.isinf(o.return_time)]
    for k in range(len(pending) + 1):
        for extra in itertools.combinations(pending, k):
            for order in itertools.permutations(finite + list(extra)):
                if any(order[j].return_time < order[i].call
                       for i in range(len(order)) for j in range(i + 1, len(order))):
                    continue
                state, legal = model.init(), True
                for o in order:
                    legal, state = model.step(state, o.input, o.output)
                    if not legal:
                        break
                if legal:
                    return True
    return False


# -- the data set -----------------------------------------------------------------


def test_data_set_is_complete() -> None:
    """Every history file has a verdict (or is the documented exception), and the
    counts are those of the README (23 + 79 register histories, 3 + 3 kv)."""
    listed = {f"{name}/{file}" for name, file, _ in ROWS}
    present = {f"{p.parent.name}/{p.name}" for name in SETS for p in (DATA / name).iterdir()
               if p.name != "EXPECTED.tsv"}
    assert present - listed == UNLISTED
    assert listed <= present
    jepsen = [ok for name, _, ok in ROWS if name == "jepsen-etcd"]
    assert (jepsen.count(True), jepsen.count(False)) == (23, 79)
    kv = [ok for name, _, ok in ROWS if name == "kv"]
    assert (kv.count(True), kv.count(False)) == (3, 3)
    assert "MIT License" in (DATA / "README.md").read_text()


@pytest.mark.parametrize(("name", "file", "linearizable"), ROWS, ids=[f"{n}/{f}" for n, f, _ in ROWS])
def test_data_set_verdict(name: str, file: str, linearizable: bool) -> None:
    parse, model = SETS[name]
    ops = parse(DATA / name / file)
    assert ops, "empty history"
    result = check_operations(model, ops)
    assert result.verdict is (Verdict.OK if linearizable else Verdict.ILLEGAL), result.describe()
    if linearizable:
        assert_certified(model, ops, result)
    else:
        states = replay(model, result.longest_prefix)
        assert states == result.states
        assert len(result.longest_prefix) < len(result.operations)


def test_unlisted_history_is_empty() -> None:
    assert parse_jepsen_register_log(DATA / "jepsen-etcd" / "etcd_095.log") == []
    assert check_operations(CAS_REGISTER, []).verdict is Verdict.OK


# -- hand-written histories -------------------------------------------------------


def test_sequential_register() -> None:
    ops = [op(("write", 1), 0, None, 1), op(("read",), 2, 1, 3), op(("write", 2), 4, None, 5),
           op(("read",), 6, 2, 7)]
    result = check_operations(REGISTER, ops)
    assert_certified(REGISTER, ops, result)
    assert result.linearization == [ops]


def test_stale_read_is_illegal() -> None:
    ops = [op(("write", 1), 0, None, 1), op(("write", 2), 2, None, 3), op(("read",), 4, 1, 5)]
    result = check_operations(REGISTER, ops)
    assert result.verdict is Verdict.ILLEGAL
    assert result.longest_prefix == ops[:2]
    assert result.states == [1, 2]
    assert "read() -> 1" in result.describe()


def test_read_of_initial_value() -> None:
    assert check_operations(REGISTER, [op(("read",), 0, None, 1)]).ok
    assert not check_operations(REGISTER, [op(("read",), 0, 7, 1)]).ok


def test_concurrent_read_may_see_either_value() -> None:
    for seen in (None, 1):
        ops = [op(("write", 1), 0, None, 10), op(("read",), 2, seen, 3)]
        assert_certified(REGISTER, ops, check_operations(REGISTER, ops))
    ops = [op(("write", 1), 0, None, 10), op(("read",), 2, 2, 3)]
    assert check_operations(REGISTER, ops).verdict is Verdict.ILLEGAL


def test_intervals_are_closed() -> None:
    """A read called at the very instant a write returns is concurrent with it
    (calls sort before returns at equal times), so it may still see the old value."""
    ops = [op(("write", 1), 0, None, 5), op(("read",), 5, None, 6)]
    assert check_operations(REGISTER, ops).ok
    ops = [op(("write", 1), 0, None, 5), op(("read",), 6, None, 7)]
    assert check_operations(REGISTER, ops).verdict is Verdict.ILLEGAL


def test_instantaneous_operations() -> None:
    ops = [op(("write", 1), 3, None, 3), op(("read",), 3, None, 3), op(("read",), 3, 1, 3)]
    assert check_operations(REGISTER, ops).ok
    ops = [op(("write", 1), 3, None, 3), op(("read",), 4, None, 4)]
    assert not check_operations(REGISTER, ops).ok


def test_reads_must_not_go_back_in_time() -> None:
    """Two sequential reads concurrent with a write: new then old is illegal."""
    ops = [op(("write", 1), 0, None, 10), op(("read",), 1, 1, 2), op(("read",), 3, None, 4)]
    assert check_operations(REGISTER, ops).verdict is Verdict.ILLEGAL
    ops = [op(("write", 1), 0, None, 10), op(("read",), 1, None, 2), op(("read",), 3, 1, 4)]
    assert check_operations(REGISTER, ops).ok


def test_unknown_write_makes_history_linearizable() -> None:
    """A read of 2 is explained only by the write whose outcome was never seen."""
    base = [op(("write", 1), 0, None, 1), op(("read",), 5, 2, 6)]
    assert check_operations(REGISTER, base).verdict is Verdict.ILLEGAL
    pending = op(("write", 2), 2, UNKNOWN, math.inf)
    ops = base + [pending]
    result = check_operations(REGISTER, ops)
    assert_certified(REGISTER, ops, result)
    assert pending in result.linearization[0]


def test_unknown_write_may_never_happen() -> None:
    ops = [op(("write", 1), 0, None, 1), op(("write", 2), 2, UNKNOWN, math.inf),
           op(("read",), 3, 1, 4), op(("read",), 100, 1, 101)]
    result = check_operations(REGISTER, ops)
    assert_certified(REGISTER, ops, result)


def test_unknown_write_not_before_its_call() -> None:
    ops = [op(("read",), 0, 2, 1), op(("write", 2), 2, UNKNOWN, math.inf)]
    assert check_operations(REGISTER, ops).verdict is Verdict.ILLEGAL


def test_unknown_write_takes_effect_once() -> None:
    """Once the pending write of 2 is seen, the old 1 cannot come back."""
    ops = [op(("write", 1), 0, None, 1), op(("write", 2), 2, UNKNOWN, math.inf),
           op(("read",), 3, 2, 4), op(("read",), 5, 1, 6)]
    assert check_operations(REGISTER, ops).verdict is Verdict.ILLEGAL


def test_unknown_read_result_accepts_anything() -> None:
    ops = [op(("write", 1), 0, None, 1), op(("read",), 2, UNKNOWN, 3)]
    assert check_operations(REGISTER, ops).ok


def test_unknown_cas_outcome() -> None:
    """A timed-out cas may have swapped (explains the read of 3) or not."""
    swapped = [op(("write", 1), 0, None, 1), op(("cas", 1, 3), 2, UNKNOWN, math.inf),
               op(("read",), 4, 3, 5)]
    assert check_operations(CAS_REGISTER, swapped).ok
    not_swapped = swapped[:2] + [op(("read",), 4, 1, 5)]
    assert check_operations(CAS_REGISTER, not_swapped).ok
    # but it cannot have swapped a value it did not find
    impossible = [op(("write", 2), 0, None, 1), op(("cas", 1, 3), 2, UNKNOWN, math.inf),
                  op(("read",), 4, 3, 5)]
    assert check_operations(CAS_REGISTER, impossible).verdict is Verdict.ILLEGAL


def test_cas_register_semantics() -> None:
    ok = [op(("write", 1), 0, None, 1), op(("cas", 1, 2), 2, True, 3), op(("cas", 1, 5), 4, False, 5),
          op(("read",), 6, 2, 7)]
    assert_certified(CAS_REGISTER, ok, check_operations(CAS_REGISTER, ok))
    wrong_success = [op(("write", 1), 0, None, 1), op(("cas", 2, 3), 2, True, 3)]
    assert check_operations(CAS_REGISTER, wrong_success).verdict is Verdict.ILLEGAL
    wrong_failure = [op(("write", 1), 0, None, 1), op(("cas", 1, 3), 2, False, 3)]
    assert check_operations(CAS_REGISTER, wrong_failure).verdict is Verdict.ILLEGAL


def test_concurrent_cas_only_one_wins() -> None:
    ops = [op(("write", 0), 0, None, 1), op(("cas", 0, 1), 2, True, 10, "a"),
           op(("cas", 0, 2), 2, True, 10, "b")]
    assert check_operations(CAS_REGISTER, ops).verdict is Verdict.ILLEGAL
    ops[2] = op(("cas", 0, 2), 2, False, 10, "b")
    assert check_operations(CAS_REGISTER, ops).ok


def test_kv_partitions_by_key() -> None:
    ops = [
        op(("put", "a", "x"), 0, None, 1), op(("append", "b", "1"), 0, None, 1),
        op(("append", "a", "y"), 2, None, 3), op(("get", "b"), 2, "1", 3),
        op(("get", "a"), 4, "xy", 5), op(("get", "c"), 4, "", 5),
    ]
    result = check_operations(KV, ops)
    assert_certified(KV, ops, result)
    assert result.partitions == 3
    bad = ops + [op(("get", "b"), 6, "", 7)]  # key b lost its append
    result = check_operations(KV, bad)
    assert result.verdict is Verdict.ILLEGAL
    assert result.partition == 1
    assert {o.input[1] for o in result.operations} == {"b"}


def test_illegal_partition_decides_while_another_is_long() -> None:
    """Partitions share the work round-robin: a quickly refuted key decides even when
    another key alone would exhaust the budget."""
    hard = [op(("append", "h", str(i)), 0, None, 100) for i in range(9)]
    hard.append(op(("get", "h"), 101, "nope", 102))
    bad = [op(("put", "k", "v"), 0, None, 1), op(("get", "k"), 2, "w", 3)]
    assert check_operations(KV, hard, budget=20_000).verdict is Verdict.UNKNOWN
    result = check_operations(KV, hard + bad, budget=20_000)
    assert result.verdict is Verdict.ILLEGAL
    assert result.partition == 1


def test_budget_exhaustion_is_unknown() -> None:
    """Eight concurrent appends then a get nobody could have produced: the search
    must try every order (8! states) before it can say "illegal"."""
    ops = [op(("append", "k", chr(97 + i)), 0, None, 10) for i in range(8)]
    ops.append(op(("get", "k"), 11, "impossible", 12))
    small = check_operations(KV, ops, budget=1000)
    assert small.verdict is Verdict.UNKNOWN
    assert small.steps <= 1000
    assert small.partition == 0
    assert "unknown" in small.describe()
    full = check_operations(KV, ops)
    assert full.verdict is Verdict.ILLEGAL
    assert full.steps > 1000
    exact = check_operations(KV, ops, budget=full.steps)
    assert exact.verdict is Verdict.ILLEGAL
    assert check_operations(KV, ops, budget=full.steps - 1).verdict is Verdict.UNKNOWN


def test_timeout_zero_is_unknown_for_long_search() -> None:
    ops = [op(("append", "k", chr(97 + i)), 0, None, 10) for i in range(8)]
    ops.append(op(("get", "k"), 11, "impossible", 12))
    assert check_operations(KV, ops, timeout=0).verdict is Verdict.UNKNOWN
    assert check_operations(KV, ops[:3], timeout=600).ok


def test_budget_zero_and_empty_history() -> None:
    assert check_operations(REGISTER, [], budget=0).ok
    assert check_operations(REGISTER, [op(("read",), 0, None, 1)], budget=0).verdict is Verdict.UNKNOWN


def test_only_pending_operations() -> None:
    ops = [op(("write", 1), 0, UNKNOWN, math.inf), op(("write", 2), 1, UNKNOWN, math.inf)]
    assert check_operations(REGISTER, ops, budget=0).ok


def test_custom_model_with_partition() -> None:
    """A user model: counters per name, partitioned by name."""

    def step(state: int, inp: Any, out: Any) -> tuple[bool, int]:
        if inp[0] == "incr":
            return True, state + 1
        return (out is UNKNOWN or out == state), state

    def by_name(ops: Any) -> list[list[Operation]]:
        groups: dict[str, list[Operation]] = {}
        for o in ops:
            groups.setdefault(o.input[1], []).append(o)
        return list(groups.values())

    counters = Model("counters", init=lambda: 0, step=step, partition=by_name)
    ops = [op(("incr", "a"), 0, None, 5), op(("incr", "a"), 1, None, 6), op(("get", "a"), 7, 2, 8),
           op(("get", "b"), 7, 0, 8)]
    assert check_operations(counters, ops).ok
    ops.append(op(("get", "a"), 9, 1, 10))
    result = check_operations(counters, ops)
    assert result.verdict is Verdict.ILLEGAL
    assert result.describe().startswith("counters: illegal")


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(("call", "ret"), [(5, 4), (math.nan, 1), (0, math.nan), (math.inf, math.inf),
                                           ("1", 2), (True, 2), (None, 1)])
def test_bad_operation_times(call: Any, ret: Any) -> None:
    with pytest.raises(HistoryError):
        Operation(0, ("read",), call, None, ret)


def test_bad_check_arguments() -> None:
    with pytest.raises(HistoryError):
        check_operations(REGISTER, [("read", 0, None, 1)])  # type: ignore[list-item]
    for budget in (-1, 1.5, True):
        with pytest.raises(HistoryError):
            check_operations(REGISTER, [], budget=budget)  # type: ignore[arg-type]
    with pytest.raises(HistoryError):
        check_operations(REGISTER, [], timeout=-1)


@pytest.mark.parametrize(("model", "inp"), [(REGISTER, ("cas", 1, 2)), (REGISTER, "read"), (REGISTER, ()),
                                            (CAS_REGISTER, ("cas", 1)), (KV, ("get",)), (KV, ("append", "k", 3)),
                                            (KV, ("del", "k"))])
def test_model_rejects_unknown_operations(model: Model, inp: Any) -> None:
    with pytest.raises(HistoryError):
        check_operations(model, [op(inp, 0, None, 1)])


def test_partition_must_keep_every_operation() -> None:
    ops = [op(("read",), 0, None, 1), op(("read",), 0, None, 1)]
    for partition in (lambda h: [list(h)[1:]], lambda h: [[h[0], h[0]]], lambda h: [list(h), [ops[0]]]):
        broken = Model("broken", init=lambda: None, step=REGISTER.step, partition=partition)
        with pytest.raises(HistoryError):
            check_operations(broken, ops)
    fine = Model("fine", init=lambda: None, step=REGISTER.step, partition=lambda h: [[h[1]], [], [h[0]]])
    assert check_operations(fine, ops).partitions == 2


def test_history_recorder_rejects_misuse() -> None:
    h = History()
    a = h.invoke("c", ("read",), time=10)
    with pytest.raises(HistoryError):
        h.complete(a, None, time=9)
    h.complete(a, None, time=11)
    for misuse in (lambda: h.complete(a, None, 12), lambda: h.fail(a), lambda: h.complete(99, None),
                   lambda: h.fail(-1), lambda: h.invoke("c", ("read",), time=math.inf),
                   lambda: h.invoke("c", ("read",), time="now")):
        with pytest.raises(HistoryError):
            misuse()
    assert len(h) == 1


# -- the History recorder ---------------------------------------------------------


def test_history_records_outcomes() -> None:
    h = History()
    w1 = h.invoke("a", ("write", 1), time=0)
    h.complete(w1, None, time=1)
    failed = h.invoke("b", ("write", 9), time=2)
    h.fail(failed)  # certainly not applied: dropped
    lost = h.invoke("c", ("write", 2), time=2)  # no reply: unknown
    r = h.invoke("d", ("read",), time=3)
    h.complete(r, 2, time=4)
    assert h.pending == 1
    ops = h.operations()
    assert [o.input for o in ops] == [("write", 1), ("write", 2), ("read",)]
    assert ops[1].unknown and ops[1].pending and ops[1].call == 2
    assert h.check(REGISTER).ok
    assert lost == 2
    # a read of the failed write's value is not explained by anything
    r9 = h.invoke("d", ("read",), time=5)
    h.complete(r9, 9, time=6)
    assert h.check(REGISTER).verdict is Verdict.ILLEGAL


def test_history_logical_clock() -> None:
    h = History()
    a = h.invoke(1, ("write", 1))
    b = h.invoke(2, ("read",))
    h.complete(b, 1)  # concurrent with the write: fine
    h.complete(a, None)
    c = h.invoke(2, ("read",))
    h.complete(c, None)  # after the write returned: stale
    ops = h.operations()
    assert [(o.call, o.return_time) for o in ops] == [(1, 4), (2, 3), (5, 6)]
    assert h.check(REGISTER).verdict is Verdict.ILLEGAL


def test_history_recorded_by_threads() -> None:
    """Four threads share a real (locked) register and record what they do; the
    recorded history of that real execution must check "ok"."""
    h, register, lock = History(), [None], threading.Lock()

    def client(cid: int) -> None:
        rng = random.Random(cid)
        for i in range(150):
            if rng.random() < 0.5:
                handle = h.invoke(cid, ("write", (cid, i)))
                with lock:
                    register[0] = (cid, i)
                h.complete(handle, None)
            else:
                handle = h.invoke(cid, ("read",))
                with lock:
                    seen = register[0]
                h.complete(handle, seen)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(h) == 600 and h.pending == 0
    assert h.check(REGISTER, budget=5_000_000).ok
    ops = h.operations()
    assert_certified(REGISTER, ops, check_operations(REGISTER, ops))


# -- parsers --------------------------------------------------------------------------


def test_jepsen_parser_outcomes() -> None:
    text = "\n".join([
        "INFO  jepsen.util - 0\t:invoke\t:write\t1",
        "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]",
        "INFO  jepsen.util - 2\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 0\t:ok\t:write\t1",
        "INFO  jepsen.util - 1\t:info\t:cas\t:timed-out",
        "INFO  jepsen.util - 2\t:fail\t:read\t:timed-out",
        "some other log line",
        "INFO  jepsen.util - 3  :invoke :cas    [2 5]",
        "INFO  jepsen.util - 3  :fail   :cas    [2 5]",
        "INFO  jepsen.util - 4\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 4\t:ok\t:read\t1",
        "INFO  jepsen.util - 0\t:invoke\t:write\t3",
    ])
    ops = parse_jepsen_register_log(text)
    assert [(o.client_id, o.input, o.output, o.call, o.return_time) for o in ops] == [
        (0, ("write", 1), None, 1, 4),
        (1, ("cas", 1, 2), UNKNOWN, 2, math.inf),
        (2, ("read",), UNKNOWN, 3, 6),
        (3, ("cas", 2, 5), False, 8, 9),
        (4, ("read",), 1, 10, 11),
        (0, ("write", 3), UNKNOWN, 12, math.inf),
    ]
    assert check_operations(CAS_REGISTER, ops).ok


def test_jepsen_parser_reads_paths(tmp_path: Path) -> None:
    f = tmp_path / "h.log"
    f.write_text("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t4\n")
    assert parse_jepsen_register_log(f) == parse_jepsen_register_log(str(f))
    assert parse_jepsen_register_log(f)[0].output == 4


@pytest.mark.parametrize("text", [
    "INFO  jepsen.util - 0\t:invoke\t:write\tabc",
    "INFO  jepsen.util - 0\t:invoke\t:cas\t[1]",
    "INFO  jepsen.util - x\t:invoke\t:read\tnil",
    "INFO  jepsen.util - 0\t:ok\t:read\t1",  # never invoked
    "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil",
    "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t2",
    "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:fail\t:write\t1",
    "INFO  jepsen.util - 0\t:invoke\t:read\t:timed-out",
    "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t:timed-out",
    "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t:timed-out",
    "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\nINFO  jepsen.util - 0\t:fail\t:cas\t:timed-out",
])
def test_jepsen_parser_rejects_malformed(text: str) -> None:
    with pytest.raises(HistoryError):
        parse_jepsen_register_log(text)


def test_kv_parser_outcomes() -> None:
    text = "\n".join([
        '{:process 0, :type :invoke, :f :append, :key "1", :value "a"}',
        '{:process 1, :type :invoke, :f :get, :key "1", :value nil}',
        '{:process 0, :type :ok, :f :append, :key "1", :value "a"}',
        '{:process 1, :type :ok, :f :get, :key "1", :value "a"}',
        "",
        '{:process 2, :type :invoke, :f :put, :key "2", :value "q\\"x"}',
        '{:process 2, :type :fail, :f :put, :key "2", :value "q\\"x"}',
        '{:process 3, :type :invoke, :f :get, :key "2", :value nil}',
        '{:process 3, :type :ok, :f :get, :key "2", :value nil}',
        '{:process 4, :type :invoke, :f :put, :key "2", :value "z"}',
    ])
    ops = parse_kv_edn(text)
    assert [(o.input, o.output, o.return_time) for o in ops] == [
        (("append", "1", "a"), None, 3),
        (("get", "1"), "a", 4),
        (("get", "2"), "", 9),
        (("put", "2", "z"), UNKNOWN, math.inf),
    ]
    assert check_operations(KV, ops).ok


@pytest.mark.parametrize("text", [
    "{:process 0, :type :invoke, :f :append}",
    '{:process 0, :type :invoke, :f :delete, :key "1", :value nil}',
    '{:process 0, :type :invoke, :f :put, :key "1", :value nil}',
    '{:process 0, :type :ok, :f :get, :key "1", :value "a"}',
    '{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n'
    '{:process 0, :type :ok, :f :get, :key "2", :value "a"}',
    '{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n'
    '{:process 0, :type :crashed, :f :get, :key "1", :value nil}',
])
def test_kv_parser_rejects_malformed(text: str) -> None:
    with pytest.raises(HistoryError):
        parse_kv_edn(text)


JEPSEN_LINES = st.builds(
    lambda p, t, f, v: f"INFO  jepsen.util - {p}\t:{t}\t:{f}\t{v}",
    st.sampled_from(["0", "1", "x"]), st.sampled_from(["invoke", "ok", "fail", "info", "what"]),
    st.sampled_from(["read", "write", "cas", "del"]),
    st.sampled_from(["nil", "1", "[1 2]", "[1]", ":timed-out", "", "-3"]),
)
KV_LINES = st.builds(
    lambda p, t, f, k, v: f"{{:process {p}, :type :{t}, :f :{f}, :key {k}, :value {v}}}",
    st.sampled_from(["0", "1", "x"]), st.sampled_from(["invoke", "ok", "fail", "info", "what"]),
    st.sampled_from(["get", "put", "append", "del"]), st.sampled_from(['"1"', '"2"', "nil", '"a\\"b"']),
    st.sampled_from(["nil", '"a"', '"b\\nc"', "1"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(JEPSEN_LINES | KV_LINES | st.text(max_size=30), max_size=10))
def test_parsers_raise_only_history_error(lines: list[str]) -> None:
    """Whatever the text, a parser returns operations or raises HistoryError."""
    text = "\n".join(lines) + "\n"
    for parse, model in ((parse_jepsen_register_log, CAS_REGISTER), (parse_kv_edn, KV)):
        try:
            ops = parse(text)
        except HistoryError:
            continue
        assert check_operations(model, ops, budget=10_000).verdict in Verdict


def test_parsers_reject_non_text() -> None:
    with pytest.raises(HistoryError):
        parse_kv_edn(b"{}")  # type: ignore[arg-type]


def test_testing_package_reexports() -> None:
    assert raftx.testing.check_operations is check_operations
    assert raftx.testing.History is History
    assert raftx.testing.Verdict is Verdict


# -- properties ---------------------------------------------------------------------


@st.composite
def register_executions(draw: st.DrawFn) -> list[Operation]:
    """Run a sequential register: each operation takes effect at a distinct instant
    (its linearization point), inside an interval drawn around it; some operations
    lose their reply (unknown outcome) and some writes never happen at all."""
    n = draw(st.integers(1, 14))
    points = sorted(draw(st.lists(st.integers(0, 200), min_size=n, max_size=n, unique=True)))
    state: Any = None
    ops = []
    for i, t in enumerate(points):
        kind = draw(st.sampled_from(["read", "write", "cas"]))
        call = t - draw(st.integers(0, 30))
        ret: float = t + draw(st.integers(0, 30))
        if kind == "read":
            inp, out = ("read",), state
        elif kind == "write":
            value = draw(st.integers(0, 3))
            inp, out, state = ("write", value), None, value
        else:
            expected, new = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            inp, out = ("cas", expected, new), state == expected
            if out:
                state = new
        if draw(st.integers(0, 9)) == 0:
            out, ret = UNKNOWN, math.inf  # the reply was lost
        ops.append(Operation(i % 4, inp, call, out, ret))
        if draw(st.integers(0, 9)) == 0:  # a write sent but never applied
            c = draw(st.integers(0, 200))
            ops.append(Operation("ghost", ("write", 99), c, UNKNOWN, math.inf))
    return draw(st.permutations(ops))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(register_executions())
def test_real_executions_are_linearizable(ops: list[Operation]) -> None:
    result = check_operations(CAS_REGISTER, ops)
    assert_certified(CAS_REGISTER, ops, result)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(register_executions(), st.data())
def test_reading_a_never_written_value_is_illegal(ops: list[Operation], data: st.DataObject) -> None:
    reads = [i for i, o in enumerate(ops) if o.input == ("read",) and not o.unknown]
    if not reads:
        return
    i = data.draw(st.sampled_from(reads))
    o = ops[i]
    ops[i] = Operation(o.client_id, o.input, o.call, 1000, o.return_time)
    assert check_operations(CAS_REGISTER, ops).verdict is Verdict.ILLEGAL


@st.composite
def small_histories(draw: st.DrawFn) -> list[Operation]:
    """Arbitrary (mostly wrong) small register histories, with unknown outcomes."""
    ops = []
    for _ in range(draw(st.integers(0, 5))):
        call = draw(st.integers(0, 8))
        ret: float = call + draw(st.integers(0, 4))
        kind = draw(st.sampled_from(["read", "write", "cas"]))
        values = st.sampled_from([None, 1, 2])
        if kind == "read":
            inp, out = ("read",), draw(values)
        elif kind == "write":
            inp, out = ("write", draw(st.sampled_from([1, 2]))), None
        else:
            inp, out = ("cas", draw(values), draw(st.sampled_from([1, 2]))), draw(st.booleans())
        if draw(st.integers(0, 5)) == 0:
            out = UNKNOWN
            if draw(st.booleans()):
                ret = math.inf
        ops.append(Operation(0, inp, call, out, ret))
    return ops


@settings(max_examples=1000, deadline=None)
@given(small_histories())
def test_agrees_with_brute_force(ops: list[Operation]) -> None:
    result = check_operations(CAS_REGISTER, ops)
    assert result.ok == brute_force(CAS_REGISTER, ops)
    if result.ok:
        assert_certified(CAS_REGISTER, ops, result)


def _kv_whole_step(state: tuple[tuple[str, str], ...], inp: Any, out: Any) -> tuple[bool, Any]:
    """The whole map as one state (no partition): the oracle for P-compositionality."""
    values = dict(state)
    legal, new = KV.step(values.get(inp[1], ""), inp, out)
    values[inp[1]] = new
    return legal, tuple(sorted(values.items()))


KV_WHOLE = Model("kv-whole", init=tuple, step=_kv_whole_step)


@st.composite
def small_kv_histories(draw: st.DrawFn) -> list[Operation]:
    ops = []
    for _ in range(draw(st.integers(0, 7))):
        call = draw(st.integers(0, 10))
        key = draw(st.sampled_from("ab"))
        kind = draw(st.sampled_from(["get", "put", "append"]))
        if kind == "get":
            inp, out = ("get", key), draw(st.sampled_from(["", "x", "xy", "y", "yx"]))
        else:
            inp, out = (kind, key, draw(st.sampled_from("xy"))), None
        ops.append(Operation(0, inp, call, out, call + draw(st.integers(0, 4))))
    return ops


@settings(max_examples=500, deadline=None)
@given(small_kv_histories())
def test_partitioning_by_key_preserves_the_verdict(ops: list[Operation]) -> None:
    """P-compositionality: per-key checking agrees with checking the whole map."""
    assert check_operations(KV, ops).verdict is check_operations(KV_WHOLE, ops).verdict


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([REGISTER, CAS_REGISTER, KV]), st.data())
def test_read_only_hints_are_true(model: Model, data: st.DataObject) -> None:
    """The shipped models' read_only hints: an accepted read-only step keeps the state."""
    values = st.sampled_from([None, 1, 2]) if model is not KV else st.sampled_from(["", "a", "ab"])
    state = data.draw(values)
    if model is KV:
        inp = data.draw(st.sampled_from([("get", "k"), ("put", "k", "a"), ("append", "k", "b")]))
    else:
        inp = data.draw(st.sampled_from([("read",), ("write", 1), ("cas", 1, 2), ("cas", None, 1)]))
    out = data.draw(st.sampled_from([None, 1, 2, "", "a", True, False, UNKNOWN]))
    if model is REGISTER and inp[0] == "cas":
        return
    assert model.read_only is not None
    legal, new = model.step(state, inp, out)
    if legal and model.read_only(inp, out):
        assert new == state
