#!/usr/bin/env bash
# The Python package's benchmarks, everything in one run, results as files:
#  1. benches/scripts/python_bench.py on real NIXL 1.5.1's package and on ours, default
#     transports then TCP: api-<impl>-<tcp|default>.json;
#  2. bandwidth from Python (python_bw.py) against our C benchmark (nixlbench through
#     libnixl_capi.so) on the same shapes, alternating which goes first, ROUNDS rounds:
#     bw-<python|c>-<op>-<round>.json.
# Then prints the tables (python_tables.py, which BENCHMARKS.md's Python section is pasted from).
#
#   benches/scripts/python-compare.sh [RESULTS_DIR [OUR_PYTHON]]
# RESULTS_DIR: default benches/results/python. OUR_PYTHON: a python with `nixl` from ./nixl-py
# installed (default: a venv under the target dir that this script creates, release build).
# Real NIXL comes from .ci/real-nixl.sh (NIXL_REAL_VENV, e.g. /work/nixl-venv). nixlbench and
# libnixl_capi.so come from the target dir's release build
# (`cargo build --release -p nixl-ffi -p nixl-benches`). ROUNDS (default 3), BW_ITERS (8).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-benches/results/python}
ours=${2:-}
target=${CARGO_TARGET_DIR:-target}
if [ -z "$ours" ]; then
  venv="$target/pyvenv-bench"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q maturin numpy
  "$venv/bin/pip" install -q ./nixl-py
  ours="$venv/bin/python"
fi
real_lib=$(bash .ci/real-nixl.sh | tail -1)
real_py=""
for cand in "$real_lib/../../../../bin/python" "$(dirname "$real_lib")/../../../bin/python"; do
  if [ -x "$cand" ] && "$cand" -c 'import nixl' 2>/dev/null; then real_py=$cand; break; fi
done
[ -n "$real_py" ] || { echo "real NIXL's python not found (from .ci/real-nixl.sh: $real_lib)" >&2; exit 1; }
bench="$target/release/nixlbench"
lib="$target/release/libnixl_capi.so"
[ -x "$bench" ] && [ -f "$lib" ] || { echo "build first: cargo build --release -p nixl-ffi -p nixl-benches" >&2; exit 1; }
# Before the old result files are removed, which git would count as a change.
commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (uncommitted changes)')"
mkdir -p "$out"
rm -f "$out"/api-*.json "$out"/bw-*.json
{
  echo "commit $commit"
  echo "started $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
  echo "real NIXL: $real_py"
  echo "ours: $ours"
} | tee "$out/run.txt"

for tcp in 0 1; do
  mode=$([ "$tcp" = 1 ] && echo tcp || echo default)
  tls=()
  [ "$tcp" = 1 ] && tls=(UCX_TLS=tcp)
  env "${tls[@]}" BENCH_TCP=$tcp UCX_MODULES='^ib*' NIXL_LOG_LEVEL=ERROR \
    "$real_py" benches/scripts/python_bench.py nixl-1.5.1 | grep '^{' > "$out/api-nixl-$mode.json"
  BENCH_TCP=$tcp NIXL_LOG_LEVEL=ERROR \
    "$ours" benches/scripts/python_bench.py nixl-rs | grep '^{' > "$out/api-ours-$mode.json"
done

shape=(--block_sizes 64K,1M,16M --request_bytes 256M --num_iter "${BW_ITERS:-8}" --warmup_iter 2)
for op in READ WRITE; do
  for round in $(seq 1 "${ROUNDS:-3}"); do
    c=("$bench" --lib "$lib" --op_type "$op" --buffer huge "${shape[@]}" --large_blk_iter_ftr 1
       --no_baseline --no_progress --json "$out/bw-c-$op-$round.json")
    py=("$ours" benches/scripts/python_bw.py --op_type "$op" "${shape[@]}" --json "$out/bw-python-$op-$round.json")
    if [ $((round % 2)) = 1 ]; then "${c[@]}" > /dev/null; "${py[@]}"; else "${py[@]}"; "${c[@]}" > /dev/null; fi
  done
done
echo "finished $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/run.txt"
"$ours" benches/scripts/python_tables.py "$out"
