#!/usr/bin/env python3
"""Writes the host-tier / peer-fetch section of sim/EVALUATION.md and its SVG plots from the
result files of run.sh (results/*.json, one `sim replay --json` per configuration) and from
Dynamo's own replay of the conversation trace (planner/eval/routing/dynamo-mocker-runs.txt,
written by sim/compare-dynamo).

    sim/eval/kvtier/report.py        (no dependencies beyond Python 3)
"""
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RESULTS = HERE / "results"
DOC = ROOT / "sim" / "EVALUATION.md"
MOCKER_RUNS = ROOT / "planner" / "eval" / "routing" / "dynamo-mocker-runs.txt"
BEGIN, END = "<!-- kvtier:begin (report.py) -->", "<!-- kvtier:end -->"
WORKLOADS = {
    "conversation": "Mooncake conversation trace (12,031 requests)",
    "synthetic": "synthetic shared-prefix load (2,000 groups, 30 req/s, 200 s)",
}
CONFIGS = [(h, f) for f in (False, True) for h in (0, 2, 4)]


def load(workload, host, fetch):
    path = RESULTS / f"{workload}-h{host}-{'fetch' if fetch else 'nofetch'}.json"
    if not path.exists():
        return None
    return {run["policy"]: run["report"] for run in json.loads(path.read_text())}


def total_hit(r):
    return r["prefix_hit_rate"] + r["host_hit_rate"] + r["fetched_hit_rate"]


def mocker_kv_router_p99():
    """Dynamo's own KV-router replay p99 TTFT (ms), every recorded run."""
    if not MOCKER_RUNS.exists():
        return []
    return [float(m.group(1)) for m in re.finditer(
        r"KvRouter: .*?TTFT p50/p90/p99 \d+/\d+/(\d+) ms", MOCKER_RUNS.read_text())]


def table(workload):
    base = (load(workload, 0, False) or {}).get("dynamo")
    if base is None:
        return None, [], []
    rows = ["| host tier | fetch | policy | TTFT p50/p90/p99 ms | p99 / Dynamo (no tier) | "
            "hit GPU + host + fetched = total | total / ideal | blocks offloaded / onboarded / pulled |",
            "|---|---|---|---|---|---|---|---|"]
    bars, best = [], []
    for host, fetch in CONFIGS:
        runs = load(workload, host, fetch)
        if runs is None:
            continue
        for policy, r in runs.items():
            t, ideal = r["ttft"], r["ideal_hit_rate"]
            m = r["kv_moves"]
            rows.append(
                f"| {host}x | {'on' if fetch else 'off'} | {policy} | "
                f"{t['p50']:.0f}/{t['p90']:.0f}/{t['p99']:.0f} | {t['p99'] / base['ttft']['p99']:.2f} | "
                f"{r['prefix_hit_rate']:.3f} + {r['host_hit_rate']:.3f} + {r['fetched_hit_rate']:.3f} = "
                f"{total_hit(r):.3f} | {total_hit(r) / ideal:.0%} | "
                f"{m['engines']['host']['offloaded']:,} / {m['engines']['host']['onboarded']:,} / "
                f"{m['pulled_blocks']:,} |")
            label = f"{host}x{' +fetch' if fetch else ''} {policy}"
            bars.append((label, total_hit(r) / ideal, t["p99"] / base["ttft"]["p99"]))
            if policy.startswith("ours"):
                best.append((label, total_hit(r) / ideal, t["p99"], t["p99"] / base["ttft"]["p99"]))
    return base, rows, bars, best


