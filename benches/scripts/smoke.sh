#!/usr/bin/env bash
# CI smoke benchmark: checks that nixlbench still runs end to end through our
# libnixl_capi.so (two processes, cross-memory attach, shared mapping, TCP,
# notifications) and that every byte lands where it should. No timing asserted.
#   benches/scripts/smoke.sh            (after cargo build --release -p nixl-ffi -p nixl-benches)
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
B="$T/release/nixlbench --lib ${LIB:-$T/release/libnixl_capi.so} --check_consistency --no_progress --no_baseline --num_iter 3 --warmup_iter 1"
$B --op_type WRITE --block_sizes 4K,1M --request_bytes 4M --notif
$B --op_type READ --block_sizes 4K,1M --request_bytes 4M --buffer shared
$B --op_type READ --block_sizes 64K --request_bytes 4M --transport tcp --notif
$B --op_type WRITE --block_sizes 64K --max_batch_size 8 --start_batch_size 8 --num_threads 4
echo "nixlbench smoke: ok"
