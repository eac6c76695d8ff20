# raftx node image: `docker build -t raftx .`, then see docker-compose.yml or deploy/k8s/.
#
# Stage 1 builds the raftx wheel (with its compiled Cython twins) and the wheels of
# its runtime extras; stage 2 installs only those wheels into a slim image that runs
# `raftx serve` as an unprivileged user, with its data in a volume.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE ./
COPY raftx ./raftx
# raftx itself (compiled) plus uvloop (fast) and prometheus-client (metrics: /metrics)
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[fast,metrics]"

FROM python:${PYTHON_VERSION}-slim
RUN groupadd --system --gid 10001 raftx \
 && useradd --system --uid 10001 --gid raftx --home-dir /var/lib/raftx --create-home --shell /usr/sbin/nologin raftx
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels "raftx[fast,metrics]" \
 && rm -rf /tmp/wheels \
 && python -c "import raftx._core as c; assert c.IMPLEMENTATION == 'c', c.IMPLEMENTATION"
USER 10001:10001
WORKDIR /var/lib/raftx
# The log and snapshots: keep them on a volume (a container's own layer is lost with it).
VOLUME ["/var/lib/raftx"]
# 7001: Raft RPCs and kv clients; 9101: HTTP /health, /ready, /metrics
EXPOSE 7001 9101
ENV PYTHONUNBUFFERED=1
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9101/health', timeout=2)"]
# SIGTERM stops the node cleanly (exit 0); exit 70 means the node stopped on a fatal error.
STOPSIGNAL SIGTERM
ENTRYPOINT ["raftx", "serve"]
# A single-node cluster by default; docker-compose.yml and deploy/k8s/ pass their own flags.
CMD ["--id", "1", "--listen", "0.0.0.0:7001", "--advertise", "127.0.0.1:7001", "--data-dir", "/var/lib/raftx", "--metrics-addr", "0.0.0.0:9101", "--init"]
