#!/usr/bin/env bash
# Install what the build and the tests need, skipping what is already there.
set -euo pipefail
VENV="$1"
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if ! command -v cargo-nextest >/dev/null; then
  cargo install cargo-nextest --locked
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly.
WB=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB" ]; then
  echo "installing wasm-bindgen-cli $WB"
  # The published lockfile of wasm-bindgen-cli names a crate version the
  # registry may no longer serve; fall back to a fresh resolution.
  cargo install wasm-bindgen-cli --version "$WB" --locked --force || \
    cargo install wasm-bindgen-cli --version "$WB" --force
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
# zstd-sys (a C library in the dependency graph) compiles for wasm32 with clang.
command -v clang >/dev/null || need_apt+=(clang)
# The cluster tests count the bytes the job runner reads from the store.
command -v strace >/dev/null || need_apt+=(strace)
# A CJK font so that Chinese labels render in the browser and in screenshots.
fc-list :lang=zh 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# axe-core (npm, locked) for the dashboard's accessibility test.
if ! cmp -s tests/e2e/package-lock.json tests/e2e/node_modules/.installed-lock.json; then
  (cd tests/e2e && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.installed-lock.json)
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! cmp -s requirements-dev.txt "$VENV/.requirements-dev.txt"; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  cp requirements-dev.txt "$VENV/.requirements-dev.txt"
fi
