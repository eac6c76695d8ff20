#!/usr/bin/env bash
# Build a raftx wheel into wheels/, install it into a fresh virtualenv, and check
# that it reports the compiled implementation and passes the core, engine, storage
# and kv tests against the installed package (not the source tree).
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
"$venv/bin/pip" install -q "$(ls wheels/raftx-*.whl)[test]"
# Run from a directory without the source tree so the installed wheel is what loads
# (pyproject.toml only for its pytest settings).
cp -r tests pyproject.toml "$venv/"
cd "$venv"
"$venv/bin/python" -c 'import raftx, raftx._core as c; assert c.IMPLEMENTATION == "c", c.IMPLEMENTATION; print("wheel OK:", raftx.__version__, c.IMPLEMENTATION, raftx.__file__)'
case "$("$venv/bin/python" -c 'import raftx; print(raftx.__file__)')" in
  "$venv"/lib/*) ;;
  *) echo "check-wheel: raftx was not imported from the installed wheel" >&2; exit 1 ;;
esac
"$venv/bin/python" -m pytest -q -x tests/core tests/engine tests/storage tests/kv
