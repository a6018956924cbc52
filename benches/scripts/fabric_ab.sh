#!/usr/bin/env bash
# Two builds of the LIBFABRIC backend side by side (nixlbench --variant, alternating per point
# in 4 rounds), on tcp;ofi_rxm, with our native TCP path as the neighbour:
#   BASE=old/libnixl_capi.so NEW=new/libnixl_capi.so benches/scripts/fabric_ab.sh OP SIZES OUT
# Writes OUT.csv / OUT.txt / OUT.stderr. EXTRA_VARIANTS adds --variant flags (e.g. parameters
# of NEW: "--variant new-iov1:$NEW:LIBFABRIC:auto:provider=tcp,max_iov=1").
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
OP=$1 SIZES=$2 OUT=$3
# shellcheck disable=SC2086 # EXTRA_VARIANTS is a list of flags
"$T/release/nixlbench" --lib "$BASE" --backend LIBFABRIC --params provider=tcp \
  --names base-tcp,unused \
  --variant "new-tcp:$NEW:LIBFABRIC:auto:provider=tcp" \
  --variant "native-tcp:$NEW:UCX:tcp:" ${EXTRA_VARIANTS:-} \
  --op_type "$OP" --block_sizes "$SIZES" --request_bytes "${REQUEST:-64M}" \
  --num_iter "${ITERS:-16}" --large_blk_iter_ftr 1 --warmup_iter 2 --check_consistency \
  --no_progress --no_baseline --csv "$OUT.csv" 2>"$OUT.stderr" | tee "$OUT.txt"
