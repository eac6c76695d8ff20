"""Writes and linearizable reads from any node (``forward=True``), over a MemRouter and TCP:
a write on a follower, a write during an election, the leader killed mid-forward, and
forwarded calls from a non-member refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Sequence

import pytest

from raftx import Config
from raftx.errors import ForwardToLeader, PeerNotAuthorized, RemoteError, WriteOutcomeUnknown
from raftx.messages import ForwardRequest
from raftx.network.raft_rpc import decode_forward_response, decode_request, encode_request
from raftx.storage import MemStateMachine
from raftx.types import ClientWriteResponse, Entry
from tests.runtime.raftkit import WAIT, Cluster, fast_config

pytestmark = pytest.mark.timeout(60)


class GatedSM(MemStateMachine):
    """Once ``armed``, holds the apply of a ``b"hold"`` entry until ``gate`` is set (a
    leader busy mid-forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        if self.armed and any(e.payload == b"hold" for e in entries):
            self.holding.set()
            await self.gate.wait()
        return await super().apply(entries)


@pytest.fixture(params=["mem", "tcp"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    c = Cluster(request.param, sm_factory=lambda i: GatedSM())
    yield c
    for sm in c.sms.values():
        sm.gate.set()  # type: ignore[attr-defined]
    await c.close()


def applied_count(c: Cluster, node: int, payload: bytes) -> int:
    return sum(1 for v in c.sms[node].data.values() if v == payload)


async def test_write_and_read_on_a_follower(cluster: Cluster) -> None:
    c = cluster
    leader = await c.initialize([1, 2, 3])
    follower = next(r for r in c.nodes.values() if r is not leader)
    with pytest.raises(ForwardToLeader):
        await follower.client_write(b"plain")  # forward=False keeps openraft's behaviour
    resp = await follower.client_write(b"from-follower", forward=True)
    assert resp.data == b"from-follower"  # the leader's state machine output, carried back
    many = await follower.client_write_many([b"m1", b"m2", b"m3"], forward=True)
    assert [r.data for r in many if isinstance(r, ClientWriteResponse)] == [b"m1", b"m2", b"m3"]
    last = max(r.log_id.index for r in many if isinstance(r, ClientWriteResponse))
    for r in c.nodes.values():
        await r.wait(WAIT).applied_index_at_least(last, "replicated")
    # a forwarded read check: afterwards the follower's own state machine has every write
    leader_write = await leader.client_write(b"leader-write")
    read_log_id = await follower.ensure_linearizable(forward=True)
    assert read_log_id is not None and read_log_id.index >= leader_write.log_id.index
    assert c.sms[follower.id].data[leader_write.log_id.index] == b"leader-write"
    # and on the leader itself forward=True is a local call
    assert (await leader.client_write(b"local", forward=True)).data == b"local"
    assert await leader.ensure_linearizable(forward=True) is not None


async def test_write_during_an_election_waits_for_the_new_leader(cluster: Cluster) -> None:
    c = cluster
    leader = await c.initialize([1, 2, 3])
    old = leader.id
    follower = next(r for r in c.nodes.values() if r is not leader)
    await c.stop(old)  # the followers still name the old leader until their election timeout
    resp = await follower.client_write(b"during-election", forward=True)
    new_leader = await c.leader()
    assert new_leader.id != old
    for r in c.nodes.values():
        await r.wait(WAIT).applied_index_at_least(resp.log_id.index, "applied")
        assert applied_count(c, r.id, b"during-election") == 1


async def test_no_leader_within_forward_timeout_raises_forward_to_leader() -> None:
    c = Cluster("mem", config=fast_config(forward_timeout=0.3))
    try:
        leader = await c.initialize([1, 2, 3])
        follower = next(r for r in c.nodes.values() if r is not leader)
        others = [i for i in c.nodes if i != follower.id]
        for i in others:
            await c.stop(i)  # no majority left: no leader can be elected
        with pytest.raises(ForwardToLeader):
            await follower.client_write(b"nobody", forward=True)
        with pytest.raises(ForwardToLeader):
            await follower.ensure_linearizable(forward=True)
    finally:
        await c.close()


async def test_leader_killed_mid_forward_reports_unknown_outcome_and_applies_once(cluster: Cluster) -> None:
    c = cluster
    leader = await c.initialize([1, 2, 3])
    old = leader.id
    follower = next(r for r in c.nodes.values() if r is not leader)
    gated = c.sms[old]
    assert isinstance(gated, GatedSM)
    gated.armed = True
    call = asyncio.ensure_future(follower.client_write(b"hold", forward=True))
    async with asyncio.timeout(WAIT):
        await gated.holding.wait()  # committed, the leader is applying it: the answer is not sent yet
    # Kill the leader: over TCP its connections drop at once; a MemRouter cuts the node
    # off, so its answer (sent once the apply finishes) is lost on the way.
    if c.transport == "mem":
        c.router.isolate(old)
    stopping = asyncio.ensure_future(c.stop(old))
    if c.transport == "mem":
        gated.gate.set()
    with pytest.raises(WriteOutcomeUnknown):
        await call  # it was committed, but the follower cannot know: it must not re-propose
    gated.gate.set()
    await stopping
    new_leader = await c.leader()
    after = await new_leader.client_write(b"after")
    for r in c.nodes.values():
        await r.wait(WAIT).applied_index_at_least(after.log_id.index, "applied")
        assert applied_count(c, r.id, b"hold") == 1  # applied once, not retried into a second entry


async def test_forward_from_a_non_member_is_refused() -> None:
    c = Cluster("mem")
    try:
        leader = await c.initialize([1, 2, 3])
        req = ForwardRequest("write", (b"intruder",))
        with pytest.raises(RemoteError, match="PeerNotAuthorized"):
            await c.router.call(99, leader.id, "forward", encode_request("forward", req), timeout=WAIT)
        with pytest.raises(PeerNotAuthorized):
            await leader.serve_forward(req, sender=99)
        assert leader.metrics().borrow().last_applied is not None
        assert all(v != b"intruder" for v in c.sms[leader.id].data.values())
    finally:
        await c.close()


def test_forward_codec_round_trip_and_rejects_garbage() -> None:
    req = ForwardRequest("write", (b"a", b"", b"c" * 1000))
    assert decode_request("forward", encode_request("forward", req)) == req
    assert decode_request("forward", encode_request("forward", ForwardRequest("read"))) == ForwardRequest("read")
    from raftx.errors import ProtocolError
    good = encode_request("forward", req)
    for bad in (good[:-1], good + b"x", encode_request("forward", ForwardRequest("read"))[:-1] + b"\x05"):
        with pytest.raises(ProtocolError):
            decode_request("forward", bad)
    with pytest.raises(ProtocolError):
        decode_request("forward", encode_request("forward", ForwardRequest("delete", ())))
    with pytest.raises(ProtocolError):
        decode_forward_response(b"\x01\x00\x00\x00\x91", 2)


def test_forward_timeout_is_validated() -> None:
    from raftx.errors import ConfigError
    assert Config().forward_timeout == 5.0
    with pytest.raises(ConfigError):
        Config(forward_timeout=0).validate()


async def test_write_on_a_leader_handing_over_goes_to_the_new_leader(cluster: Cluster) -> None:
    """A leader that is transferring refuses writes unproposed (`NotLeader`): a forwarded
    call retries them on the new leader instead of failing."""
    c = cluster
    leader = await c.initialize([1, 2, 3])
    target = next(i for i in c.nodes if i != leader.id)
    await leader.trigger().transfer_leader(target)
    resp = await leader.client_write(b"handover", forward=True)
    assert (await c.leader()).id == target
    for r in c.nodes.values():
        await r.wait(WAIT).applied_index_at_least(resp.log_id.index, "applied")
        assert applied_count(c, r.id, b"handover") == 1
