#!/usr/bin/env python3
"""Summarizes gap.sh runs (BENCHMARKS.md, "LIBFABRIC backend").

    benches/fabric/gap_table.py OUT_DIR/gap.txt [REF]

For each op and size: every run's GB/s as mean (min-max) over the rounds, then the per-round
ratio of each LIBFABRIC variant (fab, fab-*) to REF (default rma: one rma_bw pair, streaming), to
rma-2 (two pairs at once, lower bound) and to tcp (our native TCP path), as a median with the
range. Ratios are taken within a round, where the runs are seconds apart.
"""
import statistics
import sys
from collections import defaultdict


def parse(path):
    rows = defaultdict(dict)  # (op, size) -> round -> run -> gbps
    for line in open(path):
        if line.startswith("=="):
            continue
        kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "gbps" not in kv or not kv["gbps"]:
            continue
        rows[(kv["op"], kv["size"])].setdefault(kv["round"], {})[kv["run"]] = float(kv["gbps"])
    return rows


def fmt(vals):
    if not vals:
        return "–"
    return f"{statistics.mean(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"


def ratio(vals):
    if not vals:
        return "–"
    return f"{statistics.median(vals):.2f}× ({min(vals):.2f}–{max(vals):.2f})"


def main():
    rows = parse(sys.argv[1])
    ref = sys.argv[2] if len(sys.argv) > 2 else "rma"
    runs = []
    for rounds in rows.values():
        for r in rounds.values():
            runs += [k for k in r if k not in runs]
    fabs = [r for r in runs if r.startswith("fab")]
    print("| op | size | " + " | ".join(runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    for (op, size), rounds in sorted(rows.items()):
        cells = [fmt([r[k] for r in rounds.values() if k in r]) for k in runs]
        print(f"| {op} | {size} | " + " | ".join(cells) + " |")
    print()
    others = [ref, "rma-2", "rma-req", "tcp"]
    head = [f"{f} / {o}" for f in fabs for o in others]
    print("| op | size | " + " | ".join(head) + " |")
    print("|---|---|" + "---|" * len(head))
    for (op, size), rounds in sorted(rows.items()):
        cells = []
        for f in fabs:
            for o in others:
                cells.append(
                    ratio([r[f] / r[o] for r in rounds.values() if f in r and o in r and r[o]])
                )
        print(f"| {op} | {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
