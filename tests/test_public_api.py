"""The public names (the API reference, docs/api/) stay importable; a rename keeps the old name working."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = {
    "raftx": "__version__ Config BasicNode ServerState LogId Vote LeaderId Entry Membership StoredMembership "
    "SnapshotMeta Snapshot ChangeMembers ClientWriteResponse RaftMetrics Raft ReadPolicy",
    "raftx.errors": "RaftError ForwardToLeader Fatal ClientWriteError ChangeMembershipError InProgress "
    "EmptyMembership LearnerNotFound InitializeError NotAllowed NotInMembers QuorumNotEnough RPCError Timeout "
    "Unreachable NetworkError RemoteError StorageError ConfigError ProtocolError NotAuthorized"
    " LeaseNotFound Compacted ElectionNotLeader",
    "raftx.storage": "RaftLogStorage RaftLogReader RaftStateMachine RaftSnapshotBuilder SegmentedLogStore "
    "MemLogStore SqliteLogStore",
    "raftx.network": "RaftNetworkFactory RaftNetwork TcpNetworkFactory RaftServer MemRouter",
    "raftx.kv": "KVStateMachine KVClient Compare Op Event Watch",
    "raftx.kv.concurrency": "Lock Election",
    "raftx.testing": "run_log_store_suite",
    "raftx.testing.linearizability": "History check_operations TXN_KV",
    "raftx._core": "IMPLEMENTATION",
}

RAFT_COROUTINES = (
    "new initialize is_initialized client_write client_write_ff client_write_many ensure_linearizable "
    "get_read_log_id add_learner change_membership current_leader append_entries vote install_full_snapshot "
    "begin_receiving_snapshot get_snapshot with_raft_state shutdown"
).split()
RAFT_METHODS = "metrics data_metrics server_metrics wait runtime_config trigger external_request".split()
DEPRECATED = ("enable_tick enable_heartbeat enable_elect trigger_elect trigger_heartbeat trigger_snapshot "
              "purge_log is_leader install_snapshot").split()


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_importable(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in PUBLIC[module].split() if not hasattr(mod, name)]
    assert not missing, f"{module} lacks {missing}"


def test_errors_derive_from_raft_error() -> None:
    errors = importlib.import_module("raftx.errors")
    for name in PUBLIC["raftx.errors"].split():
        assert issubclass(getattr(errors, name), errors.RaftError), name


def test_raft_has_openraft_methods() -> None:
    from raftx import Raft

    for name in RAFT_COROUTINES:
        assert inspect.iscoroutinefunction(getattr(Raft, name)), f"Raft.{name} must be a coroutine function"
    for name in RAFT_METHODS + DEPRECATED:
        assert callable(getattr(Raft, name)), name
    assert isinstance(inspect.getattr_static(Raft, "config"), property)
    assert hasattr(Raft, "__aenter__") and hasattr(Raft, "__aexit__")


def test_server_state_members() -> None:
    from raftx import ServerState

    assert {s.name for s in ServerState} == {"LEARNER", "FOLLOWER", "CANDIDATE", "LEADER", "SHUTDOWN"}
