//! What the step needs, planner aside: scripted runs that hold a fixed split until a chosen
//! reaction time after the step, then ask for a surge split (ready one start-up delay later)
//! for a while and a fixed split after that. The first table shows which split must already
//! be running when the step comes, how much a faster reaction is worth, and what the rest of
//! the run costs; the second searches a wider grid of plans reacting 1 s after the step and
//! keeps the ones no cheaper plan beats on attainment.

use std::fmt::Write as _;
use std::path::Path;

use planner::{Observation, Planner, ReplicaTarget};

use crate::driver::{self, RunOutcome};
use crate::scenarios::{self, Scenario};

/// Holds `before` until `react_at`, then `surge` for `surge_s`, then `after`.
#[derive(Clone, Copy)]
struct Scripted {
    before: ReplicaTarget,
    react_at: f64,
    surge: ReplicaTarget,
    surge_s: f64,
    after: ReplicaTarget,
}

impl Planner for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn interval(&self) -> f64 {
        1.0
    }
    fn decide(&mut self, obs: &Observation) -> ReplicaTarget {
        if obs.time < self.react_at {
            self.before
        } else if obs.time < self.react_at + self.surge_s {
            self.surge
        } else {
            self.after
        }
    }
}

fn split((prefill, decode): (u32, u32)) -> ReplicaTarget {
    ReplicaTarget::new(prefill, decode)
}

fn label(t: ReplicaTarget) -> String {
    format!("{}P{}D", t.prefill, t.decode)
}

fn replay(step: &Scenario, mut plan: Scripted) -> RunOutcome {
    driver::run_planned(
        &scenarios::base_config(),
        &step.workload,
        plan.before,
        &mut plan,
    )
}

/// Runs both searches on the step scenario and writes them as markdown to `out`.
pub fn run(out: &Path) {
    let step = scenarios::scenarios(false)
        .into_iter()
        .find(|s| s.name == "step")
        .expect("the step scenario");
    let mut text = reaction_table(&step);
    text.push('\n');
    text.push_str(&frontier_table(&step));
    std::fs::write(out, &text).expect("write the step-bound tables");
    print!("{text}");
}

/// The split held at the step × reaction time × split after, with a 6P4D surge for 40 s.
fn reaction_table(step: &Scenario) -> String {
    let mut table = String::from(
        "| split held at the step | reaction at (s) | split from reaction + 40 s | SLA attainment | worker-s | misses 200–250 s |\n|---|---|---|---|---|---|\n",
    );
    let grid = [(3, 3), (4, 2), (4, 3), (5, 3)]
        .into_iter()
        .flat_map(|b| [201.0, 210.0].map(move |r| (b, r)))
        .flat_map(|(b, r)| [(5, 3), (5, 4), (6, 4)].map(move |a| (b, r, a)));
    for (before, react_at, after) in grid {
        let plan = Scripted {
            before: split(before),
            react_at,
            surge: split((6, 4)),
            surge_s: 40.0,
            after: split(after),
        };
        let run = replay(step, plan);
        let _ = writeln!(
            table,
            "| {} | {react_at:.0} | {} | {:.1}% | {:.0} | {} |",
            label(plan.before),
            label(plan.after),
            100.0 * run.attainment(),
            run.worker_seconds(),
            run.misses_by_arrival(50.0)[4]
        );
    }
    table
}

/// 6 held splits × 6 surge splits × 3 surge lengths × 3 splits after, all reacting 1 s after
/// the step; prints the plans on the cost/attainment frontier (each reaches a higher
/// attainment than every cheaper plan).
fn frontier_table(step: &Scenario) -> String {
    let mut runs = Vec::new();
    for before in [(3, 3), (4, 2), (4, 3), (5, 2), (3, 4), (4, 4)] {
        for surge in [(6, 3), (6, 4), (7, 3), (7, 4), (8, 3), (8, 4)] {
            for surge_s in [20.0, 40.0, 60.0] {
                for after in [(5, 3), (5, 4), (6, 3)] {
                    let plan = Scripted {
                        before: split(before),
                        react_at: 201.0,
                        surge: split(surge),
                        surge_s,
                        after: split(after),
                    };
                    let run = replay(step, plan);
                    runs.push((run.worker_seconds(), run.attainment(), plan));
                }
            }
        }
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut table = format!(
        "Frontier of {} plans reacting at 201 s (each row: higher attainment than every cheaper plan)\n\n| held at the step | surge split | surge length (s) | split after | SLA attainment | worker-s |\n|---|---|---|---|---|---|\n",
        runs.len()
    );
    let mut best = f64::NEG_INFINITY;
    for (worker_s, attainment, plan) in runs {
        if attainment > best {
            best = attainment;
            let _ = writeln!(
                table,
                "| {} | {} | {:.0} | {} | {:.1}% | {worker_s:.0} |",
                label(plan.before),
                label(plan.surge),
                plan.surge_s,
                label(plan.after),
                100.0 * attainment
            );
        }
    }
    table
}
