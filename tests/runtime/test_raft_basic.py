"""The public `Raft` API on a 3-node in-process cluster (MemRouter, memory stores).

Election, writes, linearizable reads, ForwardToLeader, failover without losing an
acknowledged write, wait() conditions and timeouts, shutdown semantics, triggers,
runtime config, state access and the deprecated aliases.
"""

from __future__ import annotations

import asyncio
import warnings

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx import Config, LogId, ServerState
from raftx.errors import ConfigError, Fatal, ForwardToLeader, InitializeError, NotInMembers, WaitTimeout
from raftx.raft import Raft
from raftx.network import MemRouter
from raftx.network.raft_rpc import MemNetworkFactory
from raftx.storage import MemLogStore, MemStateMachine

pytestmark = pytest.mark.timeout(60)


async def test_three_nodes_elect_one_leader_and_replicate(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    resp = await leader.client_write(b"hello")
    assert resp.data == b"hello"
    for r in cluster.nodes.values():
        m = await r.wait(WAIT).applied_index_at_least(resp.log_id.index, "write applied everywhere")
        assert m.current_leader == leader.id
        assert cluster.sms[r.id].data[resp.log_id.index] == b"hello"
    states = sorted(r.metrics().borrow().state.value for r in cluster.nodes.values())
    assert states == ["Follower", "Follower", "Leader"]


async def test_concurrent_writes_are_batched_and_all_applied_in_order(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    payloads = [b"w%d" % k for k in range(300)]
    resps = await asyncio.gather(*(leader.client_write(p) for p in payloads))
    indexes = [r.log_id.index for r in resps]
    assert len(set(indexes)) == len(indexes)
    # submission order is log order, and the response carries the applied output
    assert indexes == sorted(indexes)
    assert [r.data for r in resps] == payloads
    last = max(indexes)
    for r in cluster.nodes.values():
        await r.wait(WAIT).applied_index_at_least(last, "all applied")
        assert [cluster.sms[r.id].data[i] for i in indexes] == payloads


async def test_client_write_ff_and_many(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    pending = await leader.client_write_ff(b"ff")
    many = await leader.client_write_many([b"a", b"b"])
    resp = await pending
    assert resp.data == b"ff"
    assert [m.data for m in many] == [b"a", b"b"]
    assert many[0].log_id.index == many[1].log_id.index - 1


async def test_follower_raises_forward_to_leader_with_the_leaders_node(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    follower = next(r for r in cluster.nodes.values() if r is not leader)
    with pytest.raises(ForwardToLeader) as info:
        await follower.client_write(b"x")
    assert info.value.leader_id == leader.id
    assert info.value.leader_node == cluster.addr(leader.id)
    with pytest.raises(ForwardToLeader):
        await follower.ensure_linearizable()
    assert await follower.current_leader() == leader.id


async def test_linearizable_read_sees_every_acknowledged_write(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    resp = await leader.client_write(b"v1")
    read_log_id = await leader.ensure_linearizable()
    assert read_log_id is not None and read_log_id.index >= resp.log_id.index
    assert leader.metrics().borrow().last_applied.index >= read_log_id.index
    read_id, applied = await leader.get_read_log_id()
    assert read_id == read_log_id and applied is not None


async def test_failover_keeps_every_acknowledged_write(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    acked = [await leader.client_write(b"a%d" % k) for k in range(20)]
    old = leader.id
    cluster.router.isolate(old)
    rest = [i for i in cluster.nodes if i != old]
    new_leader = await cluster.leader(among=rest)
    assert new_leader.id != old
    more = [await new_leader.client_write(b"b%d" % k) for k in range(5)]
    cluster.router.heal()
    await cluster.nodes[old].wait(WAIT).applied_index_at_least(more[-1].log_id.index, "old leader catches up")
    for r in cluster.nodes.values():
        await r.wait(WAIT).applied_index_at_least(more[-1].log_id.index, "caught up")
        data = cluster.sms[r.id].data
        for resp in acked + more:
            assert data[resp.log_id.index] == resp.data
    assert cluster.nodes[old].metrics().borrow().state == ServerState.FOLLOWER


async def test_isolated_leader_cannot_commit(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    cluster.router.isolate(leader.id)
    with pytest.raises((ForwardToLeader, asyncio.TimeoutError, TimeoutError)):
        async with asyncio.timeout(1.0):
            await leader.client_write(b"lost")
    cluster.router.heal()


async def test_wait_conditions_and_timeout_names_the_message(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    resp = await leader.client_write(b"x")
    m = await leader.wait(WAIT).log(resp.log_id.index, "log")
    assert m.last_log_index == resp.log_id.index
    await leader.wait(WAIT).current_leader(leader.id, "leader known")
    for node in cluster.nodes.values():
        assert await node.wait(WAIT).leader() == leader.id
    await leader.wait(WAIT).state(ServerState.LEADER, "leading")
    await leader.wait(WAIT).members({1, 2, 3}, "members")
    await leader.wait(WAIT).metrics(lambda x: x.current_term >= 1, "term")
    with pytest.raises(WaitTimeout) as info:
        await leader.wait(0.05).log(resp.log_id.index + 100, "never-reached-log")
    assert "never-reached-log" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(WaitTimeout, match="a message"):
        await leader.wait(0.02).state(ServerState.LEARNER, "a message")


async def test_metrics_watch_borrow_changed_and_async_for(cluster: Cluster) -> None:
    await cluster.start_many([1, 2, 3])
    node = cluster.nodes[1]
    rx = node.metrics()
    assert rx.borrow().id == 1 and rx.borrow().current_leader is None
    assert rx.borrow().running_state is None
    await node.initialize({i: cluster.addr(i) for i in (1, 2, 3)})
    async with asyncio.timeout(WAIT):
        await rx.changed()
        async for m in node.metrics():
            if m.current_leader is not None:
                break
    assert node.server_metrics().borrow().membership_config.membership.voter_ids() == {1, 2, 3}
    assert node.data_metrics().borrow().last_log is not None


async def test_shutdown_fails_pending_and_later_calls_with_fatal() -> None:
    router = MemRouter()
    raft = await Raft.new(1, fast_config(), MemNetworkFactory(router), MemLogStore(), MemStateMachine())
    # a single member that is not initialized: a write waits for a leader? No: it is refused
    with pytest.raises(ForwardToLeader):
        await raft.client_write(b"x")
    # a read index round that cannot finish is pending when we shut down
    await raft.initialize({1: "mem:1", 2: "mem:2"})  # node 2 never starts: no quorum
    waiter = asyncio.ensure_future(raft.wait(None).state(ServerState.LEADER, "never"))
    await raft.shutdown()
    with pytest.raises(Fatal):
        await waiter
    with pytest.raises(Fatal):
        await raft.client_write(b"x")
    with pytest.raises(Fatal):
        await raft.with_raft_state(lambda st: st.vote)
    m = raft.metrics().borrow()
    assert m.state == ServerState.SHUTDOWN and isinstance(m.running_state, Fatal)
    await raft.shutdown()  # idempotent


async def test_async_with_shuts_down_and_single_node_cluster_commits() -> None:
    router = MemRouter()
    async with await Raft.new(1, fast_config(), MemNetworkFactory(router), MemLogStore(), MemStateMachine()) as raft:
        assert not await raft.is_initialized()
        await raft.initialize([1])
        assert await raft.is_initialized()
        await raft.wait(WAIT).state(ServerState.LEADER, "single node leads")
        resp = await raft.client_write(b"solo")
        assert resp.log_id == LogId(1, 2)
    assert raft.metrics().borrow().state == ServerState.SHUTDOWN


async def test_initialize_errors(cluster: Cluster) -> None:
    await cluster.start_many([1, 2, 3])
    with pytest.raises(NotInMembers):
        await cluster.nodes[1].initialize([2, 3])
    await cluster.initialize([1, 2, 3])
    with pytest.raises(InitializeError):
        await cluster.nodes[1].initialize([1, 2, 3])
    with pytest.raises(TypeError):
        await cluster.nodes[1].initialize(["a"])


async def test_bad_arguments_get_typed_errors() -> None:
    router = MemRouter()
    with pytest.raises(ConfigError):
        await Raft.new(1, Config(election_timeout_min=300, election_timeout_max=100),
                       MemNetworkFactory(router), MemLogStore(), MemStateMachine())
    with pytest.raises(ConfigError):
        await Raft.new(-1, fast_config(), MemNetworkFactory(router), MemLogStore(), MemStateMachine())
    async with await Raft.new(1, fast_config(), MemNetworkFactory(router), MemLogStore(), MemStateMachine()) as raft:
        with pytest.raises(TypeError):
            await raft.client_write("not bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await raft.client_write_many([b"ok", "not bytes"])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            raft.runtime_config().elect("yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            raft.wait(-1)
        with pytest.raises(TypeError, match="BasicNode or 'host:port'"):
            await raft.initialize({1: 1})  # type: ignore[dict-item]  # an id where an address belongs
        assert not await raft.is_initialized()


async def test_seed_examples_work_as_written(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    await leader.client_write(b"1")
    timeout = WAIT
    # wait for raft log-3 to be received and applied (0: membership, 1: blank, 2: b"1", 3: ...)
    await leader.client_write(b"2")
    await leader.wait(timeout).log(3, "log")
    committed = await leader.with_raft_state(lambda st: st.committed)
    assert committed == leader.metrics().borrow().committed
    follower = next(r for r in cluster.nodes.values() if r is not leader)
    await follower.wait(timeout).log(3, "follower log")
    follower.runtime_config().heartbeat(True)
    await follower.trigger().elect()
    new_leader = await cluster.leader()
    assert new_leader.metrics().borrow().current_term > 1


async def test_external_request_runs_in_the_core(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    seen: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    leader.external_request(lambda st: seen.set_result((st.id, st.is_leader, st.server_state)))
    assert await asyncio.wait_for(seen, WAIT) == (leader.id, True, ServerState.LEADER)
    with pytest.raises(ZeroDivisionError):
        await leader.with_raft_state(lambda st: 1 / 0)
    assert (await leader.with_raft_state(lambda st: st.membership.voter_ids())) == {1, 2, 3}


async def test_runtime_config_stops_elections_and_heartbeats(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    followers = [r for r in cluster.nodes.values() if r is not leader]
    for f in followers:
        f.runtime_config().elect(False)
    cluster.router.isolate(leader.id)
    term = leader.metrics().borrow().current_term
    # with elections off nobody campaigns; the followers keep the old term
    with pytest.raises(WaitTimeout):
        await followers[0].wait(0.6).metrics(lambda m: m.current_term > term, "no election")
    for f in followers:
        f.runtime_config().elect(True)
    await followers[0].wait(WAIT).metrics(lambda m: m.current_term > term, "election after re-enabling")
    cluster.router.heal()


async def test_triggers_snapshot_and_purge(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    last = None
    for k in range(10):
        last = (await leader.client_write(b"s%d" % k)).log_id
    await leader.trigger().snapshot()
    m = await leader.wait(WAIT).metrics(lambda x: x.snapshot is not None and x.snapshot.index >= last.index,
                                        "snapshot built")
    await leader.trigger().purge_log(m.snapshot.index)
    m = await leader.wait(WAIT).metrics(lambda x: x.purged is not None, "purged")
    assert m.purged.index <= m.snapshot.index
    snap = await leader.get_snapshot()
    assert snap is not None and snap.meta.last_log_id == m.snapshot
    snap.snapshot.close()
    await leader.trigger().heartbeat()


async def test_deprecated_aliases_warn_and_work(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    with pytest.warns(DeprecationWarning):
        leader.enable_tick(True)
    with pytest.warns(DeprecationWarning):
        leader.enable_heartbeat(True)
    with pytest.warns(DeprecationWarning):
        leader.enable_elect(True)
    with pytest.warns(DeprecationWarning):
        await leader.is_leader()
    with pytest.warns(DeprecationWarning):
        await leader.trigger_heartbeat()
    with pytest.warns(DeprecationWarning):
        await leader.trigger_snapshot()
    await leader.wait(WAIT).metrics(lambda m: m.snapshot is not None, "snapshot")
    with pytest.warns(DeprecationWarning):
        await leader.purge_log(0)
    follower = next(r for r in cluster.nodes.values() if r is not leader)
    with pytest.raises(ForwardToLeader):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await follower.is_leader()
    with pytest.warns(DeprecationWarning):
        await follower.trigger_elect()
    await cluster.leader()


async def test_started_append_entries_are_handled_in_start_order_without_waiting() -> None:
    """`Raft.start_append_entries` hands each request to the node before it returns:
    three AppendEntries started back to back, each continuing the one before, all
    succeed (none waited for the previous answer), answered in order."""
    from raftx.errors import ProtocolError
    from raftx.messages import AppendEntriesRequest
    from raftx.types import Entry, Membership, Vote

    router = MemRouter()
    async with await Raft.new(2, fast_config(), MemNetworkFactory(router), MemLogStore(), MemStateMachine()) as raft:
        vote = Vote(1, 1, True)
        reqs = [
            AppendEntriesRequest(vote, None, [Entry(LogId(1, 0), Membership.new([1, 2]))], None),
            AppendEntriesRequest(vote, LogId(1, 0), [Entry(LogId(1, 1), b"a")], LogId(1, 0)),
            AppendEntriesRequest(vote, LogId(1, 1), [Entry(LogId(1, 2), b"b")], LogId(1, 1)),
        ]
        futs = [raft.start_append_entries(r) for r in reqs]
        answered: list[int] = []
        for i, f in enumerate(futs):
            f.add_done_callback(lambda _, i=i: answered.append(i))
        with pytest.raises(ProtocolError):
            raft.start_append_entries(b"not a request")  # type: ignore[arg-type]
        async with asyncio.timeout(WAIT):
            resps = await asyncio.gather(*futs)
        assert [r.success for r in resps] == [True, True, True] and answered == [0, 1, 2]
        assert raft.metrics().borrow().last_log_index == 2
