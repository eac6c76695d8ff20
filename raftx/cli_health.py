"""``raftx health`` and the verdict behind ``raftx status``'s exit code.

``raftx health --endpoints a,b,c`` asks each endpoint for its ``kv.status`` and exits 0
only when the cluster has a leader and a quorum of its voters answers (a majority of
the voters in the leader's membership, §5.2 / thesis §4.3 joint configurations
counted by their voters) and agrees on that leader; otherwise it exits 1 and says
why. It only sees the endpoints it is given: list every voter, or at least a quorum.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_health_command", "cluster_health", "endpoints_arg", "status_problems"]


def endpoints_arg(text: str) -> list[str]:
    """argparse type: ``a,b,c`` (``HOST:PORT`` or ``ID=HOST:PORT`` each)."""
    from raftx.cli import host_port

    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("no endpoint given")
    return [host_port(t) for t in items]


def status_problems(rows: list[dict[str, Any]]) -> list[str]:
    """Why ``raftx status`` exits 1: unreachable nodes, or no node that knows a leader."""
    problems = [f"{r['address']} unreachable: {r['error']}" for r in rows if not r["ok"]]
    if not any(r["ok"] and r.get("leader") is not None for r in rows):
        problems.append("no node that answered knows a leader")
    return problems


def cluster_health(rows: list[dict[str, Any]]) -> tuple[bool, str, dict[str, Any]]:
    """(healthy, one-line verdict, details) for the ``kv.status`` rows of the endpoints."""
    ok = [r for r in rows if r["ok"] and r.get("running", True)]
    leaders = [r for r in ok if r.get("state") == "Leader"]
    detail: dict[str, Any] = {"answered": [r["id"] for r in ok],
                              "unreachable": {r["address"]: r["error"] for r in rows if not r["ok"]}}
    if not ok:
        return False, f"no endpoint answered ({len(rows)} tried)", detail
    if not leaders:
        known = sorted({r["leader"] for r in ok if r.get("leader") is not None})
        why = (f"no endpoint is the leader (they name {known}; list the leader's address too)" if known
               else "no leader: no endpoint that answered knows one")
        return False, why, detail
    leader = max(leaders, key=lambda r: r["term"])  # a deposed leader may still answer in an older term
    voters = set(leader.get("members") or [])
    agree = sorted(r["id"] for r in ok if r["id"] in voters and r.get("leader") == leader["id"]
                   and r["term"] == leader["term"])
    quorum = len(voters) // 2 + 1
    detail.update(leader=leader["id"], term=leader["term"], voters=sorted(voters), quorum=quorum,
                  voters_agreeing=agree)
    if len(agree) < quorum:
        return False, (f"leader {leader['id']} (term {leader['term']}) but only {len(agree)} of "
                       f"{len(voters)} voters answered and follow it ({agree}); a quorum is {quorum}"), detail
    return True, (f"leader {leader['id']} (term {leader['term']}), {len(agree)} of {len(voters)} voters "
                  f"answered (quorum {quorum})"), detail


def cmd_health(args: argparse.Namespace) -> int:
    from raftx.cli import _credentials, _run_value, fetch_statuses

    ssl, _ = _credentials(args)
    endpoints = [e for group in args.endpoints for e in group]
    rows = _run_value(fetch_statuses(endpoints, args.cluster_name, args.timeout, ssl))
    healthy, verdict, detail = cluster_health(rows)
    if args.json:
        json.dump({"format": 1, "health": healthy, "reason": verdict, **detail}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        out = sys.stdout if healthy else sys.stderr
        out.write(f"{'healthy' if healthy else 'UNHEALTHY'}: {verdict}\n")
        for addr, err in detail["unreachable"].items():
            out.write(f"  {addr}: unreachable: {err}\n")
    return 0 if healthy else 1


def add_health_command(sub: Any, online_options: Any, client_options: Any) -> None:
    """Register ``raftx health`` on the ``raftx`` subparsers ``sub``."""
    p = sub.add_parser("health", help="exit 0 if the cluster has a leader and a quorum answers, else 1",
                       description="Ask each endpoint for its status; healthy when one is the leader and a "
                                   "majority of the leader's voters answer and follow it.")
    p.add_argument("-e", "--endpoints", type=endpoints_arg, action="append", required=True,
                   metavar="HOST:PORT[,HOST:PORT...]", help="the cluster's nodes (comma-separated; repeatable)")
    online_options(p)
    client_options(p)
    p.set_defaults(func=cmd_health)
