#!/usr/bin/env bash
# The cost of metrics on the data path: one library with Prometheus metrics on
# (NIXL_TELEMETRY_EXPORTER=prometheus, the --lib side) against off (the --compare side),
# alternating per point (ab.sh), RUNS times; then again during a scrape storm (curl scraping
# the on side's endpoint every SCRAPE_INTERVAL seconds, default 0.05: 200 times Prometheus's
# usual 10 s; back to back, curl's own start-up would take most of a core on a 2-core machine and
# the A/B would measure curl, not the exporter; storm.log has a line per answered scrape).
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
# The control: the same A/B with metrics off on both sides. Its medians show how far from 1.00
# this machine's noise alone moves a median of RUNS runs.
AB_EXTRA="" benches/scripts/ab.sh "$LIB" "$LIB" "$OUT/control" "$RUNS" > "$OUT/control.md"
(
  while true; do
    # The on side is paused while the off side runs: give up after a second.
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/metrics"; then
      echo ok >> "$OUT/storm.log"
      sleep "${SCRAPE_INTERVAL:-0.05}"
    else
      sleep 0.01
    fi
  done
) &
STORM=$!
trap 'kill $STORM 2>/dev/null || true' EXIT
benches/scripts/ab.sh "$LIB" "$LIB" "$OUT/storm" "$RUNS" > "$OUT/storm.md"
echo "quiet (on/off):"; cat "$OUT/quiet.md"
echo "control (off/off):"; cat "$OUT/control.md"
wc -l < "$OUT/storm.log" > "$OUT/storm-scrapes.txt"
echo "scrape storm (on/off), $(cat "$OUT/storm-scrapes.txt") scrapes answered:"; cat "$OUT/storm.md"
# BENCHMARKS.md's table: each point's median and range, on/off beside the off/off control.
python3 - "$OUT" > "$OUT/table.md" <<'PY'
import sys
def rows(path):
    out = {}
    for line in open(path):
        f = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(f) == 4 and f[0] != "table" and not f[0].startswith("-"):
            out[(f[0], f[1])] = ([float(x) for x in f[2].split()], f[3])
    return out
d = sys.argv[1]
quiet, control, storm = (rows(f"{d}/{n}.md") for n in ("quiet", "control", "storm"))
cell = lambda r: f"{r[1]} ({min(r[0]):.2f}–{max(r[0]):.2f})"
print(f"| table | block (B) | on/off, quiet: median (range of {len(next(iter(quiet.values()))[0])} runs) "
      "| off/off control: median (range) | on/off, scrape storm: median (range) |")
print("|---|---:|---:|---:|---:|")
for k in quiet:
    print(f"| {k[0]} | {k[1]} | {cell(quiet[k])} | {cell(control[k])} | {cell(storm[k])} |")
PY
echo "table for BENCHMARKS.md:"; cat "$OUT/table.md"
