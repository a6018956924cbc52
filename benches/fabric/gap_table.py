#!/usr/bin/env python3
"""Summarizes gap.sh runs (BENCHMARKS.md, "LIBFABRIC backend").

    benches/fabric/gap_table.py OUT_DIR/gap.txt [REF] [--ratios A/B,C/D,...]

For each op and size: every run's GB/s as mean (min-max) over the rounds, then the per-round
ratio of each LIBFABRIC variant (fab, fab-*) to REF (default rma: one rma_bw pair, streaming), to
rma-2 (two pairs at once, lower bound) and to tcp (our native TCP path), as a median with the
range (--ratios: those pairs of runs instead). Ratios are taken within a round, where the runs
are seconds apart.
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
    args = sys.argv[1:]
    pairs = None
    if "--ratios" in args:
        i = args.index("--ratios")
        pairs = [tuple(p.split("/")) for p in args[i + 1].split(",")]
        del args[i : i + 2]
    rows = parse(args[0])
    ref = args[1] if len(args) > 1 else "rma"
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
    if pairs is None:
        pairs = [(f, o) for f in fabs for o in others]
    head = [f"{f} / {o}" for f, o in pairs]
    print("| op | size | " + " | ".join(head) + " |")
    print("|---|---|" + "---|" * len(head))
    for (op, size), rounds in sorted(rows.items()):
        cells = [
            ratio([r[f] / r[o] for r in rounds.values() if f in r and o in r and r[o]])
            for f, o in pairs
        ]
        print(f"| {op} | {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
