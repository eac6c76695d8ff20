#!/usr/bin/env bash
# Build the documentation site (docs/) with every Sphinx warning an error; the HTML
# lands in docs/_build/html (open index.html). Needs the docs extra:
#   pip install -e '.[docs]'
# docs/conf.py documents the pure-Python twins (they carry the docstrings), so no
# compiled build is needed, and fails the build if a public name lacks a reference entry.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
sphinx-build -W --keep-going -b html docs docs/_build/html "$@"
echo "docs built in $((SECONDS - start)) s: docs/_build/html/index.html"
