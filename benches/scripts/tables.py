#!/usr/bin/env python3
"""Prints BENCHMARKS.md's result tables from two compare.sh runs' CSVs.

    benches/scripts/tables.py LATEST_DIR OTHER_DIR

LATEST_DIR gives the figures; OTHER_DIR (a second run of the same commit) gives the
"x other run" column, to show how much the ratios move between runs.
"""
import csv
import sys
from pathlib import Path


def load(directory, name):
    rows = {}
    path = Path(directory) / f"{name}.csv"
    if not path.exists():
        return rows
    with open(path) as f:
        for r in csv.DictReader(f):
            key = (r["workload"], r["op"], int(r["block_size"]), int(r["batch_size"]), r["threads"])
            rows.setdefault(key, {})[r["lib"]] = r
    return rows


def ratio(pair, field="gbps"):
    if "ours" not in pair or "nixl" not in pair:
        return None
    ours, nixl = float(pair["ours"][field]), float(pair["nixl"][field])
    return ours / nixl if field == "gbps" else nixl / ours


def size(b):
    for unit, n in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= n and b % n == 0:
            return f"{b // n} {unit}"
    return f"{b} B"


def fmt_x(x):
    return "–" if x is None else f"{x:.2f}×"


def sweep_table(latest, other, names, limit_field, limit_name):
    print(f"| op | block | ours | NIXL | × | {limit_name} | ours/{limit_name} | × other run |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        now, before = load(latest, name), load(other, name)
        for key, pair in now.items():
            o, n = pair["ours"], pair["nixl"]
            limit = float(o[limit_field])
            print(
                f"| {key[1]} | {size(key[2])} | {float(o['gbps']):.3f} | {float(n['gbps']):.3f} "
                f"| **{fmt_x(ratio(pair))}** | {limit:.2f} | {100 * float(o['gbps']) / limit:.0f} % "
                f"| {fmt_x(ratio(before.get(key, {})))} |"
            )


def main():
    latest, other = sys.argv[1], sys.argv[2]
    for title, seg in (
        ("Same host, two processes, `malloc` buffers (cross-memory attach for both)", "malloc"),
        ("Same host, huge-page buffers (`MADV_HUGEPAGE`)", "huge"),
        ("Same host, shared (memfd) buffers: our shared-mapping fast path; NIXL uses CMA", "shared"),
    ):
        print(f"### {title}\n")
        sweep_table(latest, other, [f"cma-{seg}-WRITE", f"cma-{seg}-READ"], "memcpy_gbps", "limit")
        print()

    print("### One 4 KiB transfer (2,000 iterations, µs)\n")
    print("| op | ours avg / p99 Tx | NIXL avg / p99 Tx | × (avg) | × other run |")
    print("|---|---|---|---|---|")
    for name in ("lat-4k", "lat-4k-read"):
        now, before = load(latest, name), load(other, name)
        for key, pair in now.items():
            o, n = pair["ours"], pair["nixl"]
            print(
                f"| {key[1]} | {float(o['avg_tx_us']):.1f} / {float(o['p99_tx_us']):.1f} "
                f"| {float(n['avg_tx_us']):.1f} / {float(n['p99_tx_us']):.1f} "
                f"| {fmt_x(ratio(pair, 'avg_tx_us'))} | {fmt_x(ratio(before.get(key, {}), 'avg_tx_us'))} |"
            )
    print()

    print("### TCP forced (`UCX_TLS=tcp` / `NIXL_RS_TRANSPORT=tcp`), `malloc` buffers\n")
    print(
        '"raw TCP" here is one raw loopback TCP stream copying the same bytes buffer to buffer, '
        "with a delivery acknowledgement, measured in every round and averaged.\n"
    )
    sweep_table(latest, other, ["tcp-WRITE", "tcp-READ"], "tcp_gbps", "raw TCP")
    print()

    print(
        "### Consumer-shaped workloads (`--workload consumers`, `malloc`, notification attached "
        "to the vLLM/SGLang/TRT-LLM rows)\n"
    )
    print("| workload | shape | ours GB/s | NIXL GB/s | × | × other run | ours / NIXL `make_xfer_req` µs |")
    print("|---|---|---|---|---|---|---|")
    labels = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TRT-LLM", "mt1": "1 thread", "mt8": "8 threads, one agent,"}
    now, before = load(latest, "consumers"), load(other, "consumers")
    for key, pair in now.items():
        o, n = pair["ours"], pair["nixl"]
        threads = int(key[4])
        shape = f"{key[3]:,} × {size(key[2])}"
        if threads > 1:
            shape = f"{threads} × ({shape})"
        print(
            f"| {labels.get(key[0], key[0])} {key[1]} | {shape} | {float(o['gbps']):.3f} | {float(n['gbps']):.3f} "
            f"| **{fmt_x(ratio(pair))}** | {fmt_x(ratio(before.get(key, {})))} "
            f"| {float(o['avg_prep_us']):,.0f} / {float(n['avg_prep_us']):,.0f} |"
        )


if __name__ == "__main__":
    main()
