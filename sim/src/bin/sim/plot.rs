//! PNG plots with plotters' bitmap backend. Text uses the Hack font bundled
//! in `epaint_default_fonts`, so nothing is needed from the system.

use crate::Run;
use plot_support::colors::{BLUE, CYAN, GREEN, ORANGE, PURPLE, RED};
use plot_support::{PlotError, legend, line};
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, ORANGE, PURPLE, CYAN];

/// TTFT cumulative distribution per policy (log-scaled time axis).
pub fn ttft_cdf(path: &Path, runs: &[Run]) -> Result<(), PlotError> {
    plot_support::register_bundled_font();
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = runs
        .iter()
        .flat_map(|r| r.ttft_ms.iter().copied())
        .fold(1.0, f64::max);
    let min = runs
        .iter()
        .flat_map(|r| r.ttft_ms.iter().copied())
        .fold(f64::INFINITY, f64::min)
        .clamp(1.0, max);
    let mut chart = ChartBuilder::on(&root)
        .caption("TTFT distribution per routing policy", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((min..max * 1.05).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("TTFT (ms, log scale)")
        .y_desc("fraction of requests")
        .draw()?;
    for (i, r) in runs.iter().enumerate() {
        let mut v = r.ttft_ms.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len().max(1) as f64;
        let stride = (v.len() / 2000).max(1);
        let pts: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .filter(|(k, _)| k % stride == 0 || *k + 1 == v.len())
            .map(|(k, &x)| (x.max(min), (k + 1) as f64 / n))
            .collect();
        let color = COLORS[i % COLORS.len()];
        let label = format!(
            "{} (p50 {:.0}, p99 {:.0} ms)",
            r.policy, r.report.ttft.p50, r.report.ttft.p99
        );
        line(&mut chart, label, color, pts)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight).draw()?;
    root.present()?;
    Ok(())
}

/// Ready replicas per pool against the arrival rate, for the first run.
pub fn replicas(path: &Path, runs: &[Run]) -> Result<(), PlotError> {
    plot_support::register_bundled_font();
    let Some(run) = runs.first() else {
        return Ok(());
    };
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = run.intervals.last().map_or(1.0, |x| x.0);
    let max_rate = run.intervals.iter().map(|x| x.1).fold(0.1, f64::max);
    let max_rep = run
        .intervals
        .iter()
        .flat_map(|x| x.2.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Replicas vs load ({}, {})", run.policy, run.planner),
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0.0..(max_rep as f64 + 1.0))?
        .set_secondary_coord(0.0..t_max, 0.0..max_rate * 1.1);
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("ready replicas")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("arrivals (req/s)")
        .draw()?;
    let pools = run
        .report
        .gpu_seconds
        .iter()
        .map(|(r, _)| *r)
        .collect::<Vec<_>>();
    for (k, role) in pools.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<(f64, f64)> = run
            .intervals
            .iter()
            .map(|(t, _, reps)| (*t, reps.get(k).copied().unwrap_or(0) as f64))
            .collect();
        line(&mut *chart, format!("{role:?} replicas"), color, pts)?;
    }
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_secondary_series(LineSeries::new(
            run.intervals.iter().map(|(t, r, _)| (*t, *r)),
            grey.stroke_width(1),
        ))?
        .label("arrivals / s")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1)));
    legend(&mut *chart, SeriesLabelPosition::UpperLeft).draw()?;
    root.present()?;
    Ok(())
}
