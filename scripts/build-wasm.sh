#!/usr/bin/env bash
# Build the WASM module and its JS bindings (--target web).
set -euo pipefail
PROFILE="$1"; OUT="$2"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/safetyscope-target}"
cargo build --profile "$PROFILE" -p safetyscope-wasm --lib --target wasm32-unknown-unknown
mkdir -p "$OUT"
# Function names stay in the test build (readable stack traces), not in
# the published one.
STRIP=()
if [ "$PROFILE" != ci ]; then STRIP=(--remove-name-section --remove-producers-section); fi
wasm-bindgen --target web --no-typescript "${STRIP[@]}" --out-dir "$OUT" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$PROFILE/safetyscope_wasm.wasm"
W=$(ls "$OUT"/*.wasm)
echo "wasm size: $(stat -c %s "$W") bytes, $(gzip -9 -c "$W" | wc -c) gzip"
