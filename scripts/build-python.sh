#!/usr/bin/env bash
# Build the wheel with the shared lean profile and install it into the venv.
set -euo pipefail
PROFILE="$1"; VENV="$2"; OUT="$3"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/safetyscope-target}"
rm -rf "$OUT"
"$VENV/bin/maturin" build --profile "$PROFILE" -m python/Cargo.toml -o "$OUT" --interpreter "$VENV/bin/python" -q
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$OUT"/safetyscope-*.whl
