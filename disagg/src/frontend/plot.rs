//! The run's PNG: TTFT of each request over time (top), ready replicas per pool (middle) and
//! where prompt blocks came from over time — GPU pool, host tier, peer fetch, recomputed
//! (bottom). plotters' bitmap backend, set up by `plot-support`.

use super::metrics::Metrics;
use plot_support::colors::{BLUE, GREEN, ORANGE, PURPLE, RED};
use plot_support::{PlotError, legend, line};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type TimeChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Writes the three-panel PNG to `path`.
pub fn write(path: &Path, m: &Metrics) -> Result<(), PlotError> {
    plot_support::register_bundled_font();
    let root = BitMapBackend::new(path, (1000, 1020)).into_drawing_area();
    root.fill(&WHITE)?;
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
    let caption = ("TTFT of each request (by arrival time)", 22);
    let mut chart = time_chart(&top, caption, t_end, max_ttft * 1.05, "TTFT (ms)")?;
    chart.draw_series(
        m.ttft
            .iter()
            .map(|&(t, v)| Circle::new((t, v * 1000.0), 2, BLUE.filled())),
    )?;
    let max_rep = m
        .replicas
        .iter()
        .map(|r| r.1.max(r.2))
        .max()
        .unwrap_or(1)
        .max(1);
    let caption = ("ready replicas per pool", 22);
    let mut chart = time_chart(
        &bottom,
        caption,
        t_end,
        f64::from(max_rep) + 1.0,
        "replicas",
    )?;
    let prefill = m.replicas.iter().map(|r| (r.0, f64::from(r.1)));
    line(&mut chart, "prefill", RED, prefill)?;
    let decode = m.replicas.iter().map(|r| (r.0, f64::from(r.2)));
    line(&mut chart, "decode", GREEN, decode)?;
    legend(&mut chart, SeriesLabelPosition::LowerRight).draw()?;
    draw_sources(&sources, m, t_end)?;
    Ok(root.present()?)
}

/// A chart over the run's time (x) up to `y_max`, with its caption (text, size) and mesh.
fn time_chart<'a, 'b>(
    area: &'a Area<'b>,
    (caption, size): (&str, u32),
    t_end: f64,
    y_max: f64,
    y_desc: &str,
) -> Result<TimeChart<'a, 'b>, PlotError> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", size))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_end * 1.02, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

/// Cumulative prompt blocks by source over time.
fn draw_sources(area: &Area<'_>, m: &Metrics, t_end: f64) -> Result<(), PlotError> {
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
    let caption = (
        "prompt blocks by source (cumulative; onboarded and fetched blocks verified)",
        20,
    );
    let mut chart = time_chart(area, caption, t_end, max * 1.05, "blocks")?;
    type Pick = fn(&crate::proto::TierCounts) -> u64;
    let series: [(&str, RGBColor, Pick); 4] = [
        ("GPU pool", BLUE, |c| c.from_gpu),
        ("host tier", ORANGE, |c| c.from_host),
        ("peer fetch", PURPLE, |c| c.from_peer),
        ("recomputed", RED, |c| c.recomputed),
    ];
    for (label, color, pick) in series {
        let pts = m.tier_samples.iter().map(|(t, c)| (*t, pick(c) as f64));
        line(&mut chart, label, color, pts)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft).draw()?;
    Ok(())
}
