//! The run's PNG: TTFT of each request over time (top) and ready replicas per pool (bottom).
//! plotters' bitmap backend with the Hack font bundled in `epaint_default_fonts`.

use super::metrics::Metrics;
use plot_support::err;
use plotters::prelude::*;
use std::path::Path;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREEN: RGBColor = RGBColor(44, 160, 44);

/// Writes the two-panel PNG to `path`.
pub fn write(path: &Path, m: &Metrics) -> Result<(), String> {
    plot_support::register_bundled_font();
    let root = BitMapBackend::new(path, (1000, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(420);
    let t_end = m
        .replicas
        .last()
        .map(|r| r.0)
        .into_iter()
        .chain(m.ttft.iter().map(|t| t.0))
        .fold(1.0, f64::max);
    let max_ttft = m.ttft.iter().map(|t| t.1 * 1000.0).fold(10.0, f64::max);
    let mut chart = ChartBuilder::on(&top)
        .caption("TTFT of each request (by arrival time)", ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_end * 1.02, 0.0..max_ttft * 1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("TTFT (ms)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            m.ttft
                .iter()
                .map(|&(t, v)| Circle::new((t, v * 1000.0), 2, BLUE.filled())),
        )
        .map_err(err)?;
    let max_rep = m
        .replicas
        .iter()
        .map(|r| r.1.max(r.2))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&bottom)
        .caption("ready replicas per pool", ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_end * 1.02, 0.0..f64::from(max_rep) + 1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("replicas")
        .draw()
        .map_err(err)?;
    for (label, color, pick) in [("prefill", RED, 0usize), ("decode", GREEN, 1usize)] {
        let pts: Vec<(f64, f64)> = m
            .replicas
            .iter()
            .map(|r| (r.0, f64::from(if pick == 0 { r.1 } else { r.2 })))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
