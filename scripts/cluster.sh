#!/usr/bin/env bash
# A local Ballista cluster for safetyscope jobs: one scheduler and two
# executors on 127.0.0.1, started in the background with their logs and pids
# in $DIR (default build/cluster).
#
#   scripts/cluster.sh up   BIN [DIR]   # BIN = the safetyscope-cluster binary
#   scripts/cluster.sh down BIN [DIR]
#
# Ports: scheduler 50050; executors 50051/50052 and 50061/50062 (flight/grpc).
# Then: BIN run build/nightly.toml --cluster df://127.0.0.1:50050
set -euo pipefail
CMD="$1"; BIN="$2"; DIR="${3:-build/cluster}"
SCHEDULER_PORT="${SCHEDULER_PORT:-50050}"
mkdir -p "$DIR"
case "$CMD" in
  up)
    "$BIN" scheduler --bind-host 127.0.0.1 --external-host 127.0.0.1 --bind-port "$SCHEDULER_PORT" \
      --executor-timeout-seconds 10 --expire-dead-executor-interval-seconds 2 \
      > "$DIR/scheduler.log" 2>&1 &
    echo $! > "$DIR/scheduler.pid"
    for i in 1 2; do
      mkdir -p "$DIR/executor-$i"
      "$BIN" executor --bind-host 127.0.0.1 --external-host 127.0.0.1 \
        --scheduler-host 127.0.0.1 --scheduler-port "$SCHEDULER_PORT" \
        --bind-port $((50050 + i)) --bind-grpc-port $((50060 + i)) \
        --work-dir "$DIR/executor-$i" --vcores 1 --executor-heartbeat-interval-seconds 2 \
        > "$DIR/executor-$i.log" 2>&1 &
      echo $! > "$DIR/executor-$i.pid"
    done
    echo "scheduler df://127.0.0.1:$SCHEDULER_PORT, two executors; logs in $DIR"
    ;;
  down)
    for f in "$DIR"/*.pid; do
      [ -f "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    echo "cluster stopped"
    ;;
  *) echo "usage: $0 up|down BIN [DIR]" >&2; exit 2 ;;
esac