def runs_of(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else []


def reserve_table(workload, base):
    """The idle-reservation experiment (run.sh: `<workload>-h4-fetch-reserve`)."""
    runs = runs_of(f"{workload}-h4-fetch-reserve")
    if not runs:
        return []
    rows = ["Experiment, not a default (`ours:reserve=S`, 4x host tier + fetch): S seconds of cost "
            "for sending a one-pass prompt to a worker with nothing in flight, keeping decode-free "
            "workers for multi-pass prompts.", "",
            "| policy | TTFT p50/p90/p99 ms | p99 / Dynamo (no tier) | ITL p99 ms | hit total / ideal |",
            "|---|---|---|---|---|"]
    for run in runs:
        r = run["report"]
        t = r["ttft"]
        rows.append(f"| {run['policy']} | {t['p50']:.0f}/{t['p90']:.0f}/{t['p99']:.0f} | "
                    f"{t['p99'] / base['ttft']['p99']:.3f} | {r['itl']['p99']:.1f} | "
                    f"{total_hit(r):.3f} / {r['ideal_hit_rate']:.3f} |")
    return rows + [""]


def seed_table(base0):
    """Seed spread of the p99 ratio (run.sh: `conversation-seed<s>-*`)."""
    rows = ["| seed | Dynamo, no tier: p99 ms | ours, 4x + fetch: p99 ms | ratio |", "|---|---|---|---|"]
    pairs = [(0, base0, (load("conversation", 4, True) or {}).get("ours"))]
    for s in (1, 2, 3):
        b, o = runs_of(f"conversation-seed{s}-h0-nofetch"), runs_of(f"conversation-seed{s}-h4-fetch")
        if b and o:
            pairs.append((s, b[0]["report"], o[0]["report"]))
    if len(pairs) < 2 or pairs[0][2] is None:
        return []
    for s, b, o in pairs:
        rows.append(f"| {s} | {b['ttft']['p99']:.0f} | {o['ttft']['p99']:.0f} | "
                    f"{o['ttft']['p99'] / b['ttft']['p99']:.3f} |")
    return ["Seed spread (tie-breaks of both policies; the tables above are seed 0):", "", *rows, ""]


def svg_bars(path, title, bars, value, target, fmt):
    """A horizontal bar chart with a dashed target line; no plotting library needed."""
    w, left, row, top = 760, 230, 22, 40
    h = top + row * len(bars) + 30
    hi = max([value(b) for b in bars] + [target]) * 1.1
    x = lambda v: left + (w - left - 60) * v / hi
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    for i, b in enumerate(bars):
        y = top + i * row
        v = value(b)
        colour = "#2b7bb9" if "ours" in b[0] else "#999999"
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{b[0]}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{x(v) - left:.1f}" height="{row - 6}" fill="{colour}"/>')
        out.append(f'<text x="{x(v) + 4:.1f}" y="{y + 14}">{fmt(v)}</text>')
    out.append(f'<line x1="{x(target):.1f}" y1="{top - 5}" x2="{x(target):.1f}" y2="{h - 25}" '
               f'stroke="#d62728" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x(target):.1f}" y="{h - 10}" text-anchor="middle" fill="#d62728">target {fmt(target)}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main():
    parts = []
    for workload, title in WORKLOADS.items():
        res = table(workload)
        if res[0] is None:
            parts.append(f"### {title}\n\nNo results (run `sim/eval/kvtier/run.sh`).\n")
            continue
        base, rows, bars, best = res
        svg_bars(HERE / f"{workload}-hit.svg", f"{workload}: total hit rate / ideal", bars,
                 lambda b: b[1], 0.9, lambda v: f"{v:.0%}")
        svg_bars(HERE / f"{workload}-p99.svg", f"{workload}: TTFT p99 / Dynamo's policy without tier",
                 bars, lambda b: b[2], 0.9, lambda v: f"{v:.2f}")
        hit_best = max(best, key=lambda b: b[1])
        p99_best = min(best, key=lambda b: b[3])
        lines = [f"### {title}", "",
                 f"Baseline: Dynamo's policy, no tier, no fetch: TTFT p99 {base['ttft']['p99']:.0f} ms, "
                 f"hit {base['prefix_hit_rate']:.3f}; ideal (infinite shared cache) {base['ideal_hit_rate']:.3f}.", "",
                 *rows, "",
                 f"- Best hit rate of our policy: **{hit_best[1]:.0%} of the ideal** ({hit_best[0]}); "
                 f"target ≥ 90%: **{'met' if hit_best[1] >= 0.9 else 'not met'}**.",
                 f"- Best TTFT p99 of our policy: **{p99_best[2]:.0f} ms = {p99_best[3]:.2f}× Dynamo's policy "
                 f"without tier** ({p99_best[0]}); target ≤ 0.9×: **{'met' if p99_best[3] <= 0.9 else 'not met'}**."]
        mocker = mocker_kv_router_p99() if workload == "conversation" else []
        if mocker:
            worst, bestm = max(mocker), min(mocker)
            ratio = p99_best[2] / bestm
            lines.append(
                f"- Against Dynamo's own replay (dynamo-mocker 1.6.1 KV router, no offload, "
                f"{len(mocker)} recorded runs, p99 {bestm:.0f}–{worst:.0f} ms): **{ratio:.2f}×** of its best run; "
                f"target ≤ 0.9×: **{'met' if ratio <= 0.9 else 'not met'}**.")
        lines += ["", *reserve_table(workload, base)]
        if workload == "conversation":
            lines += seed_table(base)
        lines += [f"![hit rate]({HERE.relative_to(ROOT / 'sim')}/{workload}-hit.svg) "
                      f"![TTFT p99]({HERE.relative_to(ROOT / 'sim')}/{workload}-p99.svg)", ""]
        parts.append("\n".join(lines))
    body = "\n".join(parts)
    text = DOC.read_text() if DOC.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
    print(body)


if __name__ == "__main__":
    main()
