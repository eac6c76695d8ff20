"""Unit tests of the simulator's parts: scheduler, network, disk."""

from __future__ import annotations

import random

import pytest

from raftx.errors import ConfigError, StorageError
from raftx.testing.simulation import InvariantViolation, LinkFaults, Msg, Scheduler, SimDisk, SimNetwork
from raftx.types import Entry, LogId, SnapshotMeta, Vote

# -- scheduler ------------------------------------------------------------------------------


def test_scheduler_runs_by_time_then_by_scheduling_order() -> None:
    s = Scheduler()
    seen: list[str] = []
    s.at(5, lambda: seen.append("b"))
    s.at(1, lambda: seen.append("a"))
    s.at(5, lambda: seen.append("c"))
    s.after(5, lambda: seen.append("d"))
    while s.run_next():
        pass
    assert seen == ["a", "b", "c", "d"]
    assert s.now == 5 and s.steps == 4 and len(s) == 0


def test_scheduler_time_jumps_and_actions_can_schedule_more() -> None:
    s = Scheduler()
    times: list[int] = []

    def again() -> None:
        times.append(s.now)
        if len(times) < 3:
            s.after(100, again)

    s.after(7, again)
    while s.run_next():
        pass
    assert times == [7, 107, 207]
    assert s.run_next() is False


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_scheduler_rejects_bad_delays(bad: object) -> None:
    s = Scheduler(start=10)
    with pytest.raises(ConfigError):
        s.after(bad, lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        s.at(9, lambda: None)


# -- network ----------------------------------------------------------------------------------


def _net(seed: int = 1, **knobs: object) -> tuple[Scheduler, SimNetwork, list[tuple[int, Msg]]]:
    s = Scheduler()
    got: list[tuple[int, Msg]] = []
    net = SimNetwork(s, random.Random(seed), lambda m: got.append((s.now, m)), LinkFaults(**knobs))  # type: ignore[arg-type]
    return s, net, got


def _drain(s: Scheduler) -> None:
    while s.run_next():
        pass


def test_network_delivers_within_the_delay_range() -> None:
    s, net, got = _net(min_delay=3, max_delay=9)
    for i in range(50):
        net.send(Msg(1, 2, "x", i))
    _drain(s)
    assert sorted(m.body for _, m in got) == list(range(50))
    assert all(3 <= t <= 9 for t, _ in got)
    assert {t for t, _ in got} != {3}  # really random within the range


def test_network_drop_everything_and_duplicate_everything() -> None:
    s, net, got = _net(drop=1.0)
    net.send(Msg(1, 2, "x", 0))
    _drain(s)
    assert got == [] and net.dropped == 1
    s, net, got = _net(duplicate=1.0)
    net.send(Msg(1, 2, "x", 0))
    _drain(s)
    assert [m.body for _, m in got] == [0, 0] and net.duplicated == 1


def test_network_reorders_messages() -> None:
    s, net, got = _net(min_delay=1, max_delay=1, reorder=0.5, reorder_delay=50)
    for i in range(40):
        net.send(Msg(1, 2, "x", i))
    _drain(s)
    order = [m.body for _, m in got]
    assert sorted(order) == list(range(40)) and order != sorted(order)


def test_one_way_block_partition_isolate_and_heal() -> None:
    s, net, got = _net()
    net.block(1, 2)
    net.send(Msg(1, 2, "x", "lost"))
    net.send(Msg(2, 1, "x", "back"))
    _drain(s)
    assert [m.body for _, m in got] == ["back"]
    net.heal()
    net.partition([1], [2, 3])
    for a, b in [(1, 2), (2, 1), (3, 1), (2, 3)]:
        net.send(Msg(a, b, "x", (a, b)))
    _drain(s)
    assert [m.body for _, m in got[1:]] == [(2, 3)]
    net.heal()
    net.isolate(3, [1, 2, 3])
    assert not net.reachable(3, 1) and not net.reachable(2, 3) and net.reachable(1, 2)


def test_a_message_in_flight_is_lost_if_the_link_is_cut_before_it_arrives() -> None:
    s, net, got = _net(min_delay=10, max_delay=10)
    net.send(Msg(1, 2, "x", 0))
    net.block(1, 2)
    _drain(s)
    assert got == []


def test_network_is_deterministic_per_seed() -> None:
    runs = []
    for seed in (7, 7, 8):
        s, net, got = _net(seed, max_delay=20, drop=0.2, duplicate=0.2, reorder=0.3)
        for i in range(60):
            net.send(Msg(i % 3, (i + 1) % 3, "x", i))
        _drain(s)
        runs.append([(t, m.body) for t, m in got])
    assert runs[0] == runs[1] != runs[2]


@pytest.mark.parametrize("knobs", [dict(drop=1.5), dict(duplicate=-0.1), dict(min_delay=5, max_delay=1),
                                   dict(reorder="x")])
def test_link_faults_reject_bad_knobs(knobs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        LinkFaults(**knobs).validate()  # type: ignore[arg-type]


# -- disk ---------------------------------------------------------------------------------------


def _entries(term: int, first: int, n: int) -> list[Entry]:
    return [Entry(LogId(term, i), f"v{i}".encode()) for i in range(first, first + n)]


def test_disk_reads_its_writes_and_sync_makes_them_durable() -> None:
    d = SimDisk(random.Random(0), keep_unsynced=False)
    d.submit(0, ("vote", Vote(1, 1)))
    d.submit(1, ("append", _entries(1, 0, 3)))
    assert d.cache.last_index == 2 and d.durable.last_index == -1
    assert d.sync() == 1
    assert d.durable.vote == Vote(1, 1) and [e.log_id.index for e in d.durable.entries] == [0, 1, 2]
    d.submit(2, ("append", _entries(1, 3, 2)))
    d.crash()
    assert d.cache.last_index == 2 and d.durable.last_index == 2  # the unsynced append is gone


def test_crash_keeps_a_prefix_of_unsynced_writes_and_may_tear_the_last_append() -> None:
    outcomes = set()
    for seed in range(60):
        d = SimDisk(random.Random(seed), keep_unsynced=True, torn_writes=True)
        d.submit(0, ("append", _entries(1, 0, 2)))
        d.sync()
        d.submit(1, ("vote", Vote(2, 3)))
        d.submit(2, ("append", _entries(2, 2, 4)))
        d.submit(3, ("truncate", LogId(2, 3)))
        d.crash()
        vote_kept = d.durable.vote == Vote(2, 3)
        last = d.durable.last_index
        # prefix semantics: later writes survive only if the earlier ones did
        if last > 1:
            assert vote_kept
        assert last in (1, 2, 3, 4, 5)
        outcomes.add((vote_kept, last))
    assert (False, 1) in outcomes and (True, 3) in outcomes  # lost, and kept partly (torn or truncated)
    assert any(last in (2, 4) for _, last in outcomes)  # a torn append: some of its 4 entries


def test_fsync_failure_raises_storage_error_and_makes_nothing_durable() -> None:
    d = SimDisk(random.Random(0), fsync_failure=1.0, keep_unsynced=False)
    d.submit(0, ("vote", Vote(3, 1)))
    with pytest.raises(StorageError):
        d.sync()
    d.crash()
    assert d.durable.vote == Vote()


def test_disk_checks_the_storage_contract() -> None:
    d = SimDisk(random.Random(0))
    d.submit(0, ("append", _entries(1, 0, 5)))
    with pytest.raises(InvariantViolation, match="storage contract"):
        d.submit(1, ("append", _entries(1, 7, 1)))
    d.submit(1, ("committed", LogId(1, 3)))
    with pytest.raises(InvariantViolation, match="truncated committed"):
        d.submit(2, ("truncate", LogId(1, 1)))
    with pytest.raises(InvariantViolation, match="monotonic commit"):
        d.submit(2, ("committed", LogId(1, 2)))
    with pytest.raises(InvariantViolation, match="purge beyond snapshot"):
        d.submit(2, ("purge", LogId(1, 2)))
    d.store_snapshot(SnapshotMeta(LogId(1, 3)), {"k": "v"})
    d.submit(2, ("purge", LogId(1, 2)))
    assert d.cache.first_index == 3 and d.cache.read(3, 4) == _entries(1, 3, 2) and d.cache.read(2, 3) is None
