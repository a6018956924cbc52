#!/usr/bin/env bash
# CPU time an idle agent with the LIBFABRIC backend uses (its progress thread must not spin):
# starts `nixl-peer` per provider, waits 2 s, then reports utime+stime over the next 5 s
# (hundredths of a CPU second, from /proc/PID/stat) beside the UCX backend's (our net backend);
# LIBFABRIC with its default endpoints (auto: 2 on tcp, 1 on shm) and with other counts.
#   benches/fabric/idle_cpu.sh    (needs: cargo build --release -p nixl-core --features peer-tool --bin nixl-peer)
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
PEER=$T/release/nixl-peer
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # label, env...
  local label=$1; shift
  coproc P (exec env "$@" "$PEER" idle 1048576 1)
  local pid=$P_PID
  sleep 2
  local a; a=$(ticks "$pid")
  sleep 5
  local b; b=$(ticks "$pid")
  echo "backend=$label process=$(cat /proc/$pid/comm) threads=$(ls /proc/$pid/task | wc -l) idle_cpu_hundredths_over_5s=$((b - a)) clk_tck=$(getconf CLK_TCK)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
measure LIBFABRIC-tcp NIXL_PEER_BACKEND=LIBFABRIC FI_PROVIDER=tcp
measure LIBFABRIC-tcp-1ep NIXL_PEER_BACKEND=LIBFABRIC FI_PROVIDER=tcp NIXL_PEER_PARAMS=num_endpoints=1
measure LIBFABRIC-tcp-4ep NIXL_PEER_BACKEND=LIBFABRIC FI_PROVIDER=tcp NIXL_PEER_PARAMS=num_endpoints=4
measure LIBFABRIC-shm NIXL_PEER_BACKEND=LIBFABRIC FI_PROVIDER=shm
measure LIBFABRIC-shm-2ep NIXL_PEER_BACKEND=LIBFABRIC FI_PROVIDER=shm NIXL_PEER_PARAMS=num_endpoints=2
measure UCX NIXL_PEER_BACKEND=UCX
