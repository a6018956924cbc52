#!/usr/bin/env bash
# compare.sh on two builds of our libnixl_capi.so, back to back, alternating NEW and OLD
# ROUNDS times (each run measures real NIXL in the same invocation), then one table per point:
# ours/NIXL for each build (median over rounds) and their quotient, from the result files.
#   benches/scripts/compare-before-after.sh NEW.so OLD.so [OUT_DIR] [ROUNDS]
# Needs what compare.sh needs (release nixlbench, NIXL=<real libnixl_capi.so>).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NEW=$1 OLD=$2 OUT=${3:-benches/results/before-after} ROUNDS=${4:-2}
if [ "${TABLE_ONLY:-0}" != 1 ]; then
  for i in $(seq "$ROUNDS"); do
    for side in new old; do
      lib=$NEW; [ "$side" = old ] && lib=$OLD
      OURS=$lib "$here/compare.sh" "$OUT/$side-$i" >/dev/null
    done
  done
fi
python3 - "$OUT" <<'PY'
import csv, glob, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
ratios = {}  # (table, op, block, batch) -> side -> [ours/nixl per round]
for run in sorted(out.glob("*-*")):
    side = run.name.split("-")[0]
    for path in sorted(run.glob("*.csv")):
        pairs = {}
        for r in csv.DictReader(open(path)):
            key = (path.stem, r["workload"], r["op"], int(r["block_size"]), int(r["batch_size"]))
            pairs.setdefault(key, {})[r["lib"]] = r
        for key, p in pairs.items():
            if "ours" in p and "nixl" in p and float(p["nixl"]["gbps"]) > 0:
                x = float(p["ours"]["gbps"]) / float(p["nixl"]["gbps"])
                ratios.setdefault(key, {}).setdefault(side, []).append(x)
print("| table | workload | op | block (B) | batch | ours/NIXL before (runs) | ours/NIXL after (runs) | after/before (medians) |")
print("|---|---|---|---:|---:|---|---|---:|")
for key in sorted(ratios):
    s = ratios[key]
    if "new" not in s or "old" not in s:
        continue
    fmt = lambda xs: " ".join(f"{x:.2f}" for x in xs)
    q = statistics.median(s["new"]) / statistics.median(s["old"])
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {fmt(s['old'])} | {fmt(s['new'])} | {q:.2f} |")
PY
