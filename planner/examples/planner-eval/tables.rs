//! The report's tables, written from the evaluation's result files alone (`results.json`,
//! the tick files, `biases.json`, and the `before-*-fix.json` results when present), so
//! that every figure in EVALUATION.md can be regenerated with `planner-eval tables --dir
//! DIR`.

use std::fmt::Write as _;
use std::path::Path;

use crate::driver::Tick;
use crate::scenarios::{Row, slug};

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Results of the same planners before each profile fix, and what the fix was.
const BEFORE: [(&str, &str); 2] = [
    (
        "before-decode-fix.json",
        "decode throughput computed at the exact point instead of interpolated from a stored grid (previous commit's results.json; only v0.4 reads decode throughput)",
    ),
    (
        "before-prefill-fix.json",
        "prefill capacity measured on a saturated engine instead of estimated from one lone 8,192-token prompt (same code, profile without `saturated_tokens_per_s`)",
    ),
];

/// All tables for the results in `dir`, as markdown.
pub fn from_dir(dir: &Path) -> Result<String, String> {
    let rows: Vec<Row> = read(&dir.join("results.json"))?;
    let mut md = String::new();
    let mut scenarios: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    for scenario in &scenarios {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.scenario == *scenario).collect();
        main_table(&mut md, scenario, &rs);
        frontier(&mut md, scenario, &rs);
        segments(&mut md, dir, scenario, &rs);
    }
    let biases = dir.join("biases.json");
    if biases.exists() {
        bias_table(&mut md, &read(&biases)?);
    }
    for (file, what) in BEFORE {
        let before = dir.join(file);
        if before.exists() {
            moved_table(&mut md, what, &read::<Vec<Row>>(&before)?, &rows);
        }
    }
    Ok(md)
}

fn find<'a>(rows: &[&'a Row], prefix: &str) -> Option<&'a Row> {
    rows.iter().copied().find(|r| r.planner.starts_with(prefix))
}

/// Every planner with its attainment and worker-s against the oracle and the best static
/// split.
fn main_table(md: &mut String, scenario: &str, rows: &[&Row]) {
    let oracle = find(rows, "oracle");
    let stat = find(rows, "best static");
    let _ = writeln!(
        md,
        "\n### {scenario}: every planner against the oracle\n\n| planner | SLA attainment | vs oracle (points) | worker-s | × oracle | × best static | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) | oscillations |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let vs_oracle = oracle.map_or(String::from("–"), |o| {
            format!("{:+.1}", 100.0 * (r.attainment - o.attainment))
        });
        let ratio = |base: Option<&Row>| {
            base.map_or(String::from("–"), |b| {
                format!("{:.2}", r.worker_seconds / b.worker_seconds)
            })
        };
        let _ = writeln!(
            md,
            "| {} | {:.1}% | {} | {:.0} | {} | {} | {:.0} / {:.0} | {:.1} / {:.1} | {} |",
            r.planner,
            100.0 * r.attainment,
            vs_oracle,
            r.worker_seconds,
            ratio(oracle),
            ratio(stat),
            r.ttft_p50_ms,
            r.ttft_p99_ms,
            r.itl_p50_ms,
            r.itl_p99_ms,
            r.oscillations
        );
    }
}

/// Our runs and the best static split sorted by worker-s; a row is on the frontier when it
/// beats every cheaper row on attainment.
fn frontier(md: &mut String, scenario: &str, rows: &[&Row]) {
    let mut ours: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| {
            r.planner == "ours"
                || r.planner.starts_with("ours (")
                || r.planner.starts_with("best static")
        })
        .collect();
    ours.sort_by(|a, b| a.worker_seconds.total_cmp(&b.worker_seconds));
    let budget = find(rows, "best static").map(|r| r.worker_seconds);
    let _ = writeln!(
        md,
        "\n### {scenario}: our runs by cost (frontier = better attainment than every cheaper run)\n\n| run | worker-s | SLA attainment | frontier | ≤ best static worker-s |\n|---|---|---|---|---|"
    );
    let mut best = f64::NEG_INFINITY;
    for r in ours {
        let on = r.attainment > best;
        best = best.max(r.attainment);
        let within = budget.is_some_and(|b| r.worker_seconds <= b + 0.5);
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1}% | {} | {} |",
            r.planner,
            r.worker_seconds,
            100.0 * r.attainment,
            if on { "yes" } else { "" },
            if within { "yes" } else { "" }
        );
    }
}

