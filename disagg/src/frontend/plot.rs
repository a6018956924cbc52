//! The run's PNG: TTFT of each request over time (top), ready replicas per pool (middle) and
//! where prompt blocks came from over time — GPU pool, host tier, peer fetch, recomputed
//! (bottom). plotters' bitmap backend with the Hack font bundled in `epaint_default_fonts`.

use super::metrics::Metrics;
use plot_support::err;
use plotters::prelude::*;
use std::path::Path;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// Writes the three-panel PNG to `path`.
pub fn write(path: &Path, m: &Metrics) -> Result<(), String> {
    plot_support::register_bundled_font();
    let root = BitMapBackend::new(path, (1000, 1020)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, rest) = root.split_vertically(420);
    let (bottom, sources) = rest.split_vertically(300);
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
    draw_sources(&sources, m, t_end)?;
    root.present().map_err(err)
}

/// Cumulative prompt blocks by source over time.
fn draw_sources(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    m: &Metrics,
    t_end: f64,
) -> Result<(), String> {
    let max = m
        .tier_samples
        .iter()
        .map(|(_, c)| {
            c.from_gpu
                .max(c.from_host)
                .max(c.from_peer)
                .max(c.recomputed)
        })
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "prompt blocks by source (cumulative; onboarded and fetched blocks verified)",
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_end * 1.02, 0.0..max * 1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("blocks")
        .draw()
        .map_err(err)?;
    type Pick = fn(&crate::proto::TierCounts) -> u64;
    let series: [(&str, RGBColor, Pick); 4] = [
        ("GPU pool", BLUE, |c| c.from_gpu),
        ("host tier", ORANGE, |c| c.from_host),
        ("peer fetch", PURPLE, |c| c.from_peer),
        ("recomputed", RED, |c| c.recomputed),
    ];
    for (label, color, pick) in series {
        let pts: Vec<(f64, f64)> = m
            .tier_samples
            .iter()
            .map(|(t, c)| (*t, pick(c) as f64))
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
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}
