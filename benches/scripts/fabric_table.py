#!/usr/bin/env python3
"""Prints BENCHMARKS.md's LIBFABRIC table from one fabric.sh run.

    benches/scripts/fabric_table.py OUT_DIR

For each op and block size: the LIBFABRIC backend on tcp;ofi_rxm and shm (GB/s), the limit
(rma_bw on the same provider: for each phase the best of its completion readers, then the mean
of the phases before and after the sweep, with their range), our native TCP path, our same-host
path, and real NIXL's UCX over TCP, all from the same run.
"""
import csv
import sys
from collections import defaultdict
from pathlib import Path


def rma_limits(path):
    """{(provider, op, size): [per-phase best gbps]}"""
    best = defaultdict(dict)
    for line in Path(path).read_text().splitlines():
        kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "gbps" not in kv:
            continue
        prov = "shm" if kv["provider"].startswith("shm") else "tcp"
        op = "READ" if kv["op"] == "read" else "WRITE"
        key = (prov, op, int(kv["size"]))
        phase = kv.get("phase", "")
        best[key][phase] = max(best[key].get(phase, 0.0), float(kv["gbps"]))
    return {k: list(v.values()) for k, v in best.items()}


def sweep(path):
    rows = defaultdict(dict)
    if not Path(path).exists():
        return rows
    with open(path) as f:
        for r in csv.DictReader(f):
            rows[int(r["block_size"])][r["lib"]] = r
    return rows


def size(b):
    for unit, n in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= n and b % n == 0:
            return f"{b // n} {unit}"
    return f"{b} B"


def gb(row):
    if row is None:
        return None
    if row["error"] or row["verified"] == "false":
        return None
    return float(row["gbps"])


def cell(v):
    return "–" if v is None else f"{v:.2f}"


def pct(a, b):
    return "–" if a is None or not b else f"**{100 * a / b:.0f} %**"


def x(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def limit_cell(values):
    if not values:
        return None, "–"
    mean = sum(values) / len(values)
    lo, hi = min(values), max(values)
    return mean, f"{mean:.2f} ({lo:.2f}–{hi:.2f})"


def main():
    out = Path(sys.argv[1])
    limits = rma_limits(out / "rma.txt")
    print(
        "| op | block | LIBFABRIC tcp | rma_bw tcp (range) | of limit | native TCP | "
        "LIBFABRIC tcp / native | NIXL UCX tcp | LIBFABRIC shm | rma_bw shm (range) | "
        "of limit | same-host (ours) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for op in ("WRITE", "READ"):
        rows = sweep(out / f"{op}.csv")
        for block in sorted(rows):
            r = rows[block]
            ft, fs = gb(r.get("fab-tcp")), gb(r.get("fab-shm"))
            native, same, nixl = gb(r.get("tcp")), gb(r.get("samehost")), gb(r.get("nixl-tcp"))
            lt, lt_txt = limit_cell(limits.get(("tcp", op, block), []))
            ls, ls_txt = limit_cell(limits.get(("shm", op, block), []))
            print(
                f"| {op} | {size(block)} | {cell(ft)} | {lt_txt} | {pct(ft, lt)} | {cell(native)} "
                f"| {x(ft, native)} | {cell(nixl)} | {cell(fs)} | {ls_txt} | {pct(fs, ls)} "
                f"| {cell(same)} |"
            )


if __name__ == "__main__":
    main()
