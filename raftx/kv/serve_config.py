"""``raftx serve``'s deployment options and the node plan made from them.

* ``--advertise HOST:PORT``: the address peers and clients reach this node at, the
  one that goes into the membership (``--init``) and the logs. Default: the
  ``--listen`` address; a wildcard listen address (``0.0.0.0``, ``::``) needs an
  explicit ``--advertise`` (a peer cannot dial ``0.0.0.0``).
* ``--config FILE``: a TOML file of flags (`raftx.cli_config`) plus a ``[raft]``
  table of `raftx.Config` fields that have no flag of their own, e.g.
  ``max_payload_entries`` or ``max_snapshot_bytes``.
* ``--check-config``: validate everything (addresses, peers, Config, TLS files) and
  print the effective configuration as JSON, without opening the data directory.
* ``--pre-vote`` / ``--no-pre-vote``: `Config.enable_pre_vote` (thesis §9.6), on by
  default as in etcd 3.5+.
* the connection budgets of `raftx.network.server.RpcServer` (``--max-connections``
  ...), defaults taken from its signature so they stay in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raftx.config import Config, SnapshotPolicy
from raftx.errors import ConfigError, RaftError
from raftx.kv.client import parse_addrs
from raftx.network.raft_rpc import parse_addr
from raftx.network.server import RpcServer

__all__ = ["BUDGETS", "FLAG_FIELDS", "MAX_PAYLOAD_ENTRIES", "NodePlan", "add_options", "effective_config",
           "is_wildcard", "make_plan"]

#: Entries per AppendEntries for a served node (`Config.max_payload_entries`):
#: one full leader batch (`Config.api_batch_capacity`) per frame. openraft's default
#: of 300 cuts a busy leader's batch into many frames, and in Python each frame costs
#: the leader and every follower a fixed overhead (and the follower an fsync).
MAX_PAYLOAD_ENTRIES = 4096

#: RpcServer keyword arguments exposed as ``raftx serve`` flags (name → help).
BUDGETS: dict[str, str] = {
    "max_connections": "accepted non-member connections (clients); over it a hello is refused",
    "max_pending_connections": "connections still in their hello; one more closes the oldest",
    "max_connections_per_member": "connections per member; a new one closes that member's oldest",
    "max_client_requests": "requests in flight per client connection",
    "client_idle_timeout": "seconds after which an idle non-member connection is closed",
    "hello_timeout": "seconds a new connection has to send its hello",
    "max_receive_buffer_bytes": "bytes received and not yet answered, all connections together",
    "max_request_errors": "bad requests on one connection before it is closed",
}

#: Config fields that ``raftx serve`` sets from its own flags (not from ``[raft]``).
FLAG_FIELDS: dict[str, str] = {
    "cluster_name": "cluster-name", "heartbeat_interval": "heartbeat-ms",
    "election_timeout_min": "election-timeout-ms", "election_timeout_max": "election-timeout-ms",
    "snapshot_policy": "snapshot-every", "max_in_snapshot_log_to_keep": "snapshot-keep-log",
    "allow_log_reversion": "allow-log-reversion", "enable_pre_vote": "pre-vote / no-pre-vote",
}


def _budget_defaults() -> dict[str, Any]:
    params = inspect.signature(RpcServer.__init__).parameters
    return {name: params[name].default for name in BUDGETS}


def add_options(ap: argparse.ArgumentParser) -> None:
    """Add the options of the module docstring to ``raftx serve``'s parser."""
    ap.add_argument("--advertise", metavar="HOST:PORT",
                    help="the address peers and clients reach this node at, written into the membership "
                         "(default: --listen; required when --listen is a wildcard such as 0.0.0.0)")
    ap.add_argument("--config", type=Path, metavar="FILE",
                    help="a TOML file of these flags (keys without dashes) and a [raft] table of Config fields; "
                         "precedence: flag > RAFTX_<FLAG> environment > file > default")
    ap.add_argument("--check-config", action="store_true",
                    help="validate the configuration, print it as JSON and exit without starting")
    ap.add_argument("--pre-vote", action=argparse.BooleanOptionalAction, default=True,
                    help="pre-vote before campaigning (thesis 9.6): a node that cannot win does not "
                         "disturb the cluster (default: on)")
    g = ap.add_argument_group("connection budgets", "limits of the node's TCP server (raftx.network.server)")
    for name, default in _budget_defaults().items():
        g.add_argument("--" + name.replace("_", "-"), type=type(default), default=default, metavar="N",
                       help=f"{BUDGETS[name]} (default {default})")


