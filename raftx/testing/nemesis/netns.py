"""Network namespaces for a nemesis cluster: one per node, joined by a bridge.

Layout (all names carry one random tag, so parallel runs never collide, and
`Network.close` deletes exactly what this run created)::

    root namespace            hub namespace "rxn<tag>-hub"           node namespaces "rxn<tag>-<i>"
    rxn<tag>c (198.18.T.254) ── rxn<tag>ch ── br0 ── rxn<tag>h<i> ── eth0 (198.18.T.<i>)

Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking) only. A partition
(`isolate`) puts a ``pfifo limit 0`` qdisc on both ends of a node's link: every
packet to and from the node is dropped silently (a black hole, not a refused
connection), which is what a cut cable or a dead switch port looks like; `heal`
removes them. Needs root, ``ip`` (with ``netns``) and ``tc``: `unavailable_reason`
says why not when they are missing.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
from collections.abc import Iterable, Sequence

__all__ = ["Network", "unavailable_reason"]

logger = logging.getLogger(__name__)


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise OSError(f"{' '.join(argv)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be used here (None: they can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network partitions need root (network namespaces, veth pairs, tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"network partitions need the {tool!r} command (iproute2)"
    probe = f"rxnprobe{os.getpid() % 100000}"
    out = _run(["ip", "netns", "add", probe], check=False)
    if out.returncode != 0:
        return f"'ip netns add' is not permitted here: {out.stderr.strip()}"
    _run(["ip", "netns", "del", probe], check=False)
    return None


class Network:
    """The namespaces, links and bridge of one nemesis cluster (module docstring)."""

    def __init__(self, node_ids: Iterable[int]) -> None:
        self.node_ids = sorted(node_ids)
        if not self.node_ids or min(self.node_ids) < 1 or max(self.node_ids) > 250:
            raise ValueError("node ids must be in 1..250")
        # Names and the subnet come from the OS, not the seeded rng: two runs of the same
        # seed at once (two checkouts, a CI run beside a developer's) must not collide.
        own = random.SystemRandom()
        self.tag = f"{own.randrange(16 ** 4):04x}"
        self.subnet = own.randrange(1, 255)  # 198.18.<subnet>.0/24
        self.hub = f"rxn{self.tag}-hub"
        self.client_link = f"rxn{self.tag}c"
        self._namespaces: list[str] = []
        self._isolated: set[int] = set()
        self._up = False

    def ns(self, i: int) -> str:
        """The namespace of node ``i``."""
        return f"rxn{self.tag}-{i}"

    def addr(self, i: int) -> str:
        """Node ``i``'s IPv4 address."""
        return f"198.18.{self.subnet}.{i}"

    def _hub_side(self, i: int) -> str:
        return f"rxn{self.tag}h{i}"

    def exec_prefix(self, i: int) -> list[str]:
        """Prefix an argv with this to run it inside node ``i``'s namespace."""
        return ["ip", "netns", "exec", self.ns(i)]

    def open(self) -> None:
        """Create everything; on any failure delete what was made and re-raise."""
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        self._up = True

    def _create(self) -> None:
        hub = self.hub
        self._add_ns(hub)
        _in(hub, "ip", "link", "add", "br0", "type", "bridge")
        _in(hub, "ip", "link", "set", "br0", "up")
        _in(hub, "ip", "link", "set", "lo", "up")
        # the client side: root namespace <-> bridge
        _run(["ip", "link", "add", self.client_link, "type", "veth", "peer", "name", f"{self.client_link}h"])
        _run(["ip", "link", "set", f"{self.client_link}h", "netns", hub])
        _in(hub, "ip", "link", "set", f"{self.client_link}h", "master", "br0", "up")
        _run(["ip", "addr", "add", f"198.18.{self.subnet}.254/24", "dev", self.client_link])
        _run(["ip", "link", "set", self.client_link, "up"])
        for i in self.node_ids:
            ns, node_side, hub_side = self.ns(i), f"rxn{self.tag}n{i}", self._hub_side(i)
            self._add_ns(ns)
            _run(["ip", "link", "add", node_side, "type", "veth", "peer", "name", hub_side])
            _run(["ip", "link", "set", hub_side, "netns", hub])
            _run(["ip", "link", "set", node_side, "netns", ns])
            _in(hub, "ip", "link", "set", hub_side, "master", "br0", "up")
            _in(ns, "ip", "link", "set", node_side, "name", "eth0")
            _in(ns, "ip", "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
            _in(ns, "ip", "link", "set", "eth0", "up")
            _in(ns, "ip", "link", "set", "lo", "up")
        logger.info("network %s: nodes %s on 198.18.%d.0/24", self.tag, self.node_ids, self.subnet)

    def _add_ns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)

    @property
    def isolated(self) -> frozenset[int]:
        """The nodes cut off right now."""
        return frozenset(self._isolated)

    def isolate(self, i: int) -> None:
        """Drop every packet to and from node ``i`` (both ends of its link)."""
        if i in self._isolated:
            return
        _in(self.hub, "tc", "qdisc", "add", "dev", self._hub_side(i), "root", "pfifo", "limit", "0")
        _in(self.ns(i), "tc", "qdisc", "add", "dev", "eth0", "root", "pfifo", "limit", "0")
        self._isolated.add(i)

    def heal(self, i: int | None = None) -> None:
        """Reconnect node ``i`` (None: every isolated node)."""
        for j in sorted(self._isolated) if i is None else [i]:
            if j not in self._isolated:
                continue
            _in(self.hub, "tc", "qdisc", "del", "dev", self._hub_side(j), "root", check=False)
            _in(self.ns(j), "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
            self._isolated.discard(j)

    def close(self) -> None:
        """Delete every namespace and link this run created (idempotent, best effort)."""
        _run(["ip", "link", "del", self.client_link], check=False)
        for name in reversed(self._namespaces):  # deleting a namespace deletes its veth ends
            out = _run(["ip", "netns", "del", name], check=False)
            if out.returncode != 0:
                logger.warning("could not delete namespace %s: %s", name, out.stderr.strip())
        self._namespaces.clear()
        self._isolated.clear()
        self._up = False

    def __enter__(self) -> Network:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _in(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["ip", "netns", "exec", ns, *argv], check=check)
