#!/usr/bin/env bash
# The cost of metrics on the data path: one library with Prometheus metrics on
# (NIXL_TELEMETRY_EXPORTER=prometheus, the --lib side) against off (the --compare side),
# alternating per point (ab.sh), RUNS times; then again during a scrape storm (curl scraping
# the on side's endpoint back to back; storm.log has a line per answered scrape).
#   benches/scripts/metrics-ab.sh [OUT_DIR] [RUNS]
# Needs: cargo build --release -p nixl-ffi -p nixl-benches; curl.
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
LIB=$T/release/libnixl_capi.so
OUT=${1:-benches/results/metrics-ab} RUNS=${2:-3}
PORT=${METRICS_PORT:-19391}
mkdir -p "$OUT"
: > "$OUT/storm.log"
# The initiator binds PORT; its target process (same environment) finds it taken, warns and
# runs without metrics: only the initiator's requests, the measured ones, record.
export AB_EXTRA="--lib_env NIXL_TELEMETRY_ENABLE=y,NIXL_TELEMETRY_EXPORTER=prometheus,NIXL_TELEMETRY_PROMETHEUS_LOCAL=y,NIXL_TELEMETRY_PROMETHEUS_PORT=$PORT"
benches/scripts/ab.sh "$LIB" "$LIB" "$OUT/quiet" "$RUNS" > "$OUT/quiet.md"
(
  while true; do
    # The on side is paused while the off side runs: give up after a second.
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/metrics"; then
      echo ok >> "$OUT/storm.log"
    else
      sleep 0.01
    fi
  done
) &
STORM=$!
trap 'kill $STORM 2>/dev/null || true' EXIT
benches/scripts/ab.sh "$LIB" "$LIB" "$OUT/storm" "$RUNS" > "$OUT/storm.md"
echo "quiet (on/off):"; cat "$OUT/quiet.md"
wc -l < "$OUT/storm.log" > "$OUT/storm-scrapes.txt"
echo "scrape storm (on/off), $(cat "$OUT/storm-scrapes.txt") scrapes answered:"; cat "$OUT/storm.md"
