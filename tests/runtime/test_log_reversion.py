"""A follower whose log went back: ``Config.allow_log_reversion`` (issue 10, bug 2).

A follower restarted with the same id and an empty store (memory stores here: a
restart loses everything, as a wiped data directory does) rejects the entries it
had acknowledged. The leader must not ignore that forever as a "stale rejection":

* ``allow_log_reversion=False`` (default): it refuses to repair the follower, logs
  one error naming the follower and counts the rejections in
  ``RaftMetrics.log_reversions``;
* ``allow_log_reversion=True``: it replicates to the follower from scratch (here
  by snapshot, the leader purged its log) while it stays leader.
"""

from __future__ import annotations

import logging

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx import SnapshotPolicy

pytestmark = pytest.mark.timeout(60)


async def _wipe_follower(allow: bool) -> tuple[Cluster, int, int]:
    """A cluster whose follower came back empty; (cluster, leader id, follower id)."""
    c = Cluster("mem", config=fast_config(allow_log_reversion=allow, snapshot_policy=SnapshotPolicy.LogsSinceLast(50),
                                          max_in_snapshot_log_to_keep=0))
    leader = await c.initialize([1, 2, 3])
    follower = next(i for i in c.nodes if i != leader.id)
    for k in range(120):
        resp = await leader.client_write(b"v%d" % k)
    await c.nodes[follower].wait(WAIT).applied_index_at_least(resp.log_id.index, "replicated before the wipe")
    await c.stop(follower)
    await c.start(follower)  # same id, empty log and state machine
    return c, leader.id, follower


async def test_wiped_follower_is_caught_up_when_reversion_is_allowed() -> None:
    c, leader_id, follower = await _wipe_follower(allow=True)
    try:
        leader = c.nodes[leader_id]
        resp = await leader.client_write(b"after-wipe")
        await c.nodes[follower].wait(WAIT).applied_index_at_least(resp.log_id.index, "wiped follower caught up")
        assert c.sms[follower].data == c.sms[leader_id].data
        m = leader.metrics().borrow()
        assert m.current_leader == leader_id and m.log_reversions >= 1
        assert m.replication is not None and m.replication[follower] is not None
    finally:
        await c.close()


async def test_wiped_follower_is_refused_loudly_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="raftx.engine.reversion")
    c, leader_id, follower = await _wipe_follower(allow=False)
    try:
        leader = c.nodes[leader_id]
        await leader.wait(WAIT).metrics(lambda m: m.log_reversions >= 3, "log reversion counted")
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and "allow_log_reversion" in r.getMessage()]
        assert len(errors) == 1, errors  # once per lost match, not once per heartbeat
        assert f"follower {follower} lost log entries" in errors[0].getMessage()
        assert c.nodes[follower].metrics().borrow().last_applied is None  # not repaired
        assert leader.metrics().borrow().current_leader == leader_id
    finally:
        await c.close()
