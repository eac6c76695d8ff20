"""The ``raftx`` command line.

* ``raftx`` prints the help; ``raftx info``: version, hot-path implementation in use
  and a quick self-benchmark of the compiled twins against the pure ones;
* ``raftx demo``: a 3-process cluster on 127.0.0.1 that loses its leader and recovers
  (`raftx.demo`);
* ``raftx serve``: one key-value node in the foreground (`raftx.kv.server`);
* ``raftx status HOST:PORT...``: each node's role, term, leader, log progress,
  membership and replication lag (exit 1 if a node is unreachable or no leader is known);
* ``raftx health --endpoints a,b,c``: exit 0 only with a leader and a quorum answering
  (`raftx.cli_health`);
* ``raftx put KEY VALUE`` / ``get KEY [--serializable]`` / ``del KEY``: etcdctl's verbs,
  through `raftx.kv.KVClient`;
* ``raftx member list|add|remove``: the membership of a running cluster (thesis §4.3);
* ``raftx bench``: a local multi-process cluster benchmark (`raftx.bench`);
* ``raftx inspect DATA_DIR``: look inside a data directory (`raftx.cli_inspect`);
* ``raftx certs --out DIR --nodes 1,2,3``: a CA and certificates for a test cluster
  (`raftx.network.tls.make_test_pki`).

Every command has ``--help``; output is for humans unless ``--json``. Every flag of
every command can be given as ``RAFTX_<FLAG>`` in the environment (`raftx.cli_config`;
a flag wins). Client commands take the nodes as ``--endpoints HOST:PORT[,...]``
(``-e``, repeatable; no node ids needed), ``--cluster-name`` (default ``raftx``) and
the client credentials of `raftx.cli_tls` (``--tls-cert/--tls-key/--tls-ca``;
``member`` also ``--admin-token-file``). Exit codes: 0 done, 1 failed (a node did not
answer, the change was refused; the message says why and, for ``member``, what state
the cluster is left in), 2 bad usage; ``raftx serve`` exits 70 at once when its node
stops with ``Fatal`` (e.g. a storage failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import re
import sys
import time
from collections.abc import Callable, Coroutine
from itertools import repeat
from typing import Any, TextIO

import raftx
from raftx import _core, cli_config
from raftx.cli_health import add_health_command, status_problems
from raftx.cli_tls import add_client_options
from raftx.config import DEFAULT_CLUSTER_NAME
from raftx.errors import ConfigError, RaftError

__all__ = ["main", "build_parser"]


def _rate(fn: Callable[[], Any], units: int, min_seconds: float = 0.2) -> float:
    """Units per second of ``fn`` (which processes ``units`` units), best of a few runs."""
    fn()  # warm up
    best = float("inf")
    deadline = time.perf_counter() + min_seconds
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return units / best if best > 0 else float("inf")


def self_benchmark(impls: list[str]) -> dict[str, dict[str, float]]:
    """Operations per second of the hot paths, per implementation, measured in one run."""
    entries = [(3, 1000 + i, 1, bytes(100)) for i in range(256)]
    matched = [10, 30, 20, 50, 40]
    from raftx.kv import kvcodec as kv_twins

    results: dict[str, dict[str, float]] = {}
    for impl in impls:
        m = _core.load(impl)
        codec, quorum, logindex = m["codec"], m["quorum"], m["logindex"]
        kvcodec = kv_twins.load(impl)["kvcodec"]
        buf = codec.encode_entries(entries)
        payloads = [e[3] for e in entries]
        puts = [kvcodec.encode_put(b"k%d" % i, bytes(100), 0, 0, 0) for i in range(256)]
        index = logindex.LogIndex()
        n = 100_000
        index.extend(0, [1 + i // 1000 for i in range(n)], 0, [i * 128 for i in range(n)], [128] * n)
        probes = [(i * 7919) % n for i in range(1000)]
        results[impl] = {
            "encode_entries/s": _rate(lambda: codec.encode_entries(entries), len(entries)),
            "decode_entries/s": _rate(lambda: codec.decode_entries(buf), len(entries)),
            "encode_normal/s": _rate(lambda: codec.encode_normal(3, 1000, payloads), len(payloads)),
            "kv_decode_put/s": _rate(lambda: list(map(kvcodec.decode_put, puts)), len(puts)),
            # map() keeps the interpreter's loop overhead out of the per-call figure.
            "committed_index/s": _rate(lambda: list(map(quorum.committed_index, repeat(matched, 1000))), 1000),
            "term_at/s": _rate(lambda: list(map(index.term_at, probes)), len(probes)),
            "locate/s": _rate(lambda: list(map(index.locate, probes)), len(probes)),
        }
    return results


def cmd_info(args: argparse.Namespace) -> int:
    impls = ["c", "py"] if _core.IMPLEMENTATION == "c" else ["py"]
    info: dict[str, Any] = {
        "version": raftx.__version__,
        "implementation": _core.IMPLEMENTATION,
        "fallback_reason": _core.FALLBACK_REASON,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if not args.no_bench:
        info["benchmark"] = self_benchmark(impls)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write(f"raftx {info['version']}  implementation={info['implementation']}  "
              f"python={info['python']}  {info['platform']}\n")
    if _core.IMPLEMENTATION != "c":
        out.write(f"compiled hot paths not in use: {_core.FALLBACK_REASON}\n")
    bench = info.get("benchmark")
    if bench:
        out.write(f"\n{'hot path':<20}" + "".join(f"{impl:>16}" for impl in impls)
                  + ("       c / py" if len(impls) == 2 else "") + "\n")
        for key in bench[impls[0]]:
            row = f"{key:<20}" + "".join(f"{bench[impl][key]:>16,.0f}" for impl in impls)
            if len(impls) == 2:
                row += f"{bench['c'][key] / bench['py'][key]:>12.1f}x"
            out.write(row + "\n")
    return 0


# -- online commands: status, member ------------------------------------------------------


def host_port(text: str) -> str:
    """argparse type: a ``HOST:PORT`` address (``ID=HOST:PORT`` is accepted too)."""
    from raftx.kv.client import parse_client_addrs

    try:
        parse_client_addrs([text])
    except RaftError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


async def fetch_statuses(addrs: list[str], cluster_name: str, timeout: float,
                         ssl: Any = None) -> list[dict[str, Any]]:
    """``kv.status`` of each address, in order: ``{"address", "ok", "error", ...status}``.

    A node that does not answer within ``timeout`` seconds gets ``ok: False`` and the
    reason; ``lag`` (entries the leader has that the node has not matched, §5.3) is
    filled in from the leader's replication progress when the leader is among them.
    ``ssl``: a client `ssl.SSLContext` for nodes that run TLS.
    """
    from raftx.kv.client import KVClient

    async def one(addr: str) -> dict[str, Any]:
        kv = KVClient([addr], cluster_name=cluster_name, timeout=timeout, attempt_timeout=timeout, ssl=ssl)
        try:
            return {"address": addr, "ok": True, "error": None, **await kv.status()}
        except RaftError as exc:
            return {"address": addr, "ok": False, "error": error_text(exc)}
        finally:
            await kv.close()

    rows = list(await asyncio.gather(*(one(a) for a in addrs)))
    leader = next((r for r in rows if r["ok"] and r.get("state") == "Leader" and r.get("replication") is not None),
                  None)
    matched = dict(map(tuple, leader["replication"])) if leader else {}
    for r in rows:
        r["lag"] = None
        if leader is not None and r["ok"]:
            if r["id"] == leader["id"]:
                r["lag"] = 0
            elif r["id"] in matched:
                m = matched[r["id"]]
                r["lag"] = leader["last_log_index"] - (-1 if m is None else m)
    return rows


def error_text(exc: BaseException) -> str:
    """What went wrong, for a person: a refused hello (a wrong cluster name, ...) says
    so; other errors keep their type and whole message."""
    from raftx.errors import HandshakeRejected

    if isinstance(exc, HandshakeRejected):
        return f"refused: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _run_value(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _members_text(st: dict[str, Any]) -> str:
    text = ",".join(map(str, st.get("members") or [])) or "-"
    learners = st.get("learners") or []
    return text + (f" +learners {','.join(map(str, learners))}" if learners else "")


def _cell(v: Any) -> str:
    return "-" if v is None else str(v)


def print_status_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    """The human ``raftx status`` table (one row per address)."""
    head = ["ADDRESS", "ID", "STATE", "TERM", "LEADER", "LAST LOG", "COMMITTED", "APPLIED", "LAG", "MEMBERS"]
    table = [head]
    for r in rows:
        if r["ok"]:
            table.append([r["address"], _cell(r["id"]), r["state"], _cell(r["term"]), _cell(r["leader"]),
                          _cell(r["last_log_index"]), _cell(r["committed"]), _cell(r["last_applied"]),
                          _cell(r["lag"]), _members_text(r)])
        else:
            table.append([r["address"], "-", "UNREACHABLE", "", "", "", "", "", "", r["error"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")


def _credentials(args: argparse.Namespace) -> tuple[Any, bytes | None]:
    from raftx.cli_tls import client_credentials

    return client_credentials(args)


def cmd_status(args: argparse.Namespace) -> int:
    addrs = list(dict.fromkeys([*args.addrs, *(args.endpoints or [])]))
    if not addrs:
        args.usage_error("give the nodes to ask: HOST:PORT... or --endpoints HOST:PORT[,...]")
    ssl, _ = _credentials(args)
    rows = _run_value(fetch_statuses(addrs, args.cluster_name, args.timeout, ssl))
    problems = status_problems(rows)  # exit 1: a node unreachable or no leader known
    if args.json:  # the reasons in the document, nothing on stderr
        json.dump({"format": 1, "nodes": rows, "problems": problems}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_status_table(rows, sys.stdout)
        for p in problems:
            sys.stderr.write(f"raftx status: {p}\n")
    return 1 if problems else 0


def _membership_view(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The leader's membership if it answered, else the first node's that did."""
    ok = [r for r in rows if r["ok"]]
    lead = [r for r in ok if r.get("state") == "Leader"]
    return (lead or ok)[0] if ok else None


