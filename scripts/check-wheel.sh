#!/usr/bin/env bash
# Build a raftx wheel into wheels/, install it into a fresh virtualenv, and check
# that it reports the compiled implementation and passes the _core tests.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf wheels && mkdir -p wheels
python -m pip wheel -q --no-deps -w wheels .
if command -v auditwheel >/dev/null 2>&1; then
  auditwheel repair -w wheels wheels/raftx-*-linux_*.whl && rm -f wheels/raftx-*-linux_*.whl
fi
venv=$(mktemp -d /tmp/raftx-wheel.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q wheels/raftx-*.whl pytest pytest-asyncio pytest-timeout hypothesis
# Run from a directory without the source tree so the installed wheel is what loads.
cp -r tests "$venv/tests"
(cd "$venv" && "$venv/bin/python" -c 'import raftx, raftx._core as c; assert c.IMPLEMENTATION == "c", c.IMPLEMENTATION; print("wheel OK:", raftx.__version__, c.IMPLEMENTATION, raftx.__file__)' \
  && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/core -x)