/// Replica-seconds asked for (ready + starting, as the ticks saw them) per 100 s, for the
/// plotted planners: where each spends more than the oracle.
fn segments(md: &mut String, dir: &Path, scenario: &str, rows: &[&Row]) {
    let names = [
        "oracle",
        "dynamo-current",
        "ours",
        "ours (previous settings)",
    ];
    let mut lines = Vec::new();
    let mut width = 0;
    for name in names {
        if find(rows, name).is_none() {
            continue;
        }
        let path = dir.join(format!("ticks-{scenario}-{}.json", slug(name)));
        let Ok(ticks) = read::<Vec<Tick>>(&path) else {
            continue;
        };
        let mut seg: Vec<f64> = Vec::new();
        let mut last = 0.0;
        for t in ticks.iter().filter(|t| !t.emergency) {
            let i = ((t.time - 1e-6) / 100.0).floor().max(0.0) as usize;
            if seg.len() <= i {
                seg.resize(i + 1, 0.0);
            }
            seg[i] += f64::from(t.prefill + t.decode) * (t.time - last);
            last = t.time;
        }
        width = width.max(seg.len());
        lines.push((name, seg));
    }
    if lines.is_empty() {
        return;
    }
    let head: String = (0..width)
        .map(|i| format!(" {}–{} s |", i * 100, (i + 1) * 100))
        .collect();
    let _ = writeln!(
        md,
        "\n### {scenario}: replica-s asked for per 100 s (ready + starting at each decision)\n\n| planner |{head} total |\n|---|{}---|",
        "---|".repeat(width)
    );
    for (name, seg) in lines {
        let cells: String = (0..width)
            .map(|i| format!(" {:.0} |", seg.get(i).copied().unwrap_or(0.0)))
            .collect();
        let _ = writeln!(md, "| {name} |{cells} {:.0} |", seg.iter().sum::<f64>());
    }
}

fn bias_table(md: &mut String, b: &serde_json::Value) {
    let f = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        md,
        "\n### Profile against the simulator (ISL 3000, OSL 150, ITL target)\n\n| quantity | before the fix | after | simulator | before / simulator | after / simulator |\n|---|---|---|---|---|---|"
    );
    let sim_d = f("decode_thpt_sim");
    let _ = writeln!(
        md,
        "| decode tokens/s, batch {} at context 3,075 (KV usage {:.3}) | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} |",
        b["decode_batch"],
        f("decode_usage"),
        f("decode_thpt_grid"),
        f("decode_thpt_exact"),
        sim_d,
        f("decode_thpt_grid") / sim_d,
        f("decode_thpt_exact") / sim_d
    );
    let sim_p = f("prefill_saturated_sim");
    let _ = writeln!(
        md,
        "| prefill tokens/s of a saturated engine (our sizing) | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} |",
        f("prefill_saturated_old"),
        sim_p,
        sim_p,
        f("prefill_saturated_old") / sim_p,
        1.0
    );
    let _ = writeln!(
        md,
        "| prefill tokens/s per engine in v0.4's equation (lone requests, kept as Dynamo defines it) | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} |",
        f("prefill_v04_thpt"),
        f("prefill_v04_thpt"),
        sim_p,
        f("prefill_v04_thpt") / sim_p,
        f("prefill_v04_thpt") / sim_p
    );
}

/// Rows present in both runs that changed: attainment and worker-s before and after a fix.
fn moved_table(md: &mut String, what: &str, before: &[Row], after: &[Row]) {
    let _ = writeln!(
        md,
        "\n### What one profile fix moved: {what}\n\n| scenario | planner | attainment before → after | worker-s before → after |\n|---|---|---|---|"
    );
    for a in after {
        let Some(b) = before
            .iter()
            .find(|b| b.scenario == a.scenario && b.planner == a.planner)
        else {
            continue;
        };
        if (a.attainment - b.attainment).abs() < 5e-4
            && (a.worker_seconds - b.worker_seconds).abs() < 0.5
        {
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {:.1}% → {:.1}% | {:.0} → {:.0} |",
            a.scenario,
            a.planner,
            100.0 * b.attainment,
            100.0 * a.attainment,
            b.worker_seconds,
            a.worker_seconds
        );
    }
}
