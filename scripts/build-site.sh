#!/usr/bin/env bash
# Assemble the static dashboard: page, WASM bindings, data files and a manifest.
set -euo pipefail
PKG="$1"; DATA="$2"; OUT="$3"
cd "$(dirname "$0")/.."
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/data" "$OUT.tmp/pkg"
cp web/*.html web/*.js web/*.css "$OUT.tmp/"
cp "$PKG"/* "$OUT.tmp/pkg/"
files=()
for f in "$DATA"/*.parquet; do
  cp "$f" "$OUT.tmp/data/"
  t=$(basename "$f" .parquet)
  files+=("{\"table\":\"$t\",\"file\":\"data/$t.parquet\"}")
done
tz=$(sed -n 's/^timezone = "\(.*\)"/\1/p' "$DATA/dataset.toml" 2>/dev/null || true)
mapping=""
if [ -f "$DATA/dataset.toml" ]; then
  # The dataset's mapping travels with the data (timezone, roster).
  cp "$DATA/dataset.toml" "$OUT.tmp/data/dataset.toml"
  mapping=",\"mapping\":\"data/dataset.toml\""
fi
( IFS=,; echo "{\"timezone\":\"${tz:-Asia/Shanghai}\"${mapping},\"files\":[${files[*]}]}" ) > "$OUT.tmp/data/manifest.json"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "dashboard site in $OUT"
