"""The deploy recipes parse and every ``raftx serve`` command line in them is accepted.

No container engine runs here, so each recipe is checked as far as it can be without
one: the Dockerfile's ``ENTRYPOINT`` + ``CMD``, every docker-compose service's command
(with its environment), and the Kubernetes StatefulSet's start script run by
``/bin/sh`` for each pod ordinal (with the pod's environment and a ``raftx`` on PATH
that adds ``--check-config``) go through ``raftx serve --check-config``, and the JSON
it prints is compared with the recipe's own ports, names, volumes and probes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="the manifests are parsed with PyYAML (test extra)")

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = "/var/lib/raftx"


def check_config(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """``raftx serve ARGV --check-config`` in a child process: its JSON (asserts exit 0)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTX_") or k == "RAFTX_NO_EXTENSIONS"}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "raftx", "serve", *argv, "--check-config"], env=full_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (argv, r.stderr)
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


# -- Dockerfile ---------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_non_root_with_a_volume_and_raftx_serve_as_entry_point() -> None:
    ins = _dockerfile()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build"), froms
    assert any(word == "COPY" and rest.startswith("--from=build ") for word, rest in ins)
    assert any(word == "RUN" and "pip wheel" in rest for word, rest in ins)
    user = [rest for word, rest in ins if word == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    entry = json.loads(next(rest for word, rest in ins if word == "ENTRYPOINT"))
    assert entry == ["raftx", "serve"]
    cmd = json.loads(next(rest for word, rest in ins if word == "CMD"))
    assert json.loads(next(rest for word, rest in ins if word == "VOLUME")) == [DATA_DIR]
    effective = check_config(cmd)
    assert effective["options"]["data_dir"] == DATA_DIR
    exposed = {int(p) for word, rest in ins if word == "EXPOSE" for p in rest.split()}
    assert {_port(effective["node"]["listen"]), _port(effective["options"]["metrics_addr"])} == exposed
    health = next(rest for word, rest in ins if word == "HEALTHCHECK")
    assert f":{_port(effective['options']['metrics_addr'])}/health" in health


def test_the_docker_build_context_is_what_the_dockerfile_copies() -> None:
    """Every COPY source of the build stage exists and is not excluded by .dockerignore."""
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for word, rest in _dockerfile():
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                assert src not in ignored and src.rstrip("/") not in ignored, src


@pytest.mark.slow
def test_the_build_stage_context_builds_a_compiled_wheel(tmp_path: Path) -> None:
    """Stage 1's ``pip wheel`` from exactly the files it COPYs (no network: build
    isolation off, the build requirements are installed here) yields raftx with every
    compiled twin and the monitor; ~1 min of compiling, hence slow."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    ins = _dockerfile()
    second_from = [i for i, (w, _) in enumerate(ins) if w == "FROM"][1]
    for word, rest in ins[:second_from]:  # the build stage's COPYs, relative to WORKDIR
        if word == "COPY":
            *sources, dest = rest.split()
            for src in sources:
                target = ctx / dest / Path(src).name if dest.endswith("/") else ctx / dest
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, ignore=shutil.ignore_patterns("*.so", "*_c.c", "__pycache__"))
                else:
                    shutil.copy2(ROOT / src, target)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                        "-q", "--wheel-dir", str(tmp_path / "wheels"), "."], cwd=ctx, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("raftx-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    from raftx import _core

    for module in _core.MODULES:
        assert any(n.startswith(f"raftx/_core/{module}_c.") and n.endswith(".so") for n in names), module
    assert "raftx/kv/monitor.py" in names


# -- docker-compose.yml ---------------------------------------------------------------------


def test_compose_runs_three_nodes_that_advertise_their_service_names() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    nodes = {name: svc for name, svc in doc["services"].items() if "command" in svc and svc.get("build")}
    assert sorted(nodes) == ["n1", "n2", "n3"]
    ids = {}
    for name, svc in nodes.items():
        effective = check_config(svc["command"], {k: str(v) for k, v in svc.get("environment", {}).items()})
        node = effective["node"]
        ids[name] = node["id"]
        assert node["advertise"] == f"{name}:{_port(node['listen'])}"
        assert node["listen"].startswith("0.0.0.0:")
        assert {a.split(":")[0] for a in node["peers"].values()} == set(nodes) - {name}
        assert effective["raft"]["cluster_name"] == "compose-demo"
        assert effective["sources"]["cluster_name"] == "env"
        published = {int(p.split(":")[1]) for p in svc["ports"]}
        assert published == {_port(node["listen"]), _port(effective["options"]["metrics_addr"])}
        volume = svc["volumes"][0].split(":")
        assert volume[0] in doc["volumes"] and volume[1] == effective["options"]["data_dir"]
        assert f":{_port(effective['options']['metrics_addr'])}/health" in " ".join(svc["healthcheck"]["test"])
    # every peer entry names the id the other service really runs with
    for name, svc in nodes.items():
        peers = check_config(svc["command"], {k: str(v) for k, v in svc.get("environment", {}).items()})
        for pid, addr in peers["node"]["peers"].items():
            assert ids[addr.split(":")[0]] == int(pid)


# -- Kubernetes ---------------------------------------------------------------------------


def _k8s() -> dict[str, list[dict[str, Any]]]:
    docs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            docs.setdefault(d["kind"], []).append(d)
    return docs


def _pod_env(container: dict[str, Any], pod: str, namespace: str, configmap: dict[str, str]) -> dict[str, str]:
    env = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "fieldRef" in e["valueFrom"]:
            env[e["name"]] = {"metadata.name": pod, "metadata.namespace": namespace}[
                e["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[e["name"]] = configmap[e["valueFrom"]["configMapKeyRef"]["key"]]
    return env


@pytest.fixture
def check_config_shim(tmp_path: Path) -> Path:
    """A directory with a ``raftx`` that runs this checkout's ``raftx ... --check-config``."""
    shim = tmp_path / "raftx"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m raftx "$@" --check-config\n')
    shim.chmod(0o755)
    return tmp_path


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh to run the pod start script")
@pytest.mark.parametrize("state", ["new", "existing"])
def test_k8s_statefulset_start_script_is_accepted_for_every_pod(check_config_shim: Path, state: str) -> None:
    docs = _k8s()
    (sts,) = docs["StatefulSet"]
    (cm,) = docs["ConfigMap"]
    spec = sts["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    script = container["args"][0]
    namespace = "prod"
    configmap = {**cm["data"], "initial-cluster-state": state}
    for ordinal in range(spec["replicas"]):
        pod = f"{sts['metadata']['name']}-{ordinal}"
        env = _pod_env(container, pod, namespace, configmap)
        env_all = {k: v for k, v in os.environ.items() if not k.startswith("RAFTX_") or k == "RAFTX_NO_EXTENSIONS"}
        env_all.update(env, PATH=f"{check_config_shim}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
        r = subprocess.run(["/bin/sh", "-c", script], env=env_all, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (pod, r.stderr)
        effective = json.loads(r.stdout)
        node = effective["node"]
        domain = f"{spec['serviceName']}.{namespace}.svc.cluster.local"
        assert node["id"] == ordinal
        assert node["advertise"] == f"{pod}.{domain}:7001"
        assert node["listen"] == "0.0.0.0:7001"
        assert effective["raft"]["cluster_name"] == cm["data"]["cluster-name"]
        bootstraps = ordinal == 0 and state == "new"
        assert effective["options"]["init"] is bootstraps
        if bootstraps:  # the initial membership: every replica at its pod DNS name
            want = {str(i): f"{sts['metadata']['name']}-{i}.{domain}:7001" for i in range(1, spec["replicas"])}
            assert node["peers"] == want
        else:
            assert node["peers"] == {}
        metrics_port = _port(effective["options"]["metrics_addr"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"raft": 7001, "metrics": metrics_port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
        (mount,) = container["volumeMounts"]
        assert mount["mountPath"] == effective["options"]["data_dir"]


def test_k8s_objects_fit_together() -> None:
    docs = _k8s()
    (sts,) = docs["StatefulSet"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    services = {s["metadata"]["name"]: s for s in docs["Service"]}
    headless = services[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True  # peers must resolve before ready
    for s in services.values():
        assert s["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sts["spec"]["podManagementPolicy"] == "Parallel"  # OrderedReady would wait for a lone pod forever
    sec = sts["spec"]["template"]["spec"]["securityContext"]
    assert sec["runAsNonRoot"] is True and sec["runAsUser"] != 0
    (pdb,) = docs["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    replicas = sts["spec"]["replicas"]
    assert pdb["spec"]["minAvailable"] == replicas // 2 + 1  # evictions keep a quorum
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert {m["name"] for m in container["volumeMounts"]} <= claims
    script = container["args"][0]
    peers = re.findall(r'--peer "(\d+)=', script)
    assert sorted(map(int, peers)) == list(range(1, replicas))  # the bootstrap list matches replicas


def test_check_config_refuses_a_bad_metrics_addr() -> None:
    r = subprocess.run([sys.executable, "-m", "raftx", "serve", "--id", "1", "--listen", "127.0.0.1:7001",
                        "--data-dir", "/nonexistent", "--metrics-addr", "nowhere", "--check-config"],
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--metrics-addr" in r.stderr, r.stderr
