#!/usr/bin/env bash
# Python tests and doctests against the installed wheel.
set -euo pipefail
VENV="$1"
cd "$(dirname "$0")/.."
PKG=$("$VENV/bin/python" -c 'import safetyscope, os; print(os.path.dirname(safetyscope.__file__))')
(cd python && "$VENV/bin/python" -m mypy --strict python/safetyscope)
"$VENV/bin/python" -m pytest -q python/tests tests/layers
"$VENV/bin/python" -m pytest -q --doctest-modules "$PKG/__init__.py"
