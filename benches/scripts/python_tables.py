#!/usr/bin/env python3
"""Prints the Markdown tables of BENCHMARKS.md's Python section from python-compare.sh's
result files (api-*.json from python_bench.py, bw-*.json from python_bw.py and nixlbench).

    benches/scripts/python_tables.py benches/results/python
"""

import glob
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def fmt_time(s):
    return f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"


def api_table(d):
    runs = [m for m in ("default", "tcp") if os.path.exists(f"{d}/api-ours-{m}.json")]
    res = {(impl, m): load(f"{d}/api-{impl}-{m}.json") for impl in ("nixl", "ours") for m in runs}
    # (label, key, how to read a figure, target: ours at least this many times faster)
    steps = [
        ("`get_xfer_descs`, 112k × 3 numpy array", "get_xfer_descs_112k_s", 0, 2.0),
        ("`prep_xfer_dlist`, 112k local entries", "prep_xfer_dlist_112k_s", 0, 2.0),
        ("`make_prepped_xfer`, 41k numpy indices", "make_prepped_xfer_41k_s", 0, 2.0),
        ("`make_prepped_xfer` + `transfer` + poll to DONE, 41k-index READ",
         "make_transfer_wait_41k_read_s", 0, 2.0),
        ("`check_xfer_state` on a finished request", "check_xfer_state_ns", None, 2.0),
    ]
    print("| step | run | real NIXL 1.5.1 | nixl-rs | NIXL ÷ nixl-rs | target ≥ 2× |")
    print("|---|---|---|---|---|---|")
    for label, key, idx, want in steps:
        for m in runs:
            n, o = res[("nixl", m)][key], res[("ours", m)][key]
            if idx is None:
                nv, ov = n * 1e-9, o * 1e-9
            else:
                nv, ov = n[idx], o[idx]
            cpu = ""
            if isinstance(o, list) and len(o) > 2:
                cpu = f" ({fmt_time(o[2])} CPU; NIXL {fmt_time(n[2])})"
            ratio = nv / ov
            print(f"| {label} | {m} | {fmt_time(nv)} | {fmt_time(ov)}{cpu} | {ratio:.2f}× "
                  f"| {'✔' if ratio >= want else '✘'} |")
    for m in runs:
        n, o = res[("nixl", m)], res[("ours", m)]
        if "numpy_copy_112k_s" not in o:
            continue
        # numpy copying the same array, timed inside each package's run: the floor for any
        # get_xfer_descs that copies, so NIXL's time over it bounds the ratio any copy can reach.
        ours_floor = min(o["numpy_copy_112k_s"][0], o["numpy_copyto_112k_s"][0])
        nixl_floor = min(n["numpy_copy_112k_s"][0], n["numpy_copyto_112k_s"][0])
        best_ratio = n["get_xfer_descs_112k_s"][0] / nixl_floor
        print(f"| numpy copying the same 112k × 3 array (`copy()` / `copyto`, the floor of a copying "
              f"`get_xfer_descs`) | {m} | {fmt_time(n['numpy_copy_112k_s'][0])} / "
              f"{fmt_time(n['numpy_copyto_112k_s'][0])} | {fmt_time(o['numpy_copy_112k_s'][0])} / "
              f"{fmt_time(o['numpy_copyto_112k_s'][0])} | NIXL ÷ floor {best_ratio:.2f}×; "
              f"ours ÷ floor {o['get_xfer_descs_112k_s'][0] / ours_floor:.2f}× | – |")
    for m in runs:
        n, o = res[("nixl", m)], res[("ours", m)]
        bw_n = n["read_256MiB_poll"]["GiB_per_s"]
        bw_o = o["read_256MiB_poll"]["GiB_per_s"]
        print(f"| 256 MiB READ, poll loop, GiB/s | {m} | {bw_n:.2f} | {bw_o:.2f} "
              f"| {bw_o / bw_n:.2f}× as fast | – |")
    if "tcp" in runs:
        n, o = res[("nixl", "tcp")]["read_256MiB_poll"], res[("ours", "tcp")]
        w = o.get("read_256MiB_wait")
        print(f"| waiting thread's CPU, 256 MiB READ, busy `check_xfer_state` loop | tcp "
              f"| {n['waiter_cpu_s']:.3f} s = {n['waiter_cpu_pct_of_wall']:.0f} % of {n['wall_s']:.2f} s "
              f"| {o['read_256MiB_poll']['waiter_cpu_s']:.3f} s = "
              f"{o['read_256MiB_poll']['waiter_cpu_pct_of_wall']:.1f} % of {o['read_256MiB_poll']['wall_s']:.2f} s | – | – |")
        if w:
            print(f"| same, waiting with `wait` (extension) | tcp | no equivalent "
                  f"| {w['waiter_cpu_s']:.4f} s = {w['waiter_cpu_pct_of_wall']:.1f} % of {w['wall_s']:.2f} s "
                  f"| – | < 5 % of a core {'✔' if w['waiter_cpu_pct_of_wall'] < 5 else '✘'} |")


def bw_points(d, lib):
    """{(op, block): [GB/s per round]}"""
    out = {}
    for path in sorted(glob.glob(f"{d}/bw-{lib}-*.json")):
        for row in load(path):
            if lib == "c":
                key, gbps = (row["point"]["op"], row["point"]["block"]), row["outcome"]["gbps"]
            else:
                key, gbps = (row["op"], row["block"]), row["gbps"]
            out.setdefault(key, []).append(gbps)
    return out


def size(b):
    return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"


def bw_table(d):
    c, py = bw_points(d, "c"), bw_points(d, "python")
    if not c:
        return
    print()
    # Each round runs the two back to back (alternating which goes first), so the machine's
    # drift between rounds cancels in a round's ratio: the median of those is the figure.
    print("| op | block | nixlbench (C ABI), GB/s | Python, GB/s | Python ÷ C (medians) "
          "| per round | median of per-round ratios | within 5 % |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(c, key=lambda k: (k[0], k[1])):
        if key not in py:
            continue
        cm, pm = statistics.median(c[key]), statistics.median(py[key])
        ratios = [p / q for p, q in zip(py[key], c[key])]
        paired = statistics.median(ratios)
        rounds = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"| {key[0]} | {size(key[1])} | {cm:.2f} | {pm:.2f} | {pm / cm:.3f} | {rounds} "
              f"| {paired:.3f} | {'✔' if paired >= 0.95 else '✘'} |")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "benches/results/python"
    if os.path.exists(f"{d}/run.txt"):
        print(open(f"{d}/run.txt").read().strip().replace("\n", "; "))
        print()
    api_table(d)
    bw_table(d)


if __name__ == "__main__":
    main()
