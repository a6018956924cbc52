#!/usr/bin/env bash
# READ against WRITE over TCP for our library, alternating the two ops run by run, so that the
# host's drift (±20% within minutes here) falls on both; prints each pair and the median ratio.
#   benches/scripts/tcp-symmetry.sh [PAIRS] [BLOCK_SIZES]
# Needs: cargo build --release -p nixl-ffi -p nixl-benches
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
OURS=${OURS:-$T/release/libnixl_capi.so}
PAIRS=${1:-6}
SIZES=${2:-1M,16M}
gbps() { # op -> "block gbps" lines
  "$T/release/nixlbench" --lib "$OURS" --transport tcp --op_type "$1" --block_sizes "$SIZES" \
    --request_bytes 256M --num_iter 32 --warmup_iter 2 --no_baseline --no_progress \
    --check_consistency 2>/dev/null | awk '$1 == "ours" { print $4, $7 }'
}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for i in $(seq "$PAIRS"); do
  # Which op goes first alternates too.
  if (( i % 2 )); then w=$(gbps WRITE); r=$(gbps READ); else r=$(gbps READ); w=$(gbps WRITE); fi
  join <(echo "$w") <(echo "$r") | while read -r block write read; do
    echo "$block $write $read" >>"$results"
    printf 'pair %d  block %9d  WRITE %6.3f  READ %6.3f GB/s  READ/WRITE %5.2f\n' \
      "$i" "$block" "$write" "$read" "$(echo "$read / $write" | bc -l)"
  done
done
echo "median READ/WRITE per block size:"
for block in $(cut -d' ' -f1 "$results" | sort -un); do
  awk -v b="$block" '$1 == b { print $3 / $2 }' "$results" | sort -g |
    awk -v b="$block" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
      printf "  block %9d: %.2f over %d pairs (min %.2f, max %.2f)\n", b, m, NR, v[1], v[NR] }'
done
