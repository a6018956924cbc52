//! What the step needs, planner aside: scripted runs that hold a fixed split until a chosen
//! reaction time after the step, then ask for 6P4D (ready one start-up delay later) for
//! 40 s and a fixed split after that. They show which split must already be running when
//! the step comes, how much a faster reaction is worth, and what the rest of the run costs.

use std::fmt::Write as _;
use std::path::Path;

use planner::{Observation, Planner, ReplicaTarget};

use crate::driver;
use crate::scenarios;

/// Holds `before` until `react_at`, then `surge` for 40 s, then `after`.
struct Scripted {
    before: ReplicaTarget,
    react_at: f64,
    surge: ReplicaTarget,
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
        } else if obs.time < self.react_at + 40.0 {
            self.surge
        } else {
            self.after
        }
    }
}

/// Runs the grid on the step scenario and writes a markdown table to `out`.
pub fn run(out: &Path) {
    let base = scenarios::base_config();
    let step = scenarios::scenarios(false)
        .into_iter()
        .find(|s| s.name == "step")
        .expect("the step scenario");
    let mut table = String::from(
        "| split held at the step | reaction at (s) | split from reaction + 40 s | SLA attainment | worker-s | misses 200–250 s |\n|---|---|---|---|---|---|\n",
    );
    let grid = [(3, 3), (4, 2), (4, 3), (5, 3)]
        .into_iter()
        .flat_map(|b| [201.0, 210.0].map(move |r| (b, r)))
        .flat_map(|(b, r)| [(5, 3), (5, 4), (6, 4)].map(move |a| (b, r, a)));
    for ((p, d), react_at, (ap, ad)) in grid {
        let mut plan = Scripted {
            before: ReplicaTarget::new(p, d),
            react_at,
            surge: ReplicaTarget::new(6, 4),
            after: ReplicaTarget::new(ap, ad),
        };
        let run = driver::run_planned(&base, &step.workload, plan.before, &mut plan);
        let _ = writeln!(
            table,
            "| {p}P{d}D | {react_at:.0} | {ap}P{ad}D | {:.1}% | {:.0} | {} |",
            100.0 * run.attainment(),
            run.worker_seconds(),
            run.misses_by_arrival(50.0)[4]
        );
    }
    std::fs::write(out, &table).expect("write the step-bound table");
    print!("{table}");
}
