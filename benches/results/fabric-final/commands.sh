#!/usr/bin/env bash
# The quiet-window measurements of BENCHMARKS.md, "LIBFABRIC: the >= 1 MiB gap, and several
# endpoints": B = main afdd5e4 library, N = this branch; then ROUNDS=2 gap.sh into gap2 and
# fabric_ab.sh again into ab-*-2, as in run.txt.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
T=$CARGO_TARGET_DIR/release
B=$CARGO_TARGET_DIR/ab/base.so   # main afdd5e4's library
N=$CARGO_TARGET_DIR/ab/new.so    # this branch's library
O=${O:-benches/results/fabric-final}
mkdir -p "$O"
log() { echo "== $1 $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$O/run.txt"; }
log "start base=main-afdd5e4 new=$(git rev-parse --short HEAD)"
# 1. Standalone, back to back, per round: rma_bw (1 pair, 2 pairs, nixlbench's pattern),
#    LIBFABRIC main / 1 endpoint / auto (2) / 4 endpoints, native TCP.
ROUNDS=${ROUNDS:-3} FABS="main:$B: new1:$N:num_endpoints=1 new:$N: new4:$N:num_endpoints=4" \
  benches/fabric/gap.sh "$O/gap" >/dev/null
log "gap done"
# 2. Alternating per point (fabric_ab.sh): main, this branch (auto = 2 endpoints), native TCP,
#    this branch at 1 endpoint.
for op in READ WRITE; do
  BASE=$B NEW=$N REQUEST=64M ITERS=16 \
    EXTRA_VARIANTS="--variant new-1ep:$N:LIBFABRIC:auto:provider=tcp,num_endpoints=1" \
    benches/scripts/fabric_ab.sh "$op" 4K,64K,1M,16M "$O/ab-$op" >/dev/null
done
log "ab done"
# 3. shm: 1 (auto) and 2 endpoints, our same-host path, then rma_bw shm (polling) as the limit.
for op in READ WRITE; do
  "$T/nixlbench" --lib "$N" --backend LIBFABRIC --params provider=shm --names shm-1ep,unused \
    --variant "shm-2ep:$N:LIBFABRIC:auto:provider=shm,num_endpoints=2" \
    --variant "samehost:$N:UCX:auto:" --op_type "$op" --block_sizes 64K,1M,16M \
    --request_bytes 64M --num_iter 16 --large_blk_iter_ftr 1 --warmup_iter 2 --check_consistency \
    --no_progress --no_baseline --csv "$O/shm-$op.csv" 2>"$O/shm-$op.stderr" >"$O/shm-$op.txt"
  lop=$(tr '[:upper:]' '[:lower:]' <<<"$op"); dc=(); [ "$op" = WRITE ] && dc=(-D)
  timeout 120 "$T/rma_bw" -p shm -o "$lop" "${dc[@]}" -s 64K,1M,16M -t 512M -b 64M -w 64 | tee -a "$O/rma-shm.txt" >/dev/null
done
# 4. One descriptor per request (4 and 16 MiB): the per-endpoint cut.
for op in READ WRITE; do
  "$T/nixlbench" --lib "$N" --backend LIBFABRIC --params provider=tcp --names new,unused \
    --variant "new-1ep:$N:LIBFABRIC:auto:provider=tcp,num_endpoints=1" \
    --variant "main:$B:LIBFABRIC:auto:provider=tcp" --variant "native-tcp:$N:UCX:tcp:" \
    --op_type "$op" --block_sizes 4M,16M --num_iter 256 --large_blk_iter_ftr 1 --warmup_iter 4 \
    --check_consistency --no_progress --no_baseline --csv "$O/single-$op.csv" \
    2>"$O/single-$op.stderr" >"$O/single-$op.txt"
done
log "done"
