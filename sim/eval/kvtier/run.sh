#!/usr/bin/env bash
# Host-tier / peer-fetch sweep for sim/EVALUATION.md: two workloads, 8 workers, Dynamo mocker
# defaults, host tier 0/2x/4x the GPU blocks, fetch off/on. One JSON per configuration in
# results/ (`sim replay --json`), then report.py writes the tables and SVG plots.
#
#   sim/eval/kvtier/run.sh [TRACE]      (from the repository root; ~10 min on 2 loaded cores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
trace=${1:-$root/../shared/traces/mooncake_conversation_trace.jsonl}
[ -f "$trace" ] || trace=/work/shared/traces/mooncake_conversation_trace.jsonl
out=$here/results
mkdir -p "$out"
cargo build --release -p sim --bin sim --manifest-path "$root/Cargo.toml" >&2
sim=${CARGO_TARGET_DIR:-$root/target}/release/sim

# Synthetic shared-prefix load: 2,000 groups of a 6,144-token prefix (3 x the cluster's GPU
# cache in working set), 30 req/s for 200 s, ISL 8,192 / OSL 128.
synthetic=(--synthetic poisson:30 --duration 200 --isl 8192 --osl 128
           --prefix-groups 2000 --prefix-ratio 0.75 --seed 1)

run() { # name, workload args..., -- , sim args...
  local name=$1; shift
  echo "== $name" >&2
  "$sim" replay "$@" --workers 8 --json "$out/$name.json" | tee "$out/$name.txt"
}

for wl in conversation synthetic; do
  if [ $wl = conversation ]; then load=(--trace "$trace"); else load=("${synthetic[@]}"); fi
  run "$wl-h0-nofetch" "${load[@]}" --policy round-robin,dynamo,ours
  for h in 2 4; do
    run "$wl-h$h-nofetch" "${load[@]}" --host-tier $h --policy dynamo,ours,ours+tier
  done
  for h in 0 2 4; do
    run "$wl-h$h-fetch" "${load[@]}" --host-tier $h --fetch --policy dynamo,ours,ours+fetch
  done
  # Experiment, not a default: keep workers with nothing in flight for multi-pass prompts
  # (`ours:reserve=S`: S seconds of cost for a one-pass prompt on an idle worker).
  run "$wl-h4-fetch-reserve" "${load[@]}" --host-tier 4 --fetch \
      --policy ours,ours:reserve=0.05,ours:reserve=0.2,ours:reserve=1
done
# Seed spread of the conversation p99 ratio (tie-breaks of both policies).
for s in 1 2 3; do
  run "conversation-seed$s-h0-nofetch" --trace "$trace" --seed $s --policy dynamo
  run "conversation-seed$s-h4-fetch" --trace "$trace" --seed $s --host-tier 4 --fetch --policy ours
done
# What the conversation trace's TTFT p99 tail consists of (sim/EVALUATION.md).
cargo build --release -p sim --example kvtier_tail --manifest-path "$root/Cargo.toml" >&2
{ echo "# cargo run --release -p sim --example kvtier_tail -- TRACE 4 dynamo ours ours:reserve=0.2"
  "${CARGO_TARGET_DIR:-$root/target}/release/examples/kvtier_tail" "$trace" 4 dynamo ours ours:reserve=0.2
} | tee "$out/tail-h4-fetch.txt"
python3 "$here/report.py"
