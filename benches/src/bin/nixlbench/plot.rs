//! PNG plot of bandwidth against block size for each library (and the limit).
//! Text uses the font bundled by `plot-support`.

use crate::report::Row;
use plot_support::colors::{BLUE, GREEN, RED};
use plot_support::{PlotError, legend, line};
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 4] = [RED, BLUE, RGBColor(90, 90, 90), GREEN];

/// Writes the plot of the `sweep` rows to `path`.
pub fn bandwidth(path: &Path, rows: &[Row], title: &str) -> Result<(), PlotError> {
    plot_support::register_bundled_font();
    let sweep: Vec<&Row> = rows
        .iter()
        .filter(|r| r.point.name == "sweep" && r.outcome.error.is_none())
        .collect();
    if sweep.is_empty() {
        return Err(PlotError::new("no sweep rows to plot"));
    }
    let mut libs: Vec<String> = Vec::new();
    for r in &sweep {
        if !libs.contains(&r.outcome.lib) {
            libs.push(r.outcome.lib.clone());
        }
    }
    let xs = |b: usize| (b as f64).log2();
    let (xmin, xmax) = sweep.iter().fold((f64::MAX, f64::MIN), |(a, b), r| {
        (a.min(xs(r.point.block)), b.max(xs(r.point.block)))
    });
    let ymax = sweep
        .iter()
        .map(|r| {
            r.outcome
                .gbps
                .max(r.memcpy_gbps.unwrap_or(0.0))
                .max(r.tcp_gbps.unwrap_or(0.0))
        })
        .fold(0.0, f64::max)
        * 1.1;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(xmin - 0.3..xmax + 0.3, 0.0..ymax.max(0.1))?;
    chart
        .configure_mesh()
        .x_desc("block size")
        .y_desc("GB/s")
        .x_label_formatter(&|x| {
            let b = 2f64.powf(*x).round() as u64;
            match b {
                b if b >= 1 << 20 => format!("{}M", b >> 20),
                b if b >= 1 << 10 => format!("{}K", b >> 10),
                b => b.to_string(),
            }
        })
        .draw()?;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = libs
        .iter()
        .map(|l| {
            (
                l.clone(),
                sweep
                    .iter()
                    .filter(|r| &r.outcome.lib == l)
                    .map(|r| (xs(r.point.block), r.outcome.gbps))
                    .collect(),
            )
        })
        .collect();
    let mut limit: Vec<(f64, f64)> = Vec::new();
    for r in sweep.iter().filter(|r| r.outcome.lib == libs[0]) {
        if let Some(g) = r.tcp_gbps.or(r.memcpy_gbps) {
            limit.push((xs(r.point.block), g));
        }
    }
    if !limit.is_empty() {
        let label = if sweep[0].tcp_gbps.is_some() {
            "raw TCP"
        } else {
            "memcpy (1 thread)"
        };
        series.push((label.into(), limit));
    }
    for (i, (label, pts)) in series.into_iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        line(&mut chart, label, c, pts.clone())?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft).draw()?;
    root.present()?;
    Ok(())
}
