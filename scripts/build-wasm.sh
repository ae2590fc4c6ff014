#!/usr/bin/env bash
# Build the WASM module and its JS bindings (--target web).
set -euo pipefail
PROFILE="$1"; OUT="$2"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/safetyscope-target}"
cargo build --profile "$PROFILE" -p safetyscope-wasm --lib --target wasm32-unknown-unknown
mkdir -p "$OUT"
wasm-bindgen --target web --no-typescript --out-dir "$OUT" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$PROFILE/safetyscope_wasm.wasm"
ls -l "$OUT"/*.wasm | awk '{print "wasm size:", $5, "bytes"}'
