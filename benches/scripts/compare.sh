#!/usr/bin/env bash
# Runs every side-by-side comparison in BENCHMARKS.md: ours (libnixl_capi.so from
# nixl-ffi) against real NIXL, alternating per point, in one invocation per table.
#   benches/scripts/compare.sh [OUT_DIR]
# Needs: cargo build --release -p nixl-ffi -p nixl-benches, and real NIXL from
#   python3 -m venv /work/nixl-venv && /work/nixl-venv/bin/pip install --no-deps nixl-cu12==1.5.1
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
OURS=${OURS:-$T/release/libnixl_capi.so}
NIXL=${NIXL:-/work/nixl-venv/lib/python3.11/site-packages/.nixl_cu12.mesonpy.libs/libnixl_capi.so}
OUT=${1:-benches/results}
B="$T/release/nixlbench --lib $OURS --compare $NIXL --check_consistency --no_progress"
mkdir -p "$OUT"
run() { # name, flags...
  local name=$1; shift
  echo "== $name: nixlbench $*" | tee "$OUT/$name.txt"
  $B "$@" --csv "$OUT/$name.csv" 2>/dev/null | tee -a "$OUT/$name.txt"
}
SIZES=4K,64K,1M,16M
for seg in malloc huge shared; do
  for op in WRITE READ; do
    run "cma-$seg-$op" --op_type $op --buffer $seg --block_sizes $SIZES --request_bytes 256M \
      --num_iter 128 --warmup_iter 2 --plot "$OUT/cma-$seg-$op.png"
  done
done
run lat-4k --op_type WRITE --block_sizes 4K --max_batch_size 1 --num_iter 2000 --warmup_iter 100
run lat-4k-read --op_type READ --block_sizes 4K --max_batch_size 1 --num_iter 2000 --warmup_iter 100
for op in WRITE READ; do
  run "tcp-$op" --transport tcp --op_type $op --block_sizes 1M,16M --request_bytes 256M \
    --num_iter 128 --warmup_iter 2
done
run consumers --workload consumers --num_iter 64 --warmup_iter 1
