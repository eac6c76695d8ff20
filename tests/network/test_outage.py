"""A peer that stays down is logged rate-limited: one line when it goes down, a
summary per interval while it stays down, one when it is back (`OutageLog`), on a
fake clock and through a real `RpcClient` to a closed loopback port."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from raftx.errors import Unreachable
from raftx.launcher import free_ports
from raftx.network.backoff import Backoff
from raftx.network.client import RpcClient
from raftx.network.outage import OutageLog
from raftx.network.server import RpcServer

from netkit import CLUSTER, echo

LOG = "raftx.test.outage"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_down_summary_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOG)
    out = OutageLog(logging.getLogger(LOG), "node 2 at h:1", interval=60.0)
    out.success(0.0)  # up and never down: nothing
    assert _warnings(caplog) == []
    for t in range(0, 120):  # one failed attempt a second for two minutes
        out.failure(float(t), f"refused #{t}")
    w = _warnings(caplog)
    assert len(w) == 2 + 0 and "is unreachable: refused #0" in w[0]  # down, then one summary at t=60
    assert "still unreachable (down 60s): 60 failed attempts in the last 60s; last error: refused #60" in w[1]
    out.failure(120.0, "refused #120")  # the second summary
    out.success(121.0)
    w = _warnings(caplog)
    assert len(w) == 4 and "reachable again after 121s (121 failed attempts)" in w[3]
    assert out.down_since is None
    out.failure(200.0, "again")  # a new outage is announced again
    assert "is unreachable: again" in _warnings(caplog)[4]


async def test_rpc_client_to_a_down_peer_logs_once_then_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "raftx.network.client")
    now = [0.0]
    (port,) = free_ports(1)
    client = RpcClient("127.0.0.1", port, cluster_name=CLUSTER, node_id=1, target_id=2, clock=lambda: now[0],
                       backoff=Backoff(initial=0.001, maximum=0.001))
    try:
        for i in range(20):  # 20 refused connection attempts within "10 s"
            with pytest.raises(Unreachable):
                await client.call("echo", b"x", timeout=5)
            now[0] += 0.5
        w = _warnings(caplog)
        assert len(w) == 1 and "node 2 at 127.0.0.1" in w[0] and "is unreachable" in w[0], w
        async with RpcServer(echo, "127.0.0.1", port, cluster_name=CLUSTER, node_id=2):
            assert await client.call("echo", b"x", timeout=5) == b"x"
        w = _warnings(caplog)
        assert len(w) == 2 and "reachable again after 10s (20 failed attempts)" in w[1], w
    finally:
        await client.close()


def test_outage_lines_carry_fields_for_json_logs(caplog: pytest.LogCaptureFixture) -> None:
    from raftx.kv.serve_logging import JsonFormatter

    caplog.set_level(logging.DEBUG, LOG)
    out = OutageLog(logging.getLogger(LOG), "node 2 at h:1", interval=60.0)
    out.failure(0.0, "refused")
    out.success(5.0)
    docs = [json.loads(JsonFormatter(7).format(r)) for r in caplog.records]
    assert [d["fields"]["outage"] for d in docs] == ["down", "back"]
    assert docs[1]["fields"] == {"peer": "node 2 at h:1", "outage": "back", "failures": 1, "down_seconds": 5.0}
    assert docs[0]["node"] == 7 and docs[0]["level"] == "WARNING" and docs[0]["logger"] == LOG
