#!/usr/bin/env bash
# Run the WASM tests under node with wasm-bindgen-test-runner.
set -euo pipefail
PROFILE="$1"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/safetyscope-target}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test --profile "$PROFILE" -p safetyscope-wasm --target wasm32-unknown-unknown --tests
