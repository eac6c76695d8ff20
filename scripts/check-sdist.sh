#!/usr/bin/env bash
# Build the sdist, unpack it in a temp dir, install it from there into a fresh
# virtualenv (compiling the extensions) and run tests from the unpacked tree: the
# sdist must carry everything needed to build and test raftx.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/raftx-sdist.XXXXXX)
trap 'rm -rf "$work"' EXIT
python -m pip install -q build
python -m build -q --sdist -o "$work/dist" .
tar xzf "$work"/dist/raftx-*.tar.gz -C "$work"
src=$(ls -d "$work"/raftx-*/)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$src[test]"
rm -rf "$src/raftx"  # the tests must run against what was installed from the sdist
cd "$src"
RAFTX_REQUIRE_EXTENSIONS=1 "$work/venv/bin/python" -m pytest -q -x tests/core tests/engine tests/storage