def is_wildcard(host: str) -> bool:
    """Whether ``host`` is a wildcard (any-interface) address."""
    if host in ("", "*"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


@dataclass
class NodePlan:
    """What ``raftx serve`` will run: validated, nothing opened yet."""

    node_id: int
    host: str
    port: int
    #: ``HOST:PORT`` for the membership; None: the listen host and the bound port.
    advertise: str | None
    peers: dict[int, str]
    config: Config
    server_options: dict[str, Any] = field(default_factory=dict)
    #: ``--metrics-addr`` as (host, port): the HTTP /health, /ready, /metrics listener.
    metrics: tuple[str, int] | None = None

    def advertised(self, bound_port: int) -> str:
        """The advertised address once the server is bound (on ``bound_port``)."""
        return self.advertise if self.advertise is not None else f"{self.host}:{bound_port}"


def _addr(text: str, flag: str) -> tuple[str, int]:
    try:
        return parse_addr(text)
    except RaftError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _raft_fields(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [raft] must be a table of Config fields")
    known = {f.name: f for f in dataclasses.fields(Config)}
    defaults = Config()
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in FLAG_FIELDS:
            raise ConfigError(f"{where}: [raft] {key} is set by the flag {FLAG_FIELDS[key]} (use that key)")
        if key not in known:
            raise ConfigError(f"{where}: [raft] {key} is not a Config field")
        want = type(getattr(defaults, key))
        if type(value) is not want:
            raise ConfigError(f"{where}: [raft] {key} must be {want.__name__}, not {value!r}")
        out[key] = value
    return out


def make_plan(args: argparse.Namespace, raft_table: Any = None, where: str = "--config") -> NodePlan:
    """Validate ``raftx serve``'s arguments into a `NodePlan` (`ConfigError` if unusable)."""
    if args.id < 0:
        raise ConfigError(f"--id must be >= 0, not {args.id}")
    host, port = _addr(args.listen, "--listen")
    advertise = args.advertise
    if advertise is not None:
        a_host, a_port = _addr(advertise, "--advertise")
        if is_wildcard(a_host) or a_port == 0:
            raise ConfigError(f"--advertise {advertise}: must be an address others can dial (no wildcard, no port 0)")
    elif is_wildcard(host):
        raise ConfigError(f"--listen {args.listen} is a wildcard address: peers and clients cannot dial it; "
                          "give --advertise HOST:PORT (the address they reach this node at)")
    try:
        peers = {i: a for i, a in parse_addrs(args.peer).items()} if args.peer else {}
    except RaftError as exc:
        raise ConfigError(f"--peer: {exc}") from None
    if args.id in peers:
        raise ConfigError(f"--peer lists this node's own id {args.id}")
    lo, hi = args.election_timeout_ms
    fields_: dict[str, Any] = {"max_payload_entries": MAX_PAYLOAD_ENTRIES,
                               **(_raft_fields(raft_table, where) if raft_table is not None else {})}
    config = Config(cluster_name=args.cluster_name, heartbeat_interval=args.heartbeat_ms,
                    election_timeout_min=lo, election_timeout_max=hi,
                    snapshot_policy=SnapshotPolicy(args.snapshot_every),
                    max_in_snapshot_log_to_keep=args.snapshot_keep_log,
                    allow_log_reversion=args.allow_log_reversion, enable_pre_vote=args.pre_vote,
                    **fields_).validate()
    options = {name: getattr(args, name) for name in BUDGETS}
    try:  # RpcServer's own checks, before anything is opened
        RpcServer(_no_handler, host, port, cluster_name=config.cluster_name, node_id=args.id,
                  max_frame_bytes=config.max_frame_bytes, **options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    metrics_addr = getattr(args, "metrics_addr", None)
    metrics = _addr(metrics_addr, "--metrics-addr") if metrics_addr else None
    return NodePlan(args.id, host, port, advertise, peers, config, options, metrics)


async def _no_handler(sender: int, method: str, payload: memoryview) -> bytes:
    raise AssertionError("never served: the server is only built to check its options")


def _jsonable(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, SnapshotPolicy):
        return v.logs_since_last
    return v


def effective_config(plan: NodePlan, args: argparse.Namespace, sources: dict[str, str],
                     config_file: Path | None) -> dict[str, Any]:
    """``--check-config``'s JSON document: every option's value and source, the node's
    advertised address, peers, the Raft Config and the server budgets."""
    return {
        "format": 1,
        "config_file": None if config_file is None else str(config_file),
        "node": {"id": plan.node_id, "listen": f"{plan.host}:{plan.port}",
                 "advertise": plan.advertise or f"{plan.host}:{plan.port}",
                 "peers": {str(i): a for i, a in sorted(plan.peers.items())}},
        "options": {k: _jsonable(v) for k, v in sorted(vars(args).items()) if k not in ("check_config", "config")},
        "sources": dict(sorted(sources.items())),
        "raft": {f.name: _jsonable(getattr(plan.config, f.name)) for f in dataclasses.fields(Config)},
        "server": plan.server_options,
    }
