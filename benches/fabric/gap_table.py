#!/usr/bin/env python3
"""Summarizes gap.sh runs (BENCHMARKS.md, "LIBFABRIC backend").

    benches/fabric/gap_table.py OUT_DIR/gap.txt [REF] [--ratios A/B,C/D,...] [--cpu]

For each op and size: every run's GB/s as mean (min-max) over the rounds, then the per-round
ratio of each LIBFABRIC variant (fab, fab-*) to REF (default rma: one rma_bw pair, streaming), to
rma-2 (two pairs at once, lower bound) and to tcp (our native TCP path), as a median with the
range (--ratios: those pairs of runs instead). Ratios are taken within a round, where the runs
are seconds apart. --cpu (runs made with SHORT): CPU-seconds per GiB moved, both processes,
(cpu_s - cpu_short_s) / (TOTAL - SHORT), instead of GB/s, and the same ratios of it.
"""
import statistics
import sys
from collections import defaultdict


def gib(size):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]] / (1 << 30) if size[-1] in units else int(size) / (1 << 30)


def value(kv, cpu):
    """GB/s, or CPU-seconds per GiB beyond the short run (None where the line has no such)."""
    if not cpu:
        return float(kv["gbps"]) if kv.get("gbps") else None
    if not kv.get("cpu_short_s") or not kv.get("cpu_s"):
        return None
    moved = gib(kv["total"]) - gib(kv["short"])
    return (float(kv["cpu_s"]) - float(kv["cpu_short_s"])) / moved


def parse(path, cpu=False):
    rows = defaultdict(dict)  # (op, size) -> round -> run -> GB/s or CPU-s/GiB
    for line in open(path):
        if line.startswith("=="):
            continue
        kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
        v = value(kv, cpu)
        if v is None:
            continue
        rows[(kv["op"], kv["size"])].setdefault(kv["round"], {})[kv["run"]] = v
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
    cpu = "--cpu" in args
    if cpu:
        args.remove("--cpu")
    rows = parse(args[0], cpu)
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
