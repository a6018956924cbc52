#!/usr/bin/env bash
# Checks that the figures in the docs are what the generators make of the committed result
# files, so a table cannot drift from its results by hand-editing or a forgotten rerun.
#
#  1. Regions a generator writes into a doc (sim/EVALUATION.md's kvtier section and its plots,
#     planner/EVALUATION.md's generated region and results.md): regenerated, then compared with
#     the files as they were; the files are put back either way.
#  2. BENCHMARKS.md's tables pasted from a generator's output: every table row the generator
#     prints from the committed results must appear in BENCHMARKS.md, verbatim.
#
#   scripts/check-docs.sh        (needs cargo for planner-eval, python3; no network)
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0

# --- 1. generated regions -------------------------------------------------------------------
generated=(sim/EVALUATION.md sim/eval/kvtier planner/EVALUATION.md planner/eval/results.md)
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
cp -r --parents "${generated[@]}" "$snapshot/"
restore() { for p in "${generated[@]}"; do rm -rf "$p"; cp -r "$snapshot/$p" "$p"; done; }

python3 sim/eval/kvtier/report.py >/dev/null
cargo run -q -p planner --example planner-eval -- \
  tables --dir planner/eval --doc planner/EVALUATION.md >/dev/null
for p in "${generated[@]}"; do
  if ! diff -r -q "$snapshot/$p" "$p" >/dev/null; then
    echo "check-docs: $p differs from what its generator writes from the committed results:" >&2
    diff -r -u "$snapshot/$p" "$p" | head -40 >&2 || true
    failed=1
  fi
done
restore

# --- 2. BENCHMARKS.md tables ------------------------------------------------------------------
# Each: a generator command printing Markdown from committed result files.
generators=(
  "python3 benches/scripts/tables.py benches/results benches/results/earlier"
  "python3 benches/scripts/python_tables.py benches/results/python"
  "python3 benches/scripts/fabric_table.py benches/results/fabric"
  "python3 benches/scripts/fabric_table.py benches/results/fabric-repeat/run-2"
  "python3 benches/scripts/fabric_table.py benches/results/fabric-repeat/run-3"
  "python3 benches/scripts/fabric_table.py benches/results/earlier/fabric-2026-12-07"
  "python3 benches/fabric/gap_table.py benches/results/fabric-cpu/gap.txt --ratios fab-new/rma,fab-new/rma-i4,fab-new/rma-2,fab-new/tcp"
  "python3 benches/fabric/gap_table.py benches/results/fabric-cpu/gap.txt --cpu --ratios fab-new/tcp,rma/tcp,rma-i4/tcp,rma-req/tcp,fab-new/rma-i4"
  "python3 benches/fabric/gap_table.py benches/results/fabric-cpu/small/gap.txt --ratios fab-new/rma-i4,fab-new/rma-req-i4,rma-req-i4/rma-i4,fab-new/tcp"
  "python3 benches/fabric/gap_table.py benches/results/fabric-cpu/small/gap.txt --cpu --ratios fab-new/rma-i4,fab-new/rma-req-i4,fab-new/tcp"
  "cat benches/results/metrics-ab/table.md"
  "cat benches/results/metrics-cost/table.md"
)
for g in "${generators[@]}"; do
  rows=0
  missing=0
  while IFS= read -r line; do
    [[ $line == '|'* ]] || continue
    rows=$((rows + 1))
    if ! grep -qxF -- "$line" BENCHMARKS.md; then
      missing=$((missing + 1))
      [ "$missing" -le 3 ] && echo "check-docs: not in BENCHMARKS.md ($g): $line" >&2
    fi
  done < <($g)
  if [ "$rows" = 0 ]; then
    echo "check-docs: '$g' printed no table" >&2
    failed=1
  elif [ "$missing" != 0 ]; then
    echo "check-docs: $missing of $rows rows of '$g' are missing from BENCHMARKS.md" >&2
    failed=1
  fi
done

if [ "$failed" = 0 ]; then
  echo "check-docs: every generated table matches its result files"
fi
exit "$failed"
