#!/usr/bin/env bash
# What metrics add per request, CPU-bound: the criterion bench `metrics` (off and on back to
# back in one process, benches/benches/metrics.rs) RUNS times; each run's estimates go to
# OUT/run-N.csv, and OUT/table.md divides the largest added cost by the per-request time of
# every point of the nixlbench A/B (benches/results/metrics-ab/quiet, "Avg Lat." = one request
# of "Batch Size" blocks).
#   benches/scripts/metrics-cost.sh [OUT_DIR] [RUNS]
# TABLE_ONLY=1 rebuilds the table from OUT's csv files. Extra criterion options: BENCH_ARGS.
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
OUT=${1:-benches/results/metrics-cost} RUNS=${2:-2}
AB=${AB_DIR:-benches/results/metrics-ab/quiet}
mkdir -p "$OUT"
if [ "${TABLE_ONLY:-0}" != 1 ]; then
  for i in $(seq "$RUNS"); do
    rm -rf "$T"/criterion/metrics_*
    # shellcheck disable=SC2086
    cargo bench -p nixl-benches --bench metrics -- ${BENCH_ARGS:-} 2>&1 | tee "$OUT/run-$i.log"
    python3 - "$T/criterion" "$i" > "$OUT/run-$i.csv" <<'PY'
import glob, json, os, sys
root, run = sys.argv[1], sys.argv[2]
print("run,group,side,mean_ns,mean_lo_ns,mean_hi_ns,median_ns,median_lo_ns,median_hi_ns")
for path in sorted(glob.glob(f"{root}/metrics_*/*/new/estimates.json")):
    side = path.split("/")[-3]
    group = path.split("/")[-4].removeprefix("metrics_")
    e = json.load(open(path))
    m, d = e["mean"], e["median"]
    ci = lambda x: (x["point_estimate"], x["confidence_interval"]["lower_bound"],
                    x["confidence_interval"]["upper_bound"])
    vals = ci(m) + ci(d)
    print(f"{run},{group},{side}," + ",".join(f"{v:.1f}" for v in vals))
PY
  done
fi
python3 - "$OUT" "$AB" > "$OUT/table.md" <<'PY'
import csv, glob, re, statistics, sys
out, ab = sys.argv[1], sys.argv[2]
est = {}
for path in sorted(glob.glob(f"{out}/run-*.csv")):
    for r in csv.DictReader(open(path)):
        est[(int(r["run"]), r["group"], r["side"])] = {k: float(v) for k, v in r.items()
                                                       if k.endswith("ns")}
runs = sorted({k[0] for k in est})
groups = list(dict.fromkeys(k[1] for k in est))
print("| case | run | off: mean (95 % CI), ns | on: mean (95 % CI), ns | on − off, ns "
      "(from the CIs' far ends) |")
print("|---|---:|---:|---:|---:|")
worst = {}
for g in groups:
    for r in runs:
        off, on = est.get((r, g, "off")), est.get((r, g, "on"))
        if not off or not on:
            continue
        d = on["mean_ns"] - off["mean_ns"]
        lo, hi = on["mean_lo_ns"] - off["mean_hi_ns"], on["mean_hi_ns"] - off["mean_lo_ns"]
        worst[g] = max(worst.get(g, hi), hi)
        cell = lambda e: f"{e['mean_ns']:.0f} ({e['mean_lo_ns']:.0f}–{e['mean_hi_ns']:.0f})"
        print(f"| {g} | {r} | {cell(off)} | {cell(on)} | {d:+.0f} ({lo:+.0f} to {hi:+.0f}) |")
# The bound at each point: the largest upper end of on − off over the re-post cases (what each
# of nixlbench's timed iterations does) of its kind: the TCP case for the tcp tables; for the
# same-host ones the same-process cases (the metrics code runs in the agent, whatever the
# transport), one-block cases only for one-block points. Over the smallest per-request time any
# run saw at that point (either side).
def cost(table, blocks):
    if table.startswith("tcp"):
        cases = [g for g in worst if g.startswith("tcp") and "repost" in g]
    else:
        cases = [g for g in worst if g.startswith("same_process") and "repost" in g
                 and (blocks > 1 or "_4k_" in g)]
    g = max(cases, key=lambda g: worst[g])
    return worst[g], g
lat = {}
for path in glob.glob(f"{ab}/*-*.txt"):
    name = re.sub(r"-\d+\.txt$", "", path.rsplit("/", 1)[1])
    for line in open(path):
        f = line.split()
        if len(f) >= 8 and f[0] in ("new", "old") and f[1] == "sweep":
            lat.setdefault((name, int(f[3]), int(f[4])), []).append(float(f[7]))
print()
print("| table | block (B) | blocks per request | per-request time, µs: median (smallest) "
      "| added cost, ns (case) | added cost ÷ smallest time | within 3 % |")
print("|---|---:|---:|---:|---|---:|---|")
for (name, block, batch), v in sorted(lat.items()):
    small = min(v)
    c, g = cost(name, batch)
    share = c / (small * 1000)
    print(f"| {name} | {block} | {batch} | {statistics.median(v):.1f} ({small:.1f}) "
          f"| {c:.0f} ({g}) | {100 * share:.3f} % | {'yes' if share <= 0.03 else 'NO'} |")
PY
cat "$OUT/table.md"
