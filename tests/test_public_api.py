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
    " LeaseNotFound Compacted",
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


@pytest.mark.parametrize("name", ["FaultInjector", "SimulatedCrash"])
def test_crash_simulator_moved_to_testing_and_old_name_still_imports(name: str) -> None:
    """The crash simulator lives in `raftx.testing`; ``raftx.storage.<name>`` (its old,
    documented home) is the same object, with a DeprecationWarning."""
    import raftx.storage
    import raftx.testing

    with pytest.warns(DeprecationWarning, match=f"raftx.storage.{name} is deprecated"):
        old = getattr(raftx.storage, name)
    assert old is getattr(raftx.testing, name)
    assert name not in raftx.storage.__all__


def test_storage_has_no_other_lazy_names() -> None:
    import raftx.storage

    with pytest.raises(AttributeError):
        raftx.storage.NoSuchName  # type: ignore[attr-defined]  # noqa: B018


def test_one_default_cluster_name() -> None:
    """The library, its stores, the client and the tools agree on the cluster name when none
    is given (a node refuses a peer or client with another one, a log written under
    another one refuses to open)."""
    from raftx import Config
    from raftx.cli import build_parser as cli_parser
    from raftx.config import DEFAULT_CLUSTER_NAME
    from raftx.kv import KVClient
    from raftx.kv.server import build_parser as serve_parser
    from raftx.storage import SegmentedLogStore

    def default(fn: object) -> object:
        return inspect.signature(fn).parameters["cluster_name"].default  # type: ignore[arg-type]

    assert DEFAULT_CLUSTER_NAME == "raftx"
    assert Config().cluster_name == DEFAULT_CLUSTER_NAME
    assert default(SegmentedLogStore) == default(KVClient) == DEFAULT_CLUSTER_NAME
    serve_args = ["--id", "1", "--listen", "127.0.0.1:1", "--data-dir", "d"]
    assert serve_parser().parse_args(serve_args).cluster_name == DEFAULT_CLUSTER_NAME
    assert cli_parser().parse_args(["status", "127.0.0.1:1"]).cluster_name == DEFAULT_CLUSTER_NAME


def test_every_config_field_is_read_by_the_library() -> None:
    """A `Config` field nothing reads is a knob that does nothing (``max_append_entries``
    was one: openraft's storage-append merge limit, which raftx never had)."""
    import dataclasses
    import re
    from pathlib import Path

    from raftx import Config

    root = Path(inspect.getfile(Config)).parent
    sources = [p.read_text() for p in root.rglob("*.py") if p.name != "config.py"]
    unused = [f.name for f in dataclasses.fields(Config)
              if not any(re.search(rf"\b{f.name}\b", text) for text in sources)]
    assert not unused, f"Config fields nothing outside raftx/config.py reads: {unused}"
