#!/usr/bin/env bash
# Where the LIBFABRIC backend stands against libfabric's own RMA bandwidth when each runs
# alone (no variants alternating), with the CPU both processes use (perf stat: task-clock,
# context switches) — BENCHMARKS.md, "LIBFABRIC backend: the >= 1 MiB gap". Per round, op and
# size, one after the other:
#   rma        rma_bw stream, 64 RMAs in flight, fi_cq_sread (fabric.sh's limit)
#   rma-2      two rma_bw pairs started together (four processes), TOTAL each: the limit for
#              two endpoints; gbps= is all bytes over the later finish (a lower bound: their
#              starts differ by a few ms), gbps_sum= the sum of the two rates (an upper bound)
#   rma-req    rma_bw in nixlbench's pattern: requests of 64 MiB, completions read by a second
#              thread, the poster asleep until the request is done (-R 64M -T)
#   fab-LABEL  nixlbench, LIBFABRIC on tcp, for each LABEL:LIB:PARAMS in FABS (default
#              "new:$T/release/libnixl_capi.so:"; PARAMS: k=v,k=v added to provider=tcp)
#   rma-iN     with PIECES=N: rma_bw putting N blocks in each RMA (-i N), as the backend's
#              max_iov does: the limit for small blocks of the backend's pattern of RMAs
#   rma-req-iN with PIECES=N: the same in nixlbench's pattern (-R 64M -T -i N)
#   tcp        nixlbench, our native TCP path (UCX backend, transport tcp), first FABS library
# Each moves TOTAL (default 4G) in requests of 64 MiB. With SHORT (e.g. 256M), every run but
# rma-2 runs again moving SHORT, and its line adds cpu_short_s=: the CPU of (TOTAL - SHORT)
# bytes without start-up and tear-down (gap_table.py --cpu).
#   benches/fabric/gap.sh OUT_DIR   (env: ROUNDS=3 SIZES="1M 16M" OPS="READ WRITE" FABS=...)
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
RMA=$T/release/rma_bw
FABS=${FABS:-new:$T/release/libnixl_capi.so:}
LIB=$(cut -d: -f2 <<<"${FABS%% *}")
"$(dirname "$0")/build.sh" "$RMA" >/dev/null
OUT=$1
mkdir -p "$OUT"
TOTAL=${TOTAL:-4G}
iters=$(( $(numfmt --from=iec "$TOTAL") / (64 << 20) ))
SHORT=${SHORT:-}
short_iters=$([ -n "$SHORT" ] && echo $(( $(numfmt --from=iec "$SHORT") / (64 << 20) )) || true)
log=$OUT/gap.txt
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) fabs=$FABS" | tee -a "$log"
measure() { # command...: prints "GB/s CPU-seconds context-switches" (both processes)
  local s=$OUT/.stat
  local bw
  bw=$(perf stat -e task-clock,context-switches -x, -o "$s" -- "$@" 2>/dev/null |
    awk '/gbps=/{for(i=1;i<=NF;i++) if ($i ~ /^gbps=/) print substr($i,6)}
         $1=="ours" && $2=="sweep"{print $7}' | head -1)
  echo "$bw $(awk -F, '$3=="task-clock"{printf "%.3f ", $1/1000}
                      $3=="context-switches"{printf "%s", $1}' "$s")"
}
stat() { # label, command...: one line with GB/s (from the command) and perf's counters; with
  # SHORT, the same command moving SHORT bytes (its -t / --num_iter replaced) adds cpu_short_s
  local label=$1; shift
  local bw cpu cs extra=""
  read -r bw cpu cs <<<"$(measure "$@")"
  if [ -n "$SHORT" ]; then
    local cmd=("$@") i
    for i in "${!cmd[@]}"; do
      case ${cmd[$i]} in
        -t) cmd[i+1]=$SHORT ;;
        --num_iter) cmd[i+1]=$short_iters ;;
      esac
    done
    local sbw scpu scs
    read -r sbw scpu scs <<<"$(measure "${cmd[@]}")"
    extra=" cpu_short_s=$scpu"
  fi
  echo "$label gbps=$bw cpu_s=$cpu ctx_switches=$cs total=$TOTAL short=$SHORT$extra" | tee -a "$log"
}
pair2() { # label, rma_bw flags...: two pairs at once
  local label=$1; shift
  local a=$OUT/.a b=$OUT/.b
  "$RMA" "$@" >"$a" & local p1=$!
  "$RMA" "$@" >"$b" & local p2=$!
  wait "$p1" "$p2"
  cat "$a" "$b" | awk -v label="$label" '{for(i=1;i<=NF;i++){split($i,kv,"="); v[kv[1]]=kv[2]}
      bytes += v["bytes"]; if (v["secs"] > secs) secs = v["secs"]; sum += v["gbps"]}
    END {printf "%s gbps=%.4f gbps_sum=%.4f\n", label, bytes / secs / 1e9, sum}' | tee -a "$log"
}
for round in $(seq "${ROUNDS:-3}"); do
  for op in ${OPS:-READ WRITE}; do
    lop=$(tr '[:upper:]' '[:lower:]' <<<"$op")
    dc=(); [ "$op" = WRITE ] && dc=(-D)
    for size in ${SIZES:-1M 16M}; do
      tag="round=$round op=$op size=$size"
      stat "$tag run=rma" "$RMA" -p tcp -o "$lop" "${dc[@]}" -s "$size" -t "$TOTAL" -b 64M -W
      pair2 "$tag run=rma-2" -p tcp -o "$lop" "${dc[@]}" -s "$size" -t "$TOTAL" -b 64M -W
      stat "$tag run=rma-req" "$RMA" -p tcp -o "$lop" "${dc[@]}" -s "$size" -t "$TOTAL" -b 64M -W -R 64M -T
      if [ -n "${PIECES:-}" ]; then
        stat "$tag run=rma-i$PIECES" "$RMA" -p tcp -o "$lop" "${dc[@]}" -s "$size" -t "$TOTAL" -b 64M -W -i "$PIECES"
        stat "$tag run=rma-req-i$PIECES" "$RMA" -p tcp -o "$lop" "${dc[@]}" -s "$size" -t "$TOTAL" -b 64M -W -R 64M -T -i "$PIECES"
      fi
      nb=("$T/release/nixlbench" --lib "$LIB" --op_type "$op" --block_sizes "$size" --request_bytes 64M
          --num_iter "$iters" --large_blk_iter_ftr 1 --warmup_iter 2 --no_progress --no_baseline)
      for fab in $FABS; do
        IFS=: read -r label lib params <<<"$fab"
        nb[2]=$lib
        stat "$tag run=fab-$label" "${nb[@]}" --backend LIBFABRIC --params "provider=tcp${params:+,$params}"
      done
      nb[2]=$LIB
      stat "$tag run=tcp" "${nb[@]}" --backend UCX --transport tcp
    done
  done
done
rm -f "$OUT/.stat" "$OUT/.a" "$OUT/.b"
echo "== done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
