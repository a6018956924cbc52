#!/usr/bin/env bash
# A/B of two builds of our libnixl_capi.so through one nixlbench binary, alternating per point
# (nixlbench --lib A --compare B), repeated RUNS times; then a table of the per-run bandwidth
# ratios (A over B) and their median from the result files.
#   benches/scripts/ab.sh NEW.so OLD.so [OUT_DIR] [RUNS]
# AB_EXTRA adds nixlbench flags (e.g. --lib_env ... to run one library with metrics on and off).
# Needs: cargo build --release -p nixl-ffi -p nixl-benches (for nixlbench and NEW.so).
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
NEW=$1 OLD=$2 OUT=${3:-benches/results/ab} RUNS=${4:-5}
B="${NIXLBENCH:-$T/release/nixlbench} --lib $NEW --compare $OLD --names new,old --check_consistency --no_progress --rounds 8 ${AB_EXTRA:-}"
mkdir -p "$OUT"
tables=(
  "cma-WRITE --op_type WRITE --block_sizes 4K,64K,1M,16M --request_bytes 64M --num_iter 32 --warmup_iter 2"
  "cma-READ --op_type READ --block_sizes 4K,64K,1M,16M --request_bytes 64M --num_iter 32 --warmup_iter 2"
  "lat-4k --op_type WRITE --block_sizes 4K --max_batch_size 1 --num_iter 1000 --warmup_iter 100"
  "tcp-WRITE --transport tcp --op_type WRITE --block_sizes 1M,16M --request_bytes 64M --num_iter 32 --warmup_iter 2"
  "tcp-READ --transport tcp --op_type READ --block_sizes 1M,16M --request_bytes 64M --num_iter 32 --warmup_iter 2"
)
if [ "${TABLE_ONLY:-0}" != 1 ]; then
  for i in $(seq "$RUNS"); do
    for t in "${tables[@]}"; do
      set -- $t; name=$1; shift
      echo "== $name run $i: nixlbench --lib new --compare old $*" > "$OUT/$name-$i.txt"
      $B "$@" 2>/dev/null >> "$OUT/$name-$i.txt"
    done
  done
fi
# The table: one row per point, the ratio of each run, the median.
python3 - "$OUT" <<'PY'
import glob, re, statistics, sys
rows = {}
for path in sorted(glob.glob(f"{sys.argv[1]}/*-*.txt"), key=lambda p: int(re.search(r"-(\d+)\.txt$", p).group(1))):
    name = re.sub(r"-\d+\.txt$", "", path.rsplit("/", 1)[1])
    in_ratios = False
    for line in open(path):
        f = line.split()
        in_ratios = in_ratios or line.startswith("Ratios")
        if in_ratios and f and f[0] == "sweep":
            rows.setdefault((name, int(f[2])), []).append(float(f[7].rstrip("x")))
print("| table | block (B) | new/old bandwidth, by run | median |")
print("|---|---:|---|---:|")
for (name, block), r in sorted(rows.items()):
    print(f"| {name} | {block} | {' '.join(f'{x:.2f}' for x in r)} | {statistics.median(r):.2f} |")
PY
