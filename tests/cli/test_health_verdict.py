"""`raftx.cli_health.cluster_health`: the verdict of ``raftx health`` from status rows
(the real-process runs are in test_monitor.py; these pin the quorum arithmetic)."""

from __future__ import annotations

from typing import Any

from raftx.cli_health import cluster_health, status_problems


def row(i: int, state: str = "Follower", leader: int | None = 1, term: int = 5,
        members: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    return {"address": f"h{i}:7001", "ok": True, "error": None, "id": i, "state": state, "leader": leader,
            "term": term, "members": list(members), "running": True}


def down(i: int) -> dict[str, Any]:
    return {"address": f"h{i}:7001", "ok": False, "error": "Timeout: no answer"}


def test_a_leader_and_a_majority_following_it_is_healthy() -> None:
    ok, why, detail = cluster_health([row(1, "Leader"), row(2), down(3)])
    assert ok and detail["voters_agreeing"] == [1, 2] and detail["quorum"] == 2, why


def test_a_leader_alone_of_three_is_not() -> None:
    ok, why, _ = cluster_health([row(1, "Leader"), down(2), down(3)])
    assert not ok and "only 1 of 3 voters" in why


def test_followers_of_another_term_do_not_count() -> None:
    # node 1 still says Leader in term 5; 2 and 3 moved on to leader 2 in term 6
    ok, why, detail = cluster_health([row(1, "Leader", term=5), row(2, "Leader", leader=2, term=6),
                                      row(3, leader=2, term=6)])
    assert ok and detail["leader"] == 2 and detail["voters_agreeing"] == [2, 3], why


def test_no_leader_among_the_endpoints_names_the_one_they_follow() -> None:
    ok, why, _ = cluster_health([row(2), row(3)])
    assert not ok and "list the leader's address" in why and "[1]" in why


def test_nothing_answered() -> None:
    ok, why, _ = cluster_health([down(1), down(2)])
    assert not ok and why == "no endpoint answered (2 tried)"


def test_five_voters_need_three() -> None:
    five = (1, 2, 3, 4, 5)
    assert not cluster_health([row(1, "Leader", members=five), row(2, members=five)])[0]
    assert cluster_health([row(1, "Leader", members=five), row(2, members=five), row(3, members=five)])[0]


def test_status_problems() -> None:
    assert status_problems([row(1, "Leader"), row(2)]) == []
    assert status_problems([row(1, leader=None)]) == ["no node that answered knows a leader"]
    assert status_problems([row(1, "Leader"), down(2)]) == ["h2:7001 unreachable: Timeout: no answer"]
