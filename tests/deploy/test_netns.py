"""A multi-host cluster on Linux network namespaces: listen on 0.0.0.0, advertise the host.

Three node namespaces and a client namespace, each with its own address from
198.18.0.0/15 (RFC 2544 benchmarking space) on a veth to a bridge in a fifth "hub"
namespace (nothing is added to the host's own network namespace). Every node runs
``raftx serve --listen 0.0.0.0:7001 --advertise <its address>:7001 --metrics-addr
0.0.0.0:9101``; the client, from its own namespace, writes, the leader is killed,
the client writes again through the new leader and reads both values back, and
``/health`` of the survivors and ``raftx health`` are checked from the client
namespace. Names are unique per run; every namespace (and with it every veth and the
bridge) is deleted afterwards, also when the test fails. Needs root and ``ip netns``:
skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftx.launcher import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "netns-test"
WAIT = 30.0

pytestmark = [pytest.mark.timeout(240)]


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    probe = f"rxhprobe{secrets.token_hex(3)}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


REASON = _why_not()
if REASON is not None:
    pytest.skip(REASON, allow_module_level=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class Hosts:
    """Namespaces ``<prefix>-n1..n3`` (nodes), ``-c`` (client), ``-hub`` (the bridge)."""

    def __init__(self) -> None:
        self.prefix = "rxh" + secrets.token_hex(3)  # interface names stay under 15 characters
        self.subnet = f"198.18.{secrets.randbelow(256)}"
        self.created: list[str] = []
        self.hub = f"{self.prefix}-hub"
        self.addr: dict[str, str] = {}

    def setup(self, names: list[str]) -> None:
        self._netns(self.hub)
        bridge = f"{self.prefix}br"
        ip("-n", self.hub, "link", "add", bridge, "type", "bridge")
        ip("-n", self.hub, "link", "set", bridge, "up")
        for k, name in enumerate(names, start=1):
            ns = self.ns(name)
            self._netns(ns)
            inner, outer = f"{self.prefix}i{k}", f"{self.prefix}o{k}"
            ip("link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", self.hub)
            ip("-n", self.hub, "link", "set", outer, "master", bridge)
            ip("-n", self.hub, "link", "set", outer, "up")
            self.addr[name] = f"{self.subnet}.{k}"
            ip("-n", ns, "addr", "add", f"{self.addr[name]}/24", "dev", inner)
            ip("-n", ns, "link", "set", inner, "up")

    def _netns(self, ns: str) -> None:
        ip("netns", "add", ns)
        self.created.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def exec(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(name)]

    def teardown(self) -> list[str]:
        """Delete every namespace made (their veths and the bridge go with them); leftovers."""
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
        return [line for line in (listed + links).splitlines() if self.prefix in line]


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    h = Hosts()
    try:
        h.setup(["n1", "n2", "n3", "c"])
        yield h
    finally:
        leftovers = h.teardown()
        assert not leftovers, f"left behind: {leftovers}"


CLIENT = textwrap.dedent("""
    import asyncio, json, sys, time, urllib.request, urllib.error
    from raftx.kv.client import KVClient

    endpoints, cluster, action, expect = sys.argv[1].split(","), sys.argv[2], sys.argv[3], int(sys.argv[4])

    def http(addr, path):
        try:
            with urllib.request.urlopen(f"http://{addr}{path}", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError as e:
            return None, {"error": str(e)}

    async def main():
        async with KVClient(endpoints, cluster_name=cluster, timeout=30) as kv:
            if action == "write1":
                await kv.put(b"k1", b"v1")
            else:
                await kv.put(b"k2", b"v2")
                assert await kv.get(b"k1") == b"v1"
                assert await kv.get(b"k2") == b"v2"
            status = await kv.status()
        # /health of every node, polled (other processes' state) until `expect` of them
        # answer, healthy and agreeing on the leader; bounded
        deadline = time.monotonic() + 30
        while True:
            health = {a: http(a.rsplit(":", 1)[0] + ":9101", "/health") for a in endpoints}
            up = {a: h for a, h in health.items() if h[0] is not None}
            if len(up) == expect and all(h[0] == 200 and h[1]["leader"] == status["leader"] for h in up.values()):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"health never settled: {health}")
            time.sleep(0.1)
        print(json.dumps({"leader": status["leader"], "nodes": status["nodes"],
                          "health": {a: h[0] for a, h in health.items()}}))

    asyncio.run(main())
""")


def test_three_hosts_advertise_their_addresses_write_fail_over_and_report_health(
        hosts: Hosts, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ids = {"n1": 1, "n2": 2, "n3": 3}
    advertised = {n: f"{hosts.addr[n]}:7001" for n in ids}
    nodes: dict[int, ManagedProcess] = {}
    for name, i in ids.items():
        argv = [*hosts.exec(name), sys.executable, "-m", "raftx", "serve", "--id", str(i),
                "--listen", "0.0.0.0:7001", "--advertise", advertised[name], "--cluster-name", CLUSTER,
                "--metrics-addr", "0.0.0.0:9101", "--data-dir", str(tmp_path / name),
                *[f"--peer={j}={advertised[m]}" for m, j in ids.items() if j != i], *(["--init"] if i == 1 else [])]
        nodes[i] = ManagedProcess(argv, log_path=tmp_path / f"{name}.log", env=env, name=f"netns-{name}")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    endpoints = ",".join(advertised.values())

    def client(action: str, expect: int) -> dict[str, object]:
        r = subprocess.run([*hosts.exec("c"), sys.executable, str(script), endpoints, CLUSTER, action, str(expect)],
                           env=env, capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, (r.stderr[-3000:], {i: p.log_tail(1500) for i, p in nodes.items()})
        return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    try:
        for p in nodes.values():
            p.start()
        first = client("write1", 3)
        leader = first["leader"]
        assert leader in ids.values() and set(first["health"].values()) == {200}, first
        # The membership holds the advertised addresses, not 0.0.0.0.
        assert dict(map(tuple, first["nodes"])) == {i: advertised[n] for n, i in ids.items()}, first
        nodes[int(str(leader))].kill()  # failover: the leader's host goes down
        second = client("write2", 2)
        assert second["leader"] != leader
        dead = advertised[next(n for n, i in ids.items() if i == leader)]
        assert second["health"][dead] is None and sorted(h for h in second["health"].values() if h) == [200, 200]
        r = subprocess.run([*hosts.exec("c"), sys.executable, "-m", "raftx", "health", "--endpoints", endpoints,
                            "--cluster-name", CLUSTER, "--timeout", "2"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and r.stdout.startswith("healthy: "), (r.stdout, r.stderr)
    finally:
        for p in nodes.values():
            p.kill()
