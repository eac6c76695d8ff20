"""The nemesis on real processes, short schedule (issue 10, item 3).

Three ``raftx serve`` processes in network namespaces (snapshots every 500 entries,
100 kept), concurrent KVClients, and every fault once: kill -9 of the leader, a
follower, two nodes at once and a node during its restart; SIGSTOP/SIGCONT of the
leader and a follower; partitions of the leader and of a follower. The run passes
when no node exits on its own, the cluster takes writes again after every fault,
every node catches up and stops cleanly, ``raftx inspect --verify`` passes on every
data dir and the history is linearizable. Needs root with ``ip netns`` and ``tc``
(skipped otherwise). ``python -m raftx.testing.nemesis --duration 600`` is the long run.
"""

from __future__ import annotations

import pytest

from raftx.testing.nemesis import NemesisConfig, run_nemesis, unavailable_reason
from raftx.testing.nemesis.faults import FAULTS, PARTITION_FAULTS

pytestmark = [pytest.mark.durable, pytest.mark.timeout(240)]

_REASON = unavailable_reason()


@pytest.mark.skipif(_REASON is not None, reason=f"nemesis with partitions: {_REASON}")
def test_nemesis_short_schedule_with_every_fault() -> None:
    schedule = ["partition_follower", *sorted(FAULTS), "partition_leader", *sorted(PARTITION_FAULTS)]
    report = run_nemesis(NemesisConfig(seed=10, partitions=True, schedule=schedule, max_hold=2.5,
                                       quiet=(0.5, 1.0), check_timeout=60.0))
    print(report.summary())  # the report (ops, faults, recovery times) in the test output
    assert report.ok, report.summary()
    assert [f.name for f in report.faults] == schedule
    assert report.counts.puts_ok > 100 and report.verdict == "ok"
    assert 0 < report.counts.lease_gets_ok < report.counts.gets_ok  # both read policies, checked alike
