#!/usr/bin/env bash
# Run one stage of the build or tests and print how long it took.
set -uo pipefail
name="$1"; shift
start=$(date +%s)
echo "== [$name] $*"
"$@"
rc=$?
echo "== [$name] $(( $(date +%s) - start ))s (exit $rc)"
exit $rc
