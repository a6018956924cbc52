#!/usr/bin/env bash
# The LIBFABRIC backend against its limit and its neighbours, in one run (BENCHMARKS.md,
# "LIBFABRIC backend"):
#   - the limit: rma_bw (benches/fabric/rma_bw.c), libfabric's own RMA bandwidth between two
#     processes on the same provider, measured before and after each sweep;
#   - one nixlbench sweep per op over five variants that alternate per point: LIBFABRIC on
#     tcp;ofi_rxm and on shm, our native TCP path (UCX backend, NIXL_RS_TRANSPORT=tcp), our
#     same-host path (UCX backend, auto), and real NIXL's UCX over TCP (UCX_TLS=tcp).
#   benches/scripts/fabric.sh [OUT_DIR]      then: benches/scripts/fabric_table.py OUT_DIR
# (env: ITERS=128 requests per point and variant, REQUEST=256M, SIZES=4K,64K,1M,16M)
# Needs: cargo build --release -p nixl-ffi -p nixl-benches; cc + libfabric-dev; real NIXL
# (see compare.sh) at $NIXL, or NIXL= to leave it out.
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
OURS=${OURS:-$T/release/libnixl_capi.so}
NIXL=${NIXL-/work/nixl-venv/lib/python3.11/site-packages/.nixl_cu12.mesonpy.libs/libnixl_capi.so}
OUT=${1:-benches/results/fabric}
SIZES=${SIZES:-4K,64K,1M,16M}
REQUEST=${REQUEST:-256M}
RMA=$T/release/rma_bw
"$(dirname "$0")/../fabric/build.sh" "$RMA" >/dev/null
mkdir -p "$OUT"
: >"$OUT/rma.txt"
limits() { # phase: rma_bw on both providers, both ops (writes with delivery-complete, as
  # the backend posts them); tcp also with a sleeping completion reader (shm's fi_cq_sread
  # does not wake in libfabric 1.17, so shm polls only)
  local prov op cq
  for prov in tcp shm; do
    for op in write read; do
      local flags=(-p "$prov" -o "$op" -s "$SIZES" -t "${RMA_TOTAL:-512M}" -b "$REQUEST" -w 64)
      [ "$op" = write ] && flags+=(-D)
      for cq in poll sread; do
        [ "$cq" = sread ] && [ "$prov" = shm ] && continue
        local extra=()
        [ "$cq" = sread ] && extra=(-W)
        timeout 300 "$RMA" "${flags[@]}" "${extra[@]}" | sed "s/\$/ phase=$1/" | tee -a "$OUT/rma.txt"
      done
    done
  done
}
variants=(
  --variant "fab-shm:ours:LIBFABRIC:auto:provider=shm"
  --variant "tcp:ours:UCX:tcp:"
  --variant "samehost:ours:UCX:auto:"
)
[ -n "$NIXL" ] && variants+=(--variant "nixl-tcp:$NIXL:UCX:tcp:")
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD 2>/dev/null)" | tee "$OUT/run.txt"
for op in WRITE READ; do
  limits "before-$op"
  echo "== nixlbench $op" | tee "$OUT/$op.txt"
  "$T/release/nixlbench" --lib "$OURS" --backend LIBFABRIC --params provider=tcp \
    --names fab-tcp,unused "${variants[@]}" --op_type "$op" --block_sizes "$SIZES" \
    --request_bytes "$REQUEST" --num_iter "${ITERS:-128}" --warmup_iter 2 --check_consistency \
    --no_progress --csv "$OUT/$op.csv" 2>"$OUT/$op.stderr" | tee -a "$OUT/$op.txt"
  limits "after-$op"
done
echo "== done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"
