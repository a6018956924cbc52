//! Plot set-up shared by every PNG writer in the workspace (the `sim` command, the planner
//! evaluation, the disagg report, nixlbench): plotters' text works with nothing installed
//! because the Hack font bundled in `epaint_default_fonts` is registered for every family
//! plotters asks for; the palette, a labelled line and the legend box are drawn one way.

use std::sync::Once;

use plotters::chart::{ChartContext, SeriesLabelPosition, SeriesLabelStyle};
use plotters::coord::CoordTranslate;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::element::PathElement;
use plotters::prelude::{BLACK, Color, DrawingBackend, LineSeries, RGBColor, WHITE};
use plotters::style::{FontStyle, register_font};

/// Registers the bundled font (once per process; later calls do nothing).
pub fn register_bundled_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // An error only means the family is registered already.
            let _ = register_font(
                family,
                FontStyle::Normal,
                epaint_default_fonts::HACK_REGULAR,
            );
        }
    });
}

/// A drawing that failed: plotters' error (backend, font or layout), kept as the source.
/// `?` converts plotters' errors into it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl PlotError {
    /// A plot that cannot be drawn from its data (e.g. nothing to plot), said in words.
    pub fn new(message: impl Into<String>) -> Self {
        PlotError(message.into().into())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError(Box::new(e))
    }
}

/// The colours of matplotlib's `tab10` palette the writers use, by name.
pub mod colors {
    use plotters::style::RGBColor;

    /// tab:blue.
    pub const BLUE: RGBColor = RGBColor(31, 119, 180);
    /// tab:orange.
    pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
    /// tab:green.
    pub const GREEN: RGBColor = RGBColor(44, 160, 44);
    /// tab:red.
    pub const RED: RGBColor = RGBColor(214, 39, 40);
    /// tab:purple.
    pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
    /// tab:brown.
    pub const BROWN: RGBColor = RGBColor(140, 86, 75);
    /// tab:cyan.
    pub const CYAN: RGBColor = RGBColor(23, 190, 207);
}

/// Draws `points` as a 2-pixel line in `color`, listed in the legend as `label`.
pub fn line<DB, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    label: impl Into<String>,
    color: RGBColor,
    points: impl IntoIterator<Item = CT::From>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
    CT::From: Clone + 'static,
{
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

/// The legend box at `position`: white, translucent, black border. Finish it with `.draw()`
/// (after any other setting, such as a label font).
pub fn legend<'a, 'b, DB, CT>(
    chart: &'b mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> SeriesLabelStyle<'a, 'b, DB, CT>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    let mut style = chart.configure_series_labels();
    style
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK);
    style
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_drawing_error_keeps_plotters_error_as_its_source() {
        let e: PlotError = DrawingAreaErrorKind::<std::io::Error>::LayoutError.into();
        let source = e.source().expect("a source");
        assert_eq!(e.to_string(), source.to_string());
    }
}