def _print_membership(view: dict[str, Any], out: TextIO) -> None:
    leader = view.get("leader")
    voters = set(view.get("members") or [])
    out.write(f"{'ID':>6}  {'ROLE':<8}  {'ADDRESS':<24}  LEADER\n")
    for node_id, addr in view.get("nodes") or []:
        role = "voter" if node_id in voters else "learner"
        out.write(f"{node_id:>6}  {role:<8}  {addr:<24}  {'*' if node_id == leader else ''}\n")


def cmd_member(args: argparse.Namespace) -> int:
    from raftx.kv.client import KVClient

    ssl, token = _credentials(args)
    if args.action == "list":
        rows = _run_value(fetch_statuses(args.endpoints, args.cluster_name, args.timeout, ssl))
        view = _membership_view(rows)
        if view is None:
            sys.stderr.write("raftx member: no node answered: "
                             + "; ".join(f"{r['address']}: {r['error']}" for r in rows) + "\n")
            return 1
        if args.json:
            json.dump({"format": 1, "leader": view.get("leader"), "members": view.get("members"),
                       "learners": view.get("learners"), "nodes": view.get("nodes"),
                       "seen_by": view["id"]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            _print_membership(view, sys.stdout)
        return 0

    async def change() -> dict[str, Any]:
        async with KVClient(args.endpoints, cluster_name=args.cluster_name, timeout=args.timeout,
                            attempt_timeout=min(args.timeout, 3.0), ssl=ssl, admin_token=token) as kv:
            if args.action == "add":
                return await kv.member_add(args.node_id, args.addr, timeout=args.timeout)
            before = await kv.status()  # the leader's view when it is known
            if all(i != args.node_id for i, _ in before.get("nodes") or []):
                raise _NotAMember(f"node {args.node_id} is not a member of the cluster; nothing changed "
                                  f"(members: {_members_text(before)})")
            return await kv.member_remove(args.node_id, timeout=args.timeout)

    try:
        view = _run_value(change())
    except _NotAMember as exc:
        sys.stderr.write(f"raftx member remove: {exc}\n")
        return 1
    except RaftError as exc:
        sys.stderr.write(f"raftx member {args.action}: {error_text(exc)}\n{_left_in(args, ssl)}\n")
        return 1
    if args.json:
        json.dump({"format": 1, **view}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        verb = "added as a voter" if args.action == "add" else "removed"
        sys.stdout.write(f"node {args.node_id} {verb}; membership now:\n")
        _print_membership(view, sys.stdout)
    return 0


class _NotAMember(RaftError):
    """``member remove`` of a node that is not in the membership."""


def _left_in(args: argparse.Namespace, ssl: Any) -> str:
    """After a failed ``member add/remove``: the state the cluster is left in, as far
    as the endpoints tell (the change may have been partly made, e.g. a learner added
    that never caught up)."""
    rows = _run_value(fetch_statuses(args.endpoints, args.cluster_name, min(args.timeout, 3.0), ssl))
    view = _membership_view(rows)
    if view is None:
        return "the cluster's state is unknown: no endpoint answered"
    nodes = dict(map(tuple, view.get("nodes") or []))
    i = args.node_id
    if i in (view.get("learners") or []):
        where = (f"node {i} is a LEARNER now (it was added but not promoted to voter); retry the add, or undo it "
                 f"with: raftx member remove {i}")
    elif i in (view.get("members") or []):
        where = f"node {i} is a voter ({nodes.get(i)})"
    elif i in nodes:
        where = f"node {i} is still listed ({nodes.get(i)})"
    else:
        where = f"node {i} is not in the membership"
    return f"cluster left with voters {view.get('members')}, learners {view.get('learners')}: {where}"


async def _kv(args: argparse.Namespace, ssl: Any) -> Any:
    from raftx.kv.client import KVClient

    async with KVClient(args.endpoints, cluster_name=args.cluster_name, timeout=args.timeout,
                        attempt_timeout=min(args.timeout, 3.0), ssl=ssl) as kv:
        if args.command == "put":
            await kv.put(args.key, args.value)
            return None
        if args.command == "get":
            return await kv.get(args.key, linearizable=not args.serializable)
        return await kv.delete(args.key)


def cmd_kv(args: argparse.Namespace) -> int:
    """``raftx put KEY VALUE`` / ``get KEY`` / ``del KEY`` (etcdctl's verbs)."""
    ssl, _ = _credentials(args)
    try:
        result = _run_value(_kv(args, ssl))
    except RaftError as exc:
        sys.stderr.write(f"raftx {args.command}: {error_text(exc)}\n")
        return 1
    if args.json:
        doc: dict[str, Any] = {"format": 1, "key": args.key}
        if args.command == "get":
            doc["value"] = None if result is None else result.decode("utf-8", "backslashreplace")
        elif args.command == "del":
            doc["deleted"] = 1 if result else 0  # delete answers the revision (0: no such key)
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    elif args.command == "put":
        sys.stdout.write("OK\n")
    elif args.command == "get":
        if result is not None:
            sys.stdout.flush()
            sys.stdout.buffer.write(result + b"\n")
            sys.stdout.buffer.flush()
    else:
        sys.stdout.write(f"{1 if result else 0}\n")
    return 0


# -- delegated commands ------------------------------------------------------------------


def _delegate(module: str) -> Callable[[list[str]], int]:
    """Run ``module.main(argv)``; argparse's exits (``--help``, bad usage) become exit codes."""

    def run(argv: list[str]) -> int:
        import importlib

        try:
            return int(importlib.import_module(module).main(argv))
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except KeyboardInterrupt:
            return 130

    return run


# Subcommands with their own argument parsers: everything after the name is theirs.
DELEGATED: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "inspect": (_delegate("raftx.cli_inspect"),
                "examine a data directory (segments, vote, snapshots); --verify, --dump"),
    "serve": (_delegate("raftx.kv.server"),
              "run one key-value node in the foreground: --id N --listen HOST:PORT --peer ID=HOST:PORT "
              "--data-dir DIR [--init]"),
    "demo": (_delegate("raftx.demo"),
             "3 local node processes: write, kill the leader, fail over, restart, check no write was lost"),
    "bench": (_delegate("raftx.bench"),
              "benchmark a local multi-process cluster (writes/s, latency percentiles, CPU, fsyncs); --vs pysyncobj"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftx",
        description="raftx: Raft consensus for Python. 'raftx info' shows the version and a self-benchmark. "
                    "Every --flag of every command can also be set as RAFTX_<FLAG> in the environment "
                    "(e.g. RAFTX_ENDPOINTS, RAFTX_CLUSTER_NAME); a flag given wins.",
    )
    parser.add_argument("--version", action="version", version=f"raftx {raftx.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="version, implementation in use and a quick self-benchmark")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--no-bench", action="store_true", help="skip the self-benchmark")
    info.set_defaults(func=cmd_info)

    status = sub.add_parser("status", help="each node's role, term, leader, log progress, membership, lag",
                            description="Ask each node (plain HOST:PORT, no node id needed) for its status.")
    status.add_argument("addrs", nargs="*", type=host_port, metavar="HOST:PORT",
                        help="nodes to ask (or --endpoints)")
    _endpoints_option(status, required=False)
    _online_options(status)
    add_client_options(status)
    status.set_defaults(func=cmd_status, usage_error=status.error)

    for verb, text in (("put", "set KEY to VALUE (committed when it returns)"),
                       ("get", "print the value of KEY (nothing if absent)"),
                       ("del", "delete KEY; prints 1 if it existed, else 0")):
        kv = sub.add_parser(verb, help=text, description=f"{text[0].upper()}{text[1:]}; through the leader "
                                                          "(a follower redirects), as etcdctl's verb of that name.")
        kv.add_argument("key", metavar="KEY")
        if verb == "put":
            kv.add_argument("value", metavar="VALUE")
        if verb == "get":
            kv.add_argument("--serializable", action="store_true",
                            help="answer from any node's applied state (may be stale; default: linearizable)")
        _endpoints_option(kv)
        _online_options(kv)
        add_client_options(kv)
        kv.set_defaults(func=cmd_kv)
    add_health_command(sub, _online_options, add_client_options)

    member = sub.add_parser("member", help="list, add or remove cluster members (thesis §4.3)",
                            description="Membership of a running cluster. add: the leader adds the node as a "
                                        "learner, waits until it caught up, then makes it a voter (joint "
                                        "consensus); remove: a membership change without it.")
    actions = member.add_subparsers(dest="action", metavar="ACTION", required=True)
    m_list = actions.add_parser("list", help="members, learners and their addresses")
    m_add = actions.add_parser("add", help="add a node (running, pristine: started without --init)")
    m_add.add_argument("node_id", type=_node_id, metavar="ID")
    m_add.add_argument("addr", type=host_port, metavar="HOST:PORT", help="the new node's --listen address")
    m_rm = actions.add_parser("remove", help="remove a node (voter or learner)")
    m_rm.add_argument("node_id", type=_node_id, metavar="ID")
    for p in (m_list, m_add, m_rm):
        _endpoints_option(p)
        _online_options(p, timeout=60.0 if p is not m_list else 3.0)
        add_client_options(p, admin=p is not m_list)
    member.set_defaults(func=cmd_member)

    certs = sub.add_parser("certs", help="make a CA and node/admin/client certificates for a test cluster",
                           description="Write ca.pem, node<ID>.pem (raftx-node-<ID> plus the --host SANs), "
                                       "admin.pem (raftx-admin) and client.pem with their .key files to --out. "
                                       "An existing ca.pem/ca.key there is reused. For tests and trials; see "
                                       "SECURITY.md for production.")
    certs.add_argument("--out", required=True, metavar="DIR", help="directory to write to")
    certs.add_argument("--nodes", required=True, type=_node_ids, metavar="ID[,ID...]", help="node ids, e.g. 1,2,3")
    certs.add_argument("--host", action="append", metavar="HOST", dest="hosts",
                       help="a DNS name or IP address the nodes are reached at (repeat; default 127.0.0.1 "
                            "and localhost)")
    certs.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    certs.set_defaults(func=cmd_certs)

    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _node_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"node id must be an integer in 0..2**63-1, not {text!r}")
    return value


def _node_ids(text: str) -> list[int]:
    return [_node_id(t.strip()) for t in text.split(",")]


def cmd_certs(args: argparse.Namespace) -> int:
    from raftx.network.tls import make_test_pki

    if args.days < 1:
        sys.stderr.write("raftx certs: --days must be >= 1\n")
        return 2
    try:
        pki = make_test_pki(args.out, args.nodes, hosts=args.hosts or ("127.0.0.1", "localhost"), days=args.days)
    except RaftError as exc:
        sys.stderr.write(f"raftx certs: {exc}\n")
        return 1
    out = sys.stdout
    out.write(f"CA: {pki.ca}\n")
    for i, (cert, key) in pki.nodes.items():
        out.write(f"node {i}: {cert} {key}\n")
    out.write(f"admin: {pki.admin[0]} {pki.admin[1]}\nclient: {pki.client[0]} {pki.client[1]}\n")
    return 0


def endpoint_list(text: str) -> list[str]:
    """argparse type: ``HOST:PORT[,HOST:PORT...]``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT[,HOST:PORT...], not {text!r}")
    return [host_port(t) for t in items]


def _endpoints_option(p: argparse.ArgumentParser, required: bool = True) -> None:
    # One option, comma-separated and repeatable (-e a,b -e c); it takes one argument, so
    # it never swallows the positionals after it (it used to be nargs="+").
    p.add_argument("-e", "--endpoints", type=endpoint_list, action="extend", required=required,
                   metavar="HOST:PORT[,...]", help="nodes of the cluster, comma-separated (env RAFTX_ENDPOINTS)")


def _online_options(p: argparse.ArgumentParser, timeout: float = 3.0) -> None:
    p.add_argument("--cluster-name", default=DEFAULT_CLUSTER_NAME,
                   help=f"the nodes' --cluster-name (default {DEFAULT_CLUSTER_NAME!r})")
    p.add_argument("--timeout", type=float, default=timeout, help=f"seconds to wait (default {timeout:g})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-v", "--verbose", action="store_true", help="log connection attempts to stderr")


_HOST_PORT = re.compile(r"^[^\s=,]+:\d+$")


def _old_endpoints_spelling(argv: list[str]) -> list[str]:
    """``member ... -e A B C`` (the old nargs="+" form) as ``-e A,B,C``: the HOST:PORT
    words right after an ``-e`` value join it. Only for ``member``, which had that
    form and takes no HOST:PORT positional after it."""
    if not argv or argv[0] != "member":
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] in ("-e", "--endpoints") and i + 1 < len(argv):
            values = [argv[i + 1]]
            i += 2
            while i < len(argv) and _HOST_PORT.match(argv[i]):
                values.append(argv[i])
                i += 1
            out.append(",".join(values))
            continue
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][0](argv[1:])
    argv = _old_endpoints_spelling(argv)
    parser = build_parser()
    if not argv:
        cli_config.plain_help(parser)
        parser.print_help()
        return 0
    if argv[0] in ("--json", "--no-bench"):
        argv = ["info", *argv]  # the old spelling of `raftx info --json`
    try:
        args = cli_config.parse_args(parser, argv)  # flags over RAFTX_<FLAG> over defaults
    except SystemExit as exc:  # --help / --version / bad usage
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "verbose", None) is not None:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.CRITICAL,
                            format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except SystemExit as exc:  # a usage error found after parsing (parser.error)
        return exc.code if isinstance(exc.code, int) else 2
    except ConfigError as exc:  # unusable --tls-* / --admin-token-file files
        sys.stderr.write(f"raftx {args.command}: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
