#!/usr/bin/env bash
# libfabric's own RMA bandwidth in the pattern nixlbench gives the backend, beside the
# continuous stream fabric.sh takes as the limit (BENCHMARKS.md, "LIBFABRIC backend"):
#   stream        up to 64 RMAs in flight, no break (the limit)
#   req           requests of REQUEST bytes: all of a request's RMAs, then wait for all (-R)
#   thread        a stream with completions read by a second thread (-T)
#   req-thread    requests with completions read by a second thread, the poster asleep on a
#                 condition variable until it may post (-R -T), as the backend's caller waits
#   req-thread-4  the same with 4 blocks per RMA (-i 4), as the backend's max_iov=4 posts
# Completions are read with fi_cq_sread (-W), as the backend does on tcp; CQS="sread poll
# init-poll" adds every mode with polling readers on both sides (poll) and with the initiator
# polling while the target sleeps (init-poll: -W -I). Lines end with readers=<CQS entry>.
#   benches/fabric/patterns.sh OUT.txt   (env: PROVIDER=tcp SIZES="1M 16M" ROUNDS=3 REQUEST=64M
#                                          TOTAL=512M MODES=... CQS=sread)
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
RMA=$T/release/rma_bw
"$(dirname "$0")/build.sh" "$RMA" >/dev/null
OUT=$1
PROVIDER=${PROVIDER:-tcp} REQUEST=${REQUEST:-64M}
echo "== $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
for round in $(seq "${ROUNDS:-3}"); do
  for op in read write; do
    for size in ${SIZES:-1M 16M}; do
      for cq in ${CQS:-sread}; do
      base=(-p "$PROVIDER" -o "$op" -s "$size" -t "${TOTAL:-512M}" -b "$REQUEST" -w 64)
      [ "$cq" = sread ] && base+=(-W)
      [ "$cq" = init-poll ] && base+=(-W -I)
      [ "$op" = write ] && base+=(-D)
      for mode in ${MODES:-stream req req-thread req-thread-4}; do
        case $mode in
          stream) extra=() ;;
          req) extra=(-R "$REQUEST") ;;
          thread) extra=(-T) ;;
          req-thread) extra=(-R "$REQUEST" -T) ;;
          req-thread-4) [ "$size" = 16M ] && continue; extra=(-R "$REQUEST" -T -i 4) ;;
        esac
        timeout 120 "$RMA" "${base[@]}" "${extra[@]}" | sed "s/\$/ mode=$mode round=$round readers=$cq/" | tee -a "$OUT"
      done
      done
    done
  done
done
echo "== done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
