//! A PNG of the operator's view: time series read back from Prometheus after a run (see
//! `disagg/tests/prometheus.rs`), one panel each, drawn like the run's own report PNG. The
//! Grafana dashboard with the same panels is `docs/observe/grafana-dashboard.json`.

use plot_support::colors::{BLUE, BROWN, GREEN, ORANGE, PURPLE, RED};
use plot_support::{PlotError, legend, line};
use plotters::prelude::*;
use std::path::Path;

/// One panel: a title, the y axis's description and named series of (seconds, value).
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// Shown above the panel.
    pub title: String,
    /// The y axis's description.
    pub y_desc: String,
    /// (name, points) per line.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, ORANGE, PURPLE, BROWN];

/// Draws `panels` in a grid of two columns to `path`.
pub fn write(path: &Path, panels: &[Panel]) -> Result<(), PlotError> {
    plot_support::register_bundled_font();
    let rows = panels.len().div_ceil(2).max(1);
    let root = BitMapBackend::new(path, (1200, 300 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, panel) in root.split_evenly((rows, 2)).iter().zip(panels) {
        draw(area, panel)?;
    }
    Ok(root.present()?)
}

fn draw(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    p: &Panel,
) -> Result<(), PlotError> {
    let points = || p.series.iter().flat_map(|(_, pts)| pts.iter());
    let t_end = points().map(|&(t, _)| t).fold(1.0, f64::max);
    let y_max = points()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_end, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(&p.y_desc)
        .draw()?;
    for (i, (name, pts)) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts = pts.iter().copied().filter(|(_, v)| v.is_finite());
        line(&mut chart, name.as_str(), color, pts)?;
    }
    if !p.series.is_empty() {
        legend(&mut chart, SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}
