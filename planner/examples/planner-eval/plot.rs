//! PNG plots (plotters bitmap backend). Text uses the Hack font bundled in
//! `epaint_default_fonts`, registered with plotters' `ab_glyph` text backend, so nothing is
//! needed from the system (no fontconfig).

use std::path::Path;

use plot_support::colors::{BLUE, RED};
use plot_support::{PlotError, legend, line};
use plotters::prelude::*;

use crate::driver::Tick;

const PREFILL: RGBColor = BLUE;
const DECODE: RGBColor = RED;
const LOAD: RGBColor = RGBColor(90, 90, 90);

/// One panel per planner: prefill and decode replicas (ready + starting) over time, with the
/// arrival rate (right axis) behind them.
pub fn replicas_vs_load(
    path: &Path,
    title: &str,
    runs: &[(String, Vec<Tick>)],
) -> Result<(), PlotError> {
    plot_support::register_bundled_font();
    let height = 60 + 260 * runs.len() as u32;
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(50);
    header.draw_text(
        title,
        &("sans-serif", 22).into_font().color(&BLACK),
        (20, 15),
    )?;
    let panels = body.split_evenly((runs.len(), 1));
    let t_max = runs
        .iter()
        .flat_map(|(_, t)| t.iter().map(|x| x.time))
        .fold(1.0, f64::max);
    let rate_max = runs
        .iter()
        .flat_map(|(_, t)| t.iter().map(|x| x.rate))
        .fold(1.0, f64::max)
        * 1.1;
    let rep_max = runs
        .iter()
        .flat_map(|(_, t)| t.iter().map(|x| x.prefill.max(x.decode)))
        .max()
        .unwrap_or(1)
        + 1;
    for (panel, (name, ticks)) in panels.iter().zip(runs) {
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .right_y_label_area_size(45)
            .build_cartesian_2d(0.0..t_max, 0.0..f64::from(rep_max))?
            .set_secondary_coord(0.0..t_max, 0.0..rate_max);
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("replicas")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("arrivals (req/s)")
            .draw()?;
        chart
            .draw_secondary_series(LineSeries::new(
                // Regular ticks only: a fast check's rate covers a few seconds.
                ticks
                    .iter()
                    .filter(|t| !t.emergency)
                    .map(|t| (t.time, t.rate)),
                LOAD.mix(0.5).stroke_width(1),
            ))?
            .label("arrival rate")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LOAD));
        for (label, color, pick) in [
            (
                "prefill",
                PREFILL,
                (|t: &Tick| t.prefill) as fn(&Tick) -> u32,
            ),
            ("decode", DECODE, |t: &Tick| t.decode),
        ] {
            line(&mut *chart, label, color, stairs(ticks, pick))?;
        }
        legend(&mut *chart, SeriesLabelPosition::UpperLeft).draw()?;
    }
    root.present()?;
    Ok(())
}

/// A step line through the replica counts (held constant between ticks).
fn stairs(ticks: &[Tick], pick: fn(&Tick) -> u32) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(ticks.len() * 2);
    let mut prev: Option<f64> = None;
    for t in ticks {
        let y = f64::from(pick(t));
        if let Some(p) = prev {
            points.push((t.time, p));
        }
        points.push((t.time, y));
        prev = Some(y);
    }
    points
}
